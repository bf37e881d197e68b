"""Dataset formats: detect them from the columns and turn every row into a list of chat messages.

Supported: alpaca (instruction/input/output, optional system and history), OpenAI-style
`messages`, ShareGPT `conversations` (from/value, custom role tags; a `chosen` reply of a
preference pair is taken as the final assistant turn), and prompt/completion (text, or lists of
messages as in TRL's conversational rows).
A column mapping renames columns first ({"question": "instruction"}); keys of the form
"role:TAG" map a custom ShareGPT tag to a role ({"role:bot": "assistant"}); keys of the form
"{{name}}" give a placeholder's value, like the `placeholders` argument (see hygiene).

What people bring beyond that:
- content as a list of typed parts (content_parts): text parts joined, other parts drop the row;
- tool calls and results, and a `tools` column (tools): kept in the message list, never ignored;
- a true/false column marking a reply good or bad (`label`, `kto`, `desirable`, `kto_tag`): a row marked
  false is dropped from supervised fine-tuning with that reason (kept with `keep_undesirable`), and the
  mark of every kept row is in `Conversations.labels` for preference tuning;
- files mixing formats: with format auto each row is read in its own format (a warning lists which rows
  are in which); with a format chosen, rows in another format are dropped saying so;
- turns in an order nothing can be learned from (no user turn, starting with the assistant, ending with
  an unanswered user turn): dropped saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.engine.data.content_parts import content_text
from studio.engine.data.hygiene import fill_placeholders, locations, placeholder_values_from_mapping
from studio.engine.data.problems import RowProblem
from studio.engine.data.tools import (TOOLS_COLUMNS, TOOLS_ROLE, openai_calls, parse_tools, sharegpt_calls,
                                      tools_message)
from studio.engine.errors import BadDataset

__all__ = ["RowProblem", "Conversations", "to_conversations", "detect_format", "describe_drops"]

FORMAT_COLUMNS = {
    "alpaca": (("instruction", "output"), ("input", "system", "history")),
    "messages": (("messages",), ("system",)),
    "sharegpt": (("conversations",), ("system", "chosen", "rejected")),
    "prompt_completion": (("prompt", "completion"), ("system",)),
}
ROLES = ("system", "user", "assistant", "tool")
# Other names for the same roles: OpenAI's newer "developer" system role, its legacy "function" results.
ROLE_ALIASES = {"developer": "system", "function": "tool"}
SHAREGPT_TAGS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                 "model": "assistant", "bot": "assistant", "chatgpt": "assistant", "system": "system",
                 "function_call": "function_call", "observation": "tool", "tool": "tool"}
LABEL_COLUMNS = ("label", "kto", "desirable", "kto_tag")
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
PLAIN_TEXT = ("the row holds only plain text (field 'text'): that is pre-training data (the Pre-train tab), "
              "not a prompt with a reply")


@dataclass
class Conversations:
    format: str
    conversations: list[list[dict]]
    where: list[str]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> locations
    source: str = ""
    # Per kept conversation, the row's good/bad mark (None without a label column), for preference tuning.
    labels: list[bool | None] = field(default_factory=list)
    label_column: str | None = None
    warnings: list[str] = field(default_factory=list)  # each names the file and the locations
    placeholders: dict[str, list[str]] = field(default_factory=dict)  # {{name}} found -> locations

    @property
    def dropped_count(self) -> int:
        return sum(len(v) for v in self.dropped.values())


def describe_drops(dropped: dict[str, list[str]]) -> str:
    return "; ".join(f"{reason} ({', '.join(locs[:3])}{'…' if len(locs) > 3 else ''})"
                     for reason, locs in dropped.items())


def split_mapping(mapping: dict) -> tuple[dict, dict]:
    """(column renames, ShareGPT role tags); placeholder values ("{{name}}" keys) are in neither."""
    columns = {k: v for k, v in (mapping or {}).items() if not k.startswith("role:") and not k.startswith("{{")}
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


def _present(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and not (isinstance(value, float) and value != value)


def row_format(row: dict) -> str | None:
    """The format this one row is in, told by its filled fields ("text" for a plain-text row)."""
    for name, (required, _) in FORMAT_COLUMNS.items():
        if all(_present(row, c) for c in required):
            return name
    return "text" if _present(row, "text") else None


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


def _role(tag: str, key_role: str, tags: dict, field_name: str) -> str:
    role = tags.get(tag.lower()) or (SHAREGPT_TAGS.get(tag.lower()) if key_role == "from"
                                     else ROLE_ALIASES.get(tag, tag))
    if role not in ROLES and role != "function_call":
        raise RowProblem(f"unknown role '{tag}' in '{field_name}'; expected one of "
                         f"{', '.join(ROLES)} (map custom tags with role:{tag} in the column mapping)")
    return role


def _message_list(items, key_role: str, key_content: str, tags: dict, field_name: str) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise RowProblem(f"field '{field_name}' must be a non-empty list of turns")
    out: list[dict] = []
    for turn in items:
        calls_only = isinstance(turn, dict) and (turn.get("tool_calls") or isinstance(turn.get("function_call"), dict))
        if not isinstance(turn, dict) or key_role not in turn or (key_content not in turn and not calls_only):
            raise RowProblem(f"each turn in '{field_name}' needs '{key_role}' and '{key_content}'")
        role = _role(str(turn[key_role]), key_role, tags, field_name)
        content = turn.get(key_content)
        if role == "function_call":
            calls = sharegpt_calls(content, field_name)
            if out and out[-1]["role"] == "assistant":  # the reply's text, then its call(s): one turn
                out[-1]["tool_calls"] = out[-1].get("tool_calls", []) + calls
            else:
                out.append({"role": "assistant", "content": "", "tool_calls": calls})
            continue
        calls = openai_calls(turn, field_name) if role == "assistant" else []
        message = {"role": role, "content": "" if content is None and calls
                   else content_text(content, key_content, field_name)}
        if calls:
            message["tool_calls"] = calls
        if role == "tool":
            message.update({k: turn[k] for k in ("name", "tool_call_id") if isinstance(turn.get(k), str)})
        out.append(message)
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
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list):
        prompt = _message_list(prompt, "role", "content", tags, "prompt")
    else:
        prompt = [{"role": "user", "content": _text(row, "prompt")}]
    if isinstance(completion, list):
        completion = _message_list(completion, "role", "content", tags, "completion")
    else:
        completion = [{"role": "assistant", "content": _text(row, "completion")}]
    return _with_system(row, prompt + completion)


CONVERTERS = {"alpaca": _alpaca, "messages": _messages, "sharegpt": _sharegpt,
              "prompt_completion": _prompt_completion}


def _with_tools(row: dict, messages: list[dict]) -> list[dict]:
    for column in TOOLS_COLUMNS:
        if column in row:
            specs = parse_tools(row[column], column)
            if specs:
                return [tools_message(specs)] + messages
    return messages


def _check_conversation(messages: list[dict]) -> None:
    turns = [m for m in messages if m["role"] not in ("system", TOOLS_ROLE)]
    assistants = [m for m in turns if m["role"] == "assistant"]
    if not assistants:
        raise RowProblem("no assistant turn to learn from")
    if not any(m["content"].strip() or m.get("tool_calls") for m in assistants):
        raise RowProblem("the assistant reply is empty")
    if not any(m["role"] == "user" for m in turns):
        raise RowProblem("no user turn: only assistant turns, so there is no prompt to learn a reply to")
    if turns[0]["role"] != "user":
        raise RowProblem(f"the conversation starts with a{'n' if turns[0]['role'] == 'assistant' else ''} "
                         f"{turns[0]['role']} turn; expected a user turn first")
    if turns[-1]["role"] == "user":
        raise RowProblem("the conversation ends with a user turn that has no reply, so there is nothing to "
                         "learn from that turn")
    if turns[-1]["role"] == "tool":
        raise RowProblem("the conversation ends with a tool result that no assistant turn answers")


def _as_bool(value):
    """True/False for a good/bad mark, None for no mark, the value itself when it is not a mark."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        if not word:
            return None
    return value


def _label_column(path, rows: list[dict], where: list[str], columns: list[str]) -> tuple[str | None, list[str]]:
    """The column that marks replies good or bad, or a warning that the one found is not true/false."""
    for column in LABEL_COLUMNS:
        if column not in columns:
            continue
        for row, loc in zip(rows, where):
            value = _as_bool(row.get(column))
            if value is not None and not isinstance(value, bool):
                shown = repr(value) if len(repr(value)) < 40 else repr(value)[:40] + "…"
                return None, [f"{path}: column '{column}' holds {shown} ({loc}), not true/false, so it is not "
                              f"read as a good/bad mark of the reply; it is not used for fine-tuning."]
        return column, []
    return None, []


def _undesirable(column: str) -> str:
    return f"reply marked undesirable (column '{column}' is false); preference tuning can use it"


def to_conversations(records, fmt: str = "auto", mapping: dict | None = None, *,
                     placeholders: dict | None = None, keep_undesirable: bool = False) -> Conversations:
    """Every row of `records` (files.Records) as a chat conversation, with dropped rows counted.

    `placeholders` ({name: value}, merged over "{{name}}" keys of the mapping) fills `{{name}}` in the text.
    `keep_undesirable` keeps rows whose label column is false (for preference tuning)."""
    col_map, tags = split_mapping(mapping or {})
    values = {**placeholder_values_from_mapping(mapping), **{str(k): str(v) for k, v in (placeholders or {}).items()}}
    rows = records.rows
    if col_map:
        rows = [{col_map.get(k, k): v for k, v in row.items()} for row in rows]
    columns = [col_map.get(c, c) for c in records.columns]
    auto = fmt == "auto"
    if auto:
        fmt = detect_format(columns) or _closest_format(columns)
        if fmt is None and "text" in columns:
            raise BadDataset(f"{records.path}: the rows hold only plain text (column 'text'): raw text is "
                             f"pre-training data: open it in the Pre-train tab. Fine-tuning needs a prompt and a "
                             f"reply per row, e.g. instruction and output.", field="columns")
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
    rows, found, placeholder_warnings = fill_placeholders(records.path, rows, records.where, values)
    label_column, label_warnings = _label_column(records.path, rows, records.where, columns)
    result = Conversations(format=fmt, conversations=[], where=[], source=str(records.path),
                           label_column=label_column, placeholders=found,
                           warnings=list(getattr(records, "warnings", [])) + placeholder_warnings + label_warnings)
    read_as: dict[str, list[str]] = {}  # format -> rows read in it
    for row, where in zip(rows, records.where):
        row_fmt = fmt
        own = None if all(_present(row, c) for c in required) else row_format(row)
        try:
            if own == "text":
                row_fmt = "plain text"
                raise RowProblem(PLAIN_TEXT)
            if own is not None and not auto:
                raise RowProblem(f"the row is in '{own}' format while the file is read as {fmt}")
            row_fmt = own or fmt
            messages = _with_tools(row, CONVERTERS[row_fmt](row, tags))
            _check_conversation(messages)
            label = _as_bool(row.get(label_column)) if label_column else None
            if label is False and not keep_undesirable:
                raise RowProblem(_undesirable(label_column))
        except RowProblem as problem:
            result.dropped.setdefault(str(problem), []).append(where)
            continue
        finally:
            read_as.setdefault(row_fmt, []).append(where)
        result.conversations.append(messages)
        result.where.append(where)
        result.labels.append(label)
    if auto and len(read_as) > 1:
        listed = "; ".join(f"{name} ({locations(locs)})" for name, locs in read_as.items())
        result.warnings.append(f"{records.path}: the rows are in different formats — {listed}; each row is read "
                               f"in its own format.")
    result.format = "+".join(name for name in read_as if name in CONVERTERS) or fmt
    if not result.conversations:
        reasons = describe_drops(result.dropped)
        raise BadDataset(f"{records.path}: no usable example in {len(rows)} rows — {reasons}.")
    return result
