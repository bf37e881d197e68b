"""Preference data: pairs (a prompt, a chosen and a rejected reply) and single replies marked good or bad, read from
the layouts people bring, each row in its own layout so that mixed files (the playground's feedback file) work.

Layouts, told apart by the filled fields of each row (after the column mapping renames columns):
- ShareGPT pairs: `conversations` (from/value turns) + `chosen` and `rejected` (a turn, or text); optional `system`;
- Alpaca pairs: `instruction`, optional `input`, `system` and `history`, + `chosen` and `rejected` (text);
- messages pairs: `messages` (the prompt turns) + `chosen` and `rejected` (text, a message, or a list of messages
  ending with the reply);
- prompt pairs: `prompt` (text or messages) + `chosen` and `rejected` (text or messages);
- whole-conversation pairs: only `chosen` and `rejected`, each a whole conversation: their common leading turns
  are the prompt;
- marked replies: a true/false column (`label`, `kto`, `desirable` or `kto_tag`) with `prompt` + `completion`,
  `messages`, `instruction` + `output`, or `conversations` (the last turn is the reply it judges).

Every pair and mark comes out in TRL's conversational format: the prompt a list of messages ending with a user
turn (system first, if any), each reply a one-message list [{"role": "assistant", ...}].
Light module (no torch): the pre-flight check imports it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.data.files import _jsonl_rows, read_records, read_text
from studio.engine.data.formats import (LABEL_COLUMNS, _alpaca, _as_bool, _message_list, _present, _text,
                                        _with_system, describe_drops, split_mapping)
from studio.engine.data.problems import RowProblem
from studio.engine.errors import BadConfig, BadDataset
from studio.engine.preference.config import OBJECTIVES, PAIRED

# The field that holds the prompt of a pair -> the layout's name.
PAIR_LAYOUTS = {"conversations": "ShareGPT pairs", "instruction": "Alpaca pairs", "messages": "messages pairs",
                "prompt": "prompt pairs"}
WHOLE_CONVERSATIONS = "whole-conversation pairs"
# The fields of a marked row -> the layout's name.
MARK_LAYOUTS = {("prompt", "completion"): "marked replies", ("messages",): "marked messages",
                ("instruction", "output"): "marked Alpaca rows", ("conversations",): "marked ShareGPT conversations"}
EXPECTED = ("ShareGPT pairs: conversations, chosen, rejected; Alpaca pairs: instruction, chosen, rejected; messages "
            "pairs: messages, chosen, rejected; prompt pairs: prompt, chosen, rejected; whole-conversation pairs: "
            "chosen and rejected alone, each a list of messages; marked replies: prompt and completion (or messages, "
            f"or instruction and output) with a true/false column ({', '.join(LABEL_COLUMNS)})")
SAME_REPLIES = "the chosen and rejected replies are the same: there is nothing to prefer"
EMPTY_PROMPT = "the prompt is empty"
NO_USER_TURN = "no user turn in the prompt: there is nothing the replies answer"


@dataclass
class PreferenceData:
    source: str
    format: str  # the layouts found, in words for people ("ShareGPT pairs", "prompt pairs + marked replies")
    pairs: list[dict] = field(default_factory=list)  # {"prompt", "chosen", "rejected"}: lists of messages
    pair_where: list[str] = field(default_factory=list)
    marks: list[dict] = field(default_factory=list)  # {"prompt", "completion": lists of messages, "label": bool}
    mark_where: list[str] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> locations
    warnings: list[str] = field(default_factory=list)  # each names the file and the locations

    @property
    def dropped_count(self) -> int:
        return sum(len(v) for v in self.dropped.values())


def _filled(row: dict, key: str) -> bool:
    """The field holds something: CSV files leave a blank cell where another layout's field is not used."""
    value = row.get(key)
    if not _present(row, key):
        return False
    return not ((isinstance(value, str) and not value.strip()) or (isinstance(value, (list, dict)) and not value))


def _turns(value, field_name: str, tags: dict) -> list[dict]:
    """A message, or a list of them, with OpenAI (role/content) or ShareGPT (from/value) keys."""
    items = value if isinstance(value, list) else [value]
    sharegpt = isinstance(items[0], dict) and "from" in items[0] if items else False
    return _message_list(items, "from" if sharegpt else "role", "value" if sharegpt else "content", tags, field_name)


def _empty(message: dict) -> bool:
    return not (message["content"].strip() or message.get("tool_calls"))


def _missing(field_name: str, what: str = "") -> RowProblem:
    return RowProblem(f"no {what or field_name + ' reply'} (field '{field_name}' is missing or empty)")


def _final_reply(messages: list[dict], field_name: str, what: str = "") -> list[dict]:
    last = messages[-1]
    if last["role"] != "assistant":
        raise RowProblem(f"the last turn of '{field_name}' is a {last['role']} turn; expected the assistant's reply")
    if _empty(last):
        raise _missing(field_name, what)
    return [last]


def _reply(row: dict, field_name: str, tags: dict) -> list[dict]:
    """The reply in `field_name` as a one-message list; a list of messages gives its final turn (earlier turns
    repeat the prompt)."""
    if not _filled(row, field_name):
        raise _missing(field_name)
    value = row[field_name]
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if not isinstance(value, (dict, list)):
        raise RowProblem(f"field '{field_name}' is a {type(value).__name__}; expected text, a message or a list of "
                         f"messages")
    return _final_reply(_turns(value, field_name, tags), field_name)


def _prompt(row: dict, column: str, tags: dict) -> list[dict]:
    if column != "instruction" and not _filled(row, column):
        raise RowProblem(EMPTY_PROMPT)
    if column == "instruction":
        return _alpaca({**row, "output": ""}, tags)[:-1]  # the alpaca user turn, built as supervised data does
    value = row[column]
    if column == "prompt" and not isinstance(value, (list, dict)):
        return _with_system(row, [{"role": "user", "content": _text(row, "prompt")}])
    return _with_system(row, _turns(value, column, tags))


def _check_prompt(prompt: list[dict]) -> None:
    turns = [m for m in prompt if m["role"] != "system"]
    if not any(m["content"].strip() or m.get("tool_calls") for m in turns):
        raise RowProblem(EMPTY_PROMPT)
    if not any(m["role"] == "user" for m in turns):
        raise RowProblem(NO_USER_TURN)
    if turns[-1]["role"] not in ("user", "tool"):
        raise RowProblem(f"the prompt ends with an {turns[-1]['role']} turn; expected the user turn that the replies "
                         f"answer")


def _split_whole_conversations(row: dict, tags: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """TRL's implicit prompt: the leading turns chosen and rejected share, then each one's final reply."""
    if not all(isinstance(row[name], list) for name in ("chosen", "rejected")):
        raise RowProblem("no prompt: without a prompt, instruction, messages or conversations field, 'chosen' and "
                         "'rejected' must each be a whole conversation (a list of messages)")
    chosen, rejected = _turns(row["chosen"], "chosen", tags), _turns(row["rejected"], "rejected", tags)
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if len(chosen) == len(rejected) == shared:
        raise RowProblem(SAME_REPLIES)
    for name, rest in (("chosen", chosen[shared:]), ("rejected", rejected[shared:])):
        if not rest:
            raise _missing(name)
        if len(rest) > 1 or rest[0]["role"] != "assistant":
            raise RowProblem("'chosen' and 'rejected' differ before their final reply; expected the same "
                             "conversation with a different last assistant turn")
    return _with_system(row, chosen[:shared]) if shared else [], chosen[shared:], rejected[shared:]


def _same(one: list[dict], other: list[dict]) -> bool:
    a, b = one[-1], other[-1]
    return a["content"].strip() == b["content"].strip() and a.get("tool_calls") == b.get("tool_calls")


def _pair(row: dict, tags: dict) -> tuple[str, dict]:
    column = next((c for c in PAIR_LAYOUTS if _present(row, c)), None)
    if column is None:
        if not (_filled(row, "chosen") and _filled(row, "rejected")):
            raise _missing("rejected" if _filled(row, "chosen") else "chosen")
        prompt, chosen, rejected = _split_whole_conversations(row, tags)
        layout = WHOLE_CONVERSATIONS
    else:
        chosen, rejected = _reply(row, "chosen", tags), _reply(row, "rejected", tags)
        prompt, layout = _prompt(row, column, tags), PAIR_LAYOUTS[column]
    _check_prompt(prompt)
    if _same(chosen, rejected):
        raise RowProblem(SAME_REPLIES)
    return layout, {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _mark(row: dict, label_column: str, tags: dict) -> tuple[str, dict]:
    label = _as_bool(row.get(label_column))
    if label is None:
        raise RowProblem(f"no good/bad mark (column '{label_column}' is empty)")
    if not isinstance(label, bool):
        raise RowProblem(f"column '{label_column}' is not true or false (yes/no and 1/0 are read too)")
    fields = next((f for f in MARK_LAYOUTS if all(_present(row, c) for c in f)), None)
    if fields is None:
        raise RowProblem("no prompt and reply for the mark: expected prompt and completion, messages, instruction "
                         "and output, or conversations")
    if fields == ("prompt", "completion"):
        prompt, completion = _prompt(row, "prompt", tags), _reply(row, "completion", tags)
    else:
        turns = _alpaca(row, tags) if fields[0] == "instruction" else _prompt(row, fields[0], tags)
        prompt, completion = turns[:-1], _final_reply(turns, fields[-1], "reply")
    _check_prompt(prompt)
    return MARK_LAYOUTS[fields], {"prompt": prompt, "completion": completion, "label": label}


def _nothing_to_read(has_pairs: bool, label_column: str | None) -> str:
    parts = ["no chosen or rejected reply (fields 'chosen' and 'rejected' are empty)"] if has_pairs else []
    if label_column:
        parts.append(f"no good/bad mark (column '{label_column}' is empty)")
    return " and ".join(parts)


def _check_columns(path, columns: list[str]) -> tuple[bool, str | None]:
    """(whether pairs can be read, the label column): or an error naming the columns found and expected."""
    has_pairs = "chosen" in columns or "rejected" in columns
    label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
    marks = label_column is not None and any(set(f) <= set(columns) for f in MARK_LAYOUTS)
    if has_pairs or marks:
        return has_pairs, label_column
    supervised = {"instruction", "output"} <= set(columns) or {"prompt", "completion"} <= set(columns) or \
        bool({"messages", "conversations"} & set(columns))
    raise BadDataset(f"{path}: no preference data. Columns found: {', '.join(columns)}; expected one of these "
                     f"layouts — {EXPECTED}.",
                     ("A prompt with one reply per row is supervised data: choose the task Supervised fine-tuning, "
                      "or add a true/false column 'label' marking each reply good or bad (for KTO)." if supervised
                      else "Map your columns to these names with a column mapping, e.g. "
                      "{question: prompt, good: chosen, bad: rejected}."), field="dataset")


def _records(path):
    """read_records, except that an unfinished last line of JSON lines is left out with a warning: a crash while
    the playground appends a mark leaves one, and the next append cuts it off."""
    try:
        return read_records(path)
    except BadDataset:
        path = Path(path)
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise
        text = read_text(path)
        kept, _, last = text.rpartition("\n")
        if text.endswith("\n") or not kept.strip() or _parses(last):
            raise
        records = _jsonl_rows(path, kept + "\n")
        line = kept.count("\n") + 2
        records.warnings.append(f"{path}, line {line}: the last line is unfinished (the file "
                                f"was being written when it stopped) and is left out.")
        return records


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def read_preferences(path, mapping: dict | None = None) -> PreferenceData:
    """The pairs and marks of a JSON, JSONL, CSV or Parquet file, with every unusable row named and counted."""
    records = _records(path)
    renames, tags = split_mapping(mapping or {})
    rows = [{renames.get(k, k): v for k, v in row.items()} for row in records.rows] if renames else records.rows
    columns = list(dict.fromkeys(renames.get(c, c) for c in records.columns))
    has_pairs, label_column = _check_columns(records.path, columns)
    data = PreferenceData(source=str(records.path), format="", warnings=list(records.warnings))
    layouts: list[str] = []
    for row, where in zip(rows, records.where):
        try:
            if _filled(row, "chosen") or _filled(row, "rejected"):
                layout, pair = _pair(row, tags)
                data.pairs.append(pair)
                data.pair_where.append(where)
            elif label_column and _present(row, label_column):
                layout, mark = _mark(row, label_column, tags)
                data.marks.append(mark)
                data.mark_where.append(where)
            else:
                raise RowProblem(_nothing_to_read(has_pairs, label_column))
        except RowProblem as problem:
            data.dropped.setdefault(str(problem), []).append(where)
            continue
        if layout not in layouts:
            layouts.append(layout)
    data.format = " + ".join(layouts)
    if not data.pairs and not data.marks:
        raise BadDataset(f"{records.path}: no usable pair or marked reply in {len(rows)} rows — "
                         f"{describe_drops(data.dropped)}.", field="dataset")
    return data


def rows_with_where(data: PreferenceData, objective: str) -> tuple[list[dict], list[str]]:
    """rows_for, with the location of each row in the file."""
    if objective not in OBJECTIVES:
        raise BadConfig(f"Field 'objective' is '{objective}'; expected one of {', '.join(OBJECTIVES)}.",
                        field="objective")
    if objective in PAIRED:
        return [dict(pair) for pair in data.pairs], list(data.pair_where)
    rows, where = [dict(mark) for mark in data.marks], list(data.mark_where)
    for pair, loc in zip(data.pairs, data.pair_where):
        rows += [{"prompt": pair["prompt"], "completion": pair["chosen"], "label": True},
                 {"prompt": pair["prompt"], "completion": pair["rejected"], "label": False}]
        where += [loc, loc]
    return rows, where


def rows_for(data: PreferenceData, objective: str) -> list[dict]:
    """The rows a TRL trainer takes: pairs for dpo and orpo; for kto the marks, and each pair as one desirable and
    one undesirable reply (TRL's unpaired format)."""
    return rows_with_where(data, objective)[0]


def split_validation(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(training rows, validation rows), shuffled with the seed. Marked rows keep both labels in the training part
    when there are enough of each: KTO cannot learn from one kind of mark alone."""
    if fraction <= 0 or len(rows) < 2:
        return list(rows), []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    size = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
    held, train = order[:size], order[size:]
    if all("label" in row for row in rows):
        for wanted in (True, False):
            if any(rows[i]["label"] is wanted for i in train):
                continue
            moving = next((i for i in held if rows[i]["label"] is wanted), None)
            if moving is None:
                continue
            held.remove(moving)
            if len(train) > 1:  # swap, keeping the validation size; train holds only the other label here
                held.append(train.pop())
            train.append(moving)
    return [rows[i] for i in train], [rows[i] for i in held]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def describe(data: PreferenceData, objective: str) -> str:
    """One line: what the objective learns from in this file, e.g. "300 pairs (ShareGPT pairs)"."""
    if objective in PAIRED:
        text = f"{_plural(len(data.pairs), 'pair', 'pairs')} ({data.format})"
        if data.marks:
            text += (f"; {_plural(len(data.marks), 'marked reply', 'marked replies')} not used: "
                     f"{objective.upper()} learns from pairs, KTO from single marks")
    else:
        rows = rows_for(data, objective)
        good = sum(row["label"] for row in rows)
        text = f"{_plural(len(rows), 'marked reply', 'marked replies')}, {good} good and {len(rows) - good} bad " \
               f"({data.format}"
        if data.pairs:
            text += "; " + (f"{len(data.pairs)} pairs count" if len(data.pairs) > 1 else "1 pair counts") + \
                " as one good and one bad reply" + (" each" if len(data.pairs) > 1 else "")
        text += ")"
    if data.dropped:
        text += f"; {_plural(data.dropped_count, 'row', 'rows')} dropped"
    return text
