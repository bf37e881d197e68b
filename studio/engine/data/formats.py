"""Dataset formats: detect them from the columns and turn every row into a list of chat messages.

Supported: alpaca (instruction/input/output, optional system and history), OpenAI-style
`messages`, ShareGPT `conversations` (from/value, custom role tags; a `chosen` reply of a
preference pair is taken as the final assistant turn), and prompt/completion.
A column mapping renames columns first ({"question": "instruction"}); keys of the form
"role:TAG" map a custom ShareGPT tag to a role ({"role:bot": "assistant"}).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.engine.errors import BadDataset

FORMAT_COLUMNS = {
    "alpaca": (("instruction", "output"), ("input", "system", "history")),
    "messages": (("messages",), ("system",)),
    "sharegpt": (("conversations",), ("system", "chosen", "rejected")),
    "prompt_completion": (("prompt", "completion"), ("system",)),
}
ROLES = ("system", "user", "assistant")
SHAREGPT_TAGS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                 "model": "assistant", "bot": "assistant", "chatgpt": "assistant", "system": "system"}


class RowProblem(ValueError):
    """A problem with one row: the row is dropped and counted, not fatal."""


@dataclass
class Conversations:
    format: str
    conversations: list[list[dict]]
    where: list[str]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> locations
    source: str = ""

    @property
    def dropped_count(self) -> int:
        return sum(len(v) for v in self.dropped.values())


def describe_drops(dropped: dict[str, list[str]]) -> str:
    return "; ".join(f"{reason} ({', '.join(locs[:3])}{'…' if len(locs) > 3 else ''})"
                     for reason, locs in dropped.items())


def split_mapping(mapping: dict) -> tuple[dict, dict]:
    columns = {k: v for k, v in (mapping or {}).items() if not k.startswith("role:")}
    tags = {k[5:].lower(): v for k, v in (mapping or {}).items() if k.startswith("role:")}
    return columns, tags


def detect_format(columns: list[str]) -> str | None:
    cols = set(columns)
    for name, (required, _) in FORMAT_COLUMNS.items():
        if set(required) <= cols:
            return name
    return None


def _closest_format(columns: list[str]) -> str | None:
    """The format whose required columns overlap most with those found (to name what is missing)."""
    overlap = {name: len(set(req) & set(columns)) for name, (req, _) in FORMAT_COLUMNS.items()}
    best = max(overlap, key=overlap.get)
    return best if overlap[best] else None


def _text(row: dict, key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise RowProblem(f"field '{key}' is empty (null)")
        return ""
    if isinstance(value, float) and value != value:
        raise RowProblem(f"field '{key}' is NaN")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise RowProblem(f"field '{key}' is a {type(value).__name__}; expected text")
    return str(value)


def _alpaca(row: dict, tags: dict) -> list[dict]:
    messages = []
    system = _text(row, "system", required=False)
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowProblem("field 'history' must be a list of [instruction, response] pairs")
    for pair in history:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowProblem("field 'history' must be a list of [instruction, response] pairs")
        messages += [{"role": "user", "content": str(pair[0])}, {"role": "assistant", "content": str(pair[1])}]
    instruction = _text(row, "instruction")
    extra = _text(row, "input", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    if not prompt.strip():
        raise RowProblem("field 'instruction' is empty")
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": _text(row, "output")}]
    return messages


def _message_list(items, key_role: str, key_content: str, tags: dict, field_name: str) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise RowProblem(f"field '{field_name}' must be a non-empty list of turns")
    out = []
    for turn in items:
        if not isinstance(turn, dict) or key_role not in turn or key_content not in turn:
            raise RowProblem(f"each turn in '{field_name}' needs '{key_role}' and '{key_content}'")
        tag = str(turn[key_role])
        role = tags.get(tag.lower()) or (SHAREGPT_TAGS.get(tag.lower()) if key_role == "from" else tag)
        if role not in ROLES:
            raise RowProblem(f"unknown role '{tag}' in '{field_name}'; expected one of "
                             f"{', '.join(ROLES)} (map custom tags with role:{tag} in the column mapping)")
        content = turn[key_content]
        if not isinstance(content, str):
            raise RowProblem(f"a turn's '{key_content}' in '{field_name}' is a {type(content).__name__}; "
                             f"expected text")
        out.append({"role": role, "content": content})
    return out


def _with_system(row: dict, messages: list[dict]) -> list[dict]:
    system = _text(row, "system", required=False)
    if system.strip() and messages[0]["role"] != "system":
        return [{"role": "system", "content": system}] + messages
    return messages


def _messages(row: dict, tags: dict) -> list[dict]:
    return _with_system(row, _message_list(row.get("messages"), "role", "content", tags, "messages"))


def _sharegpt(row: dict, tags: dict) -> list[dict]:
    messages = _message_list(row.get("conversations"), "from", "value", tags, "conversations")
    chosen = row.get("chosen")
    if isinstance(chosen, dict):  # preference pair: learn the chosen reply
        messages += _message_list([chosen], "from", "value", tags, "chosen")
    elif isinstance(chosen, str):
        messages.append({"role": "assistant", "content": chosen})
    return _with_system(row, messages)


def _prompt_completion(row: dict, tags: dict) -> list[dict]:
    return _with_system(row, [{"role": "user", "content": _text(row, "prompt")},
                              {"role": "assistant", "content": _text(row, "completion")}])


CONVERTERS = {"alpaca": _alpaca, "messages": _messages, "sharegpt": _sharegpt,
              "prompt_completion": _prompt_completion}


def _check_conversation(messages: list[dict]) -> None:
    assistants = [m for m in messages if m["role"] == "assistant"]
    if not assistants:
        raise RowProblem("no assistant turn to learn from")
    if not any(m["content"].strip() for m in assistants):
        raise RowProblem("the assistant reply is empty")


def to_conversations(records, fmt: str = "auto", mapping: dict | None = None) -> Conversations:
    """Every row of `records` (files.Records) as a chat conversation, with dropped rows counted."""
    col_map, tags = split_mapping(mapping or {})
    rows = records.rows
    if col_map:
        rows = [{col_map.get(k, k): v for k, v in row.items()} for row in rows]
    columns = [col_map.get(c, c) for c in records.columns]
    if fmt == "auto":
        fmt = detect_format(columns) or _closest_format(columns)
        if fmt is None:
            expected = "; ".join(f"{name}: {', '.join(req)}" for name, (req, _) in FORMAT_COLUMNS.items())
            raise BadDataset(f"{records.path}: cannot tell the format from the columns found "
                             f"({', '.join(columns) or 'none'}). Expected the columns of one format — {expected}. "
                             f"Map your columns to these names with a column mapping.", field="columns")
    if fmt not in CONVERTERS:
        raise BadDataset(f"Unknown format '{fmt}'; expected one of {', '.join(CONVERTERS)}.", field="format")
    required = FORMAT_COLUMNS[fmt][0]
    missing = [c for c in required if c not in columns]
    if missing:
        raise BadDataset(f"{records.path}: missing column(s) {', '.join(missing)} for the {fmt} format. "
                         f"Columns found: {', '.join(columns)}; expected: {', '.join(required)} "
                         f"(optional: {', '.join(FORMAT_COLUMNS[fmt][1])}).", field="columns")
    convert = CONVERTERS[fmt]
    result = Conversations(format=fmt, conversations=[], where=[], source=str(records.path))
    for row, where in zip(rows, records.where):
        try:
            messages = convert(row, tags)
            _check_conversation(messages)
        except RowProblem as problem:
            result.dropped.setdefault(str(problem), []).append(where)
            continue
        result.conversations.append(messages)
        result.where.append(where)
    if not result.conversations:
        reasons = describe_drops(result.dropped)
        raise BadDataset(f"{records.path}: no usable example in {len(rows)} rows — {reasons}.")
    return result
