"""The held-out file of an evaluation: what each example asks and the answer it expects.

Four kinds of file, told apart by their columns (or chosen with `format`):
- labelled text (`text` + `label`, or the usual other names such as sentence/review and category/intent):
  classification; the label names are the answer options;
- instruction/output pairs in any fine-tuning format (alpaca, messages, ShareGPT, prompt/completion): the
  conversation up to the last assistant reply is the prompt, that reply the reference answer;
- raw text (.txt/.md split at blank lines, or rows with only a `text` column): perplexity;
- preference pairs (a `chosen` or `rejected` column, in any layout preference tuning reads): preference accuracy.
  The other readers never take such a file (a ShareGPT reader would read `chosen` as the reply). A file of single
  replies marked good or bad, without pairs, is refused unless answers are asked for (kind generation, which
  scores the replies marked good as references).

Light module (no torch): the pre-flight check and the Evaluate tab's preview read files through it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.data.files import TEXT_SUFFIXES, read_records
from studio.engine.data.formats import describe_drops, detect_format, split_mapping, to_conversations
from studio.engine.errors import BadDataset

TEXT_NAMES = ("text", "sentence", "review", "content", "document", "utterance", "comment", "tweet", "message")
LABEL_NAMES = ("label", "labels", "category", "class", "intent", "sentiment", "topic", "target")
KIND_OF_FORMAT = {"labelled": "classification", "text": "perplexity"}
PAIR_COLUMNS = ("chosen", "rejected")
# What a file of each kind holds, in words.
HOLDS = {"classification": "labelled text", "generation": "instruction/output pairs", "perplexity": "raw text",
         "preference": "preference pairs"}
MARKS_ONLY = "holds replies marked good/bad, not pairs; Evaluate compares models on pairs"
MARK_NOT_PAIR = "a single reply marked good or bad, not a pair of replies"
# More distinct labels than this (and more than half the rows) means the column is not a label column.
MAX_LABELS = 100


@dataclass
class EvalExample:
    where: str  # "line 12", "row 7": where the example is in the file
    prompt: list[dict]  # the conversation before the answer (empty for perplexity)
    reference: str  # the expected answer: the label, the reference reply, or the document itself
    input: str  # what a person reads as the question (the text, the last user turn)
    pair: dict | None = None  # preference: {"prompt", "chosen", "rejected"} messages, as preference tuning reads


@dataclass
class HeldOut:
    path: Path
    kind: str  # classification | generation | perplexity | preference
    format: str  # labelled | text | an SFT format | the preference layouts found ("ShareGPT pairs")
    examples: list[EvalExample]
    rows: int  # rows (or documents) in the file before anything was dropped
    labels: list[str] = field(default_factory=list)  # classification: the answer options
    columns: dict = field(default_factory=dict)  # {"text": …, "label": …} for labelled text
    dropped: dict = field(default_factory=dict)  # reason -> locations
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = {"classification": f"labelled text, {len(self.labels)} labels ({', '.join(self.labels[:8])}"
                                  f"{', …' if len(self.labels) > 8 else ''})",
                "generation": f"instruction/output pairs ({self.format})",
                "perplexity": "raw text (perplexity)",
                "preference": f"preference pairs ({self.format})"}[self.kind]
        text = f"{self.path.name}: {len(self.examples)} of {self.rows} examples usable — {what}"
        return text + (f"; dropped: {describe_drops(self.dropped)}" if self.dropped else "")

    def sample(self, limit: int, seed: int) -> "HeldOut":
        """At most `limit` examples drawn at random (files are often sorted by label), kept in file order."""
        if not limit or limit >= len(self.examples):
            return self
        keep = sorted(random.Random(seed).sample(range(len(self.examples)), limit))
        return HeldOut(self.path, self.kind, self.format, [self.examples[i] for i in keep], self.rows, self.labels,
                       self.columns, self.dropped, self.warnings)


def _label_text(value) -> str | None:
    if value is None or isinstance(value, float) and value != value:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # CSV and Parquet read 1 as 1.0 when a column has gaps
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    raise ValueError(type(value).__name__)


def sorted_labels(labels: set[str]) -> list[str]:
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels, key=str.casefold)


def labelled_columns(columns: list[str]) -> tuple[str, str] | None:
    """The (text, label) columns of a labelled-text file, or None."""
    text = next((c for c in TEXT_NAMES if c in columns), None)
    label = next((c for c in LABEL_NAMES if c in columns), None)
    return (text, label) if text and label else None


def _read_labelled(path: Path, records, columns: tuple[str, str]) -> HeldOut:
    text_col, label_col = columns
    result = HeldOut(path, "classification", "labelled", [], len(records.rows), columns={"text": text_col,
                                                                                       "label": label_col},
                     warnings=list(records.warnings))
    for row, where in zip(records.rows, records.where):
        text = row.get(text_col)
        try:
            label = _label_text(row.get(label_col))
        except ValueError as exc:
            result.dropped.setdefault(f"field '{label_col}' is a {exc}; expected one label", []).append(where)
            continue
        if not isinstance(text, str) or not text.strip():
            reason = f"field '{text_col}' is empty" if text in (None, "") or isinstance(text, str) else \
                f"field '{text_col}' is a {type(text).__name__}; expected text"
            result.dropped.setdefault(reason, []).append(where)
            continue
        if label is None:
            result.dropped.setdefault(f"field '{label_col}' is empty", []).append(where)
            continue
        result.examples.append(EvalExample(where, [{"role": "user", "content": text}], label, text))
    distinct = {e.reference for e in result.examples}
    if len(distinct) > MAX_LABELS and len(distinct) > len(result.examples) / 2:
        raise BadDataset(f"{path}: column '{label_col}' has {len(distinct)} different values in "
                         f"{len(result.examples)} rows; that is not a label column.",
                         "Map the column that holds the class of each text to 'label' (column mapping), or "
                         "evaluate as instruction/output pairs.", field="column_mapping")
    result.labels = sorted_labels(distinct)
    if len(result.labels) == 1:
        result.warnings.append(f"{path}: every row has the label {result.labels[0]!r}; accuracy on it says "
                               "little (a model that always answers it scores 100%).")
    return result


def _read_pairs(path: Path, records, fmt: str, mapping: dict) -> HeldOut:
    convs = to_conversations(records, fmt, mapping)
    result = HeldOut(path, "generation", convs.format, [], len(records.rows), dropped=dict(convs.dropped),
                     warnings=list(convs.warnings))
    for messages, where in zip(convs.conversations, convs.where):
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = messages[:last]
        users = [m["content"] for m in prompt if m["role"] == "user"]
        if not messages[last]["content"].strip():
            result.dropped.setdefault("the last reply is empty: there is no reference answer", []).append(where)
            continue
        result.examples.append(EvalExample(where, prompt, messages[last]["content"], users[-1] if users else ""))
    return result


def _read_documents(path: Path, records=None, text_col: str = "text") -> HeldOut:
    from studio.engine.data.corpus import split_text
    from studio.engine.data.files import read_text

    if records is None:
        docs = split_text(read_text(path), "blank_line")
        result = HeldOut(path, "perplexity", "text", [], len(docs))
        result.examples = [EvalExample(f"document {i}", [], d, d[:200]) for i, d in enumerate(docs, start=1)]
        return result
    result = HeldOut(path, "perplexity", "text", [], len(records.rows), warnings=list(records.warnings))
    for row, where in zip(records.rows, records.where):
        value = row.get(text_col)
        if isinstance(value, str) and value.strip():
            result.examples.append(EvalExample(where, [], value, value[:200]))
        else:
            result.dropped.setdefault(f"field '{text_col}' is empty or not text", []).append(where)
    return result


def reply_text(messages: list[dict]) -> str:
    """What a person reads of a reply (a reply that only calls tools has no text)."""
    return messages[-1]["content"] or ("(a tool call)" if messages[-1].get("tool_calls") else "")


def _marked_replies(records) -> str | None:
    """The good/bad column of a file of single marked replies (prompt + reply + true/false), or None."""
    from studio.engine.data.formats import LABEL_COLUMNS, _as_bool
    from studio.engine.preference.data import MARK_LAYOUTS

    columns = set(records.columns)
    label = next((c for c in LABEL_COLUMNS if c in columns), None)
    if label is None or not any(set(fields) <= columns for fields in MARK_LAYOUTS):
        return None
    marks = [_as_bool(row.get(label)) for row in records.rows]
    marks = [m for m in marks if m is not None]
    return label if marks and all(isinstance(m, bool) for m in marks) else None


def _refuse_marks(path: Path, label: str = "") -> BadDataset:
    column = f" (column '{label}')" if label else ""
    return BadDataset(f"{path} {MARKS_ONLY}{column}.",
                      "Use a file whose rows each hold a prompt with a chosen and a rejected reply (e.g. prompt, "
                      "chosen, rejected), or set the kind to answers to score the replies marked good as "
                      "references.", field="dataset")


def _read_preference(path: Path, mapping: dict) -> HeldOut:
    from studio.engine.preference.data import read_preferences

    data = read_preferences(path, mapping)
    if not data.pairs:
        raise _refuse_marks(path)
    rows = len(data.pairs) + len(data.marks) + data.dropped_count
    result = HeldOut(path, "preference", data.format, [], rows, dropped=dict(data.dropped),
                     warnings=list(data.warnings))
    if data.marks:
        result.dropped[MARK_NOT_PAIR] = list(data.mark_where)
    for pair, where in zip(data.pairs, data.pair_where):
        users = [m["content"] for m in pair["prompt"] if m["role"] == "user"]
        result.examples.append(EvalExample(where, pair["prompt"], reply_text(pair["chosen"]),
                                           users[-1] if users else "", pair=pair))
    return result


def read_heldout(path: str | Path, fmt: str = "auto", mapping: dict | None = None, kind: str = "auto") -> HeldOut:
    """The examples of a held-out file; BadDataset (naming the file, row and field) when nothing can be scored."""
    path = Path(str(path)).expanduser()
    if not str(path).strip() or str(path) == ".":
        raise BadDataset("No held-out file was chosen.", "Choose the file to evaluate on (never the training file).",
                         field="dataset")
    if path.suffix.lower() in TEXT_SUFFIXES:
        if kind not in ("auto", "perplexity") or fmt not in ("auto", "text"):
            raise BadDataset(f"{path} is plain text: it can only be scored by perplexity.",
                             "Set the kind to perplexity, or choose a file of labelled text or instruction/output "
                             "pairs.", field="kind")
        result = _read_documents(path)
    else:
        records = read_records(path)
        col_map, _ = split_mapping(mapping or {})
        if col_map:
            records.rows = [{col_map.get(k, k): v for k, v in row.items()} for row in records.rows]
            records.columns = [col_map.get(c, c) for c in records.columns]
        pairs = any(c in records.columns for c in PAIR_COLUMNS)
        if kind == "preference" or (pairs and kind == "auto"):
            return _as_kind(_read_preference(path, mapping or {}), kind)
        if pairs:
            raise BadDataset(f"{path} holds preference pairs (a chosen and a rejected reply): they are scored by "
                             f"preference accuracy, not as the kind '{kind}' asked for.",
                             "Set the kind to preference (or automatic).", field="kind")
        marked = _marked_replies(records) if kind == "auto" else None
        if marked:
            raise _refuse_marks(path, marked)
        chosen = fmt
        if fmt == "auto":
            chosen = detect_format(records.columns) or (
                "labelled" if labelled_columns(records.columns) else "text" if "text" in records.columns else None)
            if kind == "perplexity" and "text" in records.columns:
                chosen = "text"
        if chosen is None:
            raise BadDataset(f"{path}: cannot tell what to score from the columns found "
                             f"({', '.join(records.columns) or 'none'}). Expected labelled text (text and label), "
                             f"instruction/output pairs (e.g. instruction and output, or messages), preference pairs "
                             f"(prompt, chosen and rejected) or raw text (text).",
                             "Map your columns to these names with a column mapping.", field="columns")
        if chosen == "labelled":
            columns = labelled_columns(records.columns)
            if columns is None:
                raise BadDataset(f"{path}: labelled text needs a text column ({', '.join(TEXT_NAMES)}) and a label "
                                 f"column ({', '.join(LABEL_NAMES)}); columns found: {', '.join(records.columns)}.",
                                 "Map your columns to 'text' and 'label' with a column mapping.", field="columns")
            result = _read_labelled(path, records, columns)
        elif chosen == "text":
            if "text" not in records.columns:
                raise BadDataset(f"{path}: raw text needs a 'text' column; columns found: "
                                 f"{', '.join(records.columns)}.", field="columns")
            result = _read_documents(path, records)
        else:
            result = _read_pairs(path, records, chosen, mapping or {})
    return _as_kind(result, kind)


def _as_kind(result: HeldOut, kind: str) -> HeldOut:
    """The file read as the kind asked for: a fine-tuning file whose replies are labels can be classified, and
    labelled text can be answered by generation."""
    if kind in ("auto", result.kind):
        pass
    elif kind == "perplexity":
        raise BadDataset(f"{result.path}: perplexity needs raw text (a .txt file or a 'text' column); this file "
                         f"holds {result.kind} examples.", field="kind")
    elif result.kind == "perplexity":
        raise BadDataset(f"{result.path} holds raw text only: there is no answer to compare with, so it can only "
                         f"be scored by perplexity.", field="kind")
    elif kind == "classification":
        distinct = {e.reference.strip() for e in result.examples}
        if len(distinct) > MAX_LABELS and len(distinct) > len(result.examples) / 2:
            raise BadDataset(f"{result.path}: the replies take {len(distinct)} different values in "
                             f"{len(result.examples)} rows, so they are not labels to classify into.",
                             "Evaluate as answers (kind generation), or use a file of labelled text.", field="kind")
        for e in result.examples:
            e.reference = e.reference.strip()
        result.kind, result.labels = "classification", sorted_labels(distinct)
    else:
        result.kind = "generation"
    if not result.examples:
        raise BadDataset(f"{result.path}: nothing to score in {result.rows} rows"
                         + (f" — {describe_drops(result.dropped)}." if result.dropped else "."),
                         "Fix those rows, or check the format and column mapping.", field="dataset")
    return result
