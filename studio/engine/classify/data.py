"""Labelled text for classification: the text (and optional pair) column, the label column, what kind of problem
the labels describe, and every row that cannot be used, named by file and row.

Light module (no torch): the pre-flight check and the Fine-tune tab's preview read files through it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.data.files import TEXT_SUFFIXES, read_records
from studio.engine.errors import BadDataset
from studio.engine.evaluate.heldout import LABEL_NAMES, MAX_LABELS, TEXT_NAMES, sorted_labels, labelled_columns

# Pair tasks (entailment, paraphrase) whose two text columns are found by name when none is given.
PAIR_NAMES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
              ("text", "text_pair"), ("text_a", "text_b"), ("query", "passage"))
# Where a list of skipped rows is cut short in a warning.
SHOWN_ROWS = 8


@dataclass
class LabelledData:
    path: Path
    text_column: str
    pair_column: str | None
    label_column: str
    problem: str  # resolved: single_label | multi_label | regression
    texts: list[str]
    pairs: list[str] | None
    labels: list  # str (single), list[str] (multi), float (regression), one per kept row
    label_names: list[str]  # sorted; the index is the class id (empty for regression)
    counts: dict[str, int]  # rows per label
    skipped: list[str] = field(default_factory=list)  # "row 12: empty text" ...
    warnings: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # the row of each kept example ("line 7")

    def label_ids(self) -> list:
        """Class ids (single label), 0/1 rows over label_names (multi label) or the numbers (regression)."""
        index = {name: i for i, name in enumerate(self.label_names)}
        if self.problem == "single_label":
            return [index[label] for label in self.labels]
        if self.problem == "multi_label":
            return [[1.0 if name in set(row) else 0.0 for name in self.label_names] for row in self.labels]
        return [float(v) for v in self.labels]

    def subset(self, rows: list[int]) -> "LabelledData":
        pick = (lambda values: [values[i] for i in rows])
        labels = pick(self.labels)
        return LabelledData(self.path, self.text_column, self.pair_column, self.label_column, self.problem,
                            pick(self.texts), pick(self.pairs) if self.pairs is not None else None, labels,
                            self.label_names, count_labels(self.problem, labels, self.label_names), [], [],
                            pick(self.where) if self.where else [])


def count_labels(problem: str, labels: list, label_names: list[str]) -> dict[str, int]:
    if problem == "regression":
        return {}
    counts = Counter(name for row in labels for name in (row if problem == "multi_label" else [row]))
    return {name: counts.get(name, 0) for name in label_names}


def _choose_columns(path: Path, columns: list[str], cfg) -> tuple[str, str | None, str]:
    found = ", ".join(repr(c) for c in columns) or "none"
    for name in ("text_column", "text_pair_column", "label_column"):
        chosen = str(getattr(cfg, name, "") or "").strip()
        if chosen and chosen not in columns:
            raise BadDataset(f"{path}: there is no column {chosen!r} (field '{name}'); the columns found are "
                             f"{found}.", f"Set '{name}' to one of the columns found, or leave it empty to detect "
                             "it.", field=name)
    text = str(cfg.text_column or "").strip()
    pair = str(getattr(cfg, "text_pair_column", "") or "").strip() or None
    label = str(cfg.label_column or "").strip()
    if not label:
        label = next((c for c in LABEL_NAMES if c in columns), "")
    if not text:
        detected = labelled_columns(columns)
        text = detected[0] if detected else next((c for c in TEXT_NAMES if c in columns), "")
        if not text or (pair is None and text in ("text", "sentence")):
            both = next(((a, b) for a, b in PAIR_NAMES if a in columns and b in columns), None)
            if both and (not text or pair is None and text == both[0]):
                text, pair = both
    if not text:
        raise BadDataset(f"{path}: no text column; expected one named {', '.join(TEXT_NAMES)} — the columns found "
                         f"are {found}.", "Set 'text column' to the column that holds the text.",
                         field="text_column")
    if not label:
        raise BadDataset(f"{path}: no label column; expected one named {', '.join(LABEL_NAMES)} — the columns "
                         f"found are {found}.", "Set 'label column' to the column that holds the label.",
                         field="label_column")
    if label in (text, pair):
        raise BadDataset(f"{path}: column {label!r} is both the text and the label.",
                         "Choose different text and label columns.", field="label_column")
    return text, pair, label


def _number(value) -> float | None:
    """A label cell as a number, or None (text that is not a number, lists, empty cells)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _is_list_cell(value) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    return isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]")


def _resolve_problem(path: Path, rows: list[dict], label: str, problem: str, separator: str,
                     warnings: list[str]) -> str:
    cells = [row.get(label) for row in rows if row.get(label) not in (None, "")]
    if problem == "auto" and cells and any(_is_list_cell(v) for v in cells):
        return "multi_label"
    if problem in ("auto", "single_label"):
        numbers = [_number(v) for v in cells]
        if cells and all(n is not None for n in numbers) and any(not n.is_integer() for n in numbers):
            example = next(v for v, n in zip(cells, numbers) if not n.is_integer())
            raise BadDataset(f"{path}: column {label!r} holds numbers with fractions (e.g. {example!r}), not class "
                             "labels.", "If each text has a score to predict, set problem: regression; if the "
                             "numbers are classes, write them as whole numbers or names.", field="problem")
        if problem == "auto" and separator and sum(separator in str(v) for v in cells) > len(cells) / 10:
            warnings.append(f"{path}: many labels in column {label!r} contain {separator!r}; if a text can have "
                            f"several labels, set problem: multi_label.")
        return "single_label"
    return problem


def _label_cell(value, problem: str, separator: str):
    """The label of one cell, None when it is empty; ValueError with the reason when it cannot be read."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return None
    if problem == "regression":
        number = _number(value)
        if number is None:
            if isinstance(value, str) and not value.strip():
                return None
            raise ValueError(f"{value!r} is not a number")
        return number
    if problem == "multi_label":
        if isinstance(value, str) and _is_list_cell(value):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value.strip()[1:-1].replace(",", separator)
        if isinstance(value, (list, tuple)):
            names = [_single(v) for v in value]
        else:
            names = [part.strip() for part in _single(value).split(separator)] if _single(value) else []
        if isinstance(value, str) and not value.strip():
            return None
        return sorted({n.strip("'\" ") for n in names if n and n.strip("'\" ")})
    text = _single(value)
    return text or None


def _single(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # CSV and Parquet read 1 as 1.0 when a column has gaps
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    raise ValueError(f"a {type(value).__name__}, expected one label")


def _wrong_label_column(path: Path, rows: list[dict], columns: list[str], label: str, distinct: int,
                        kept: int) -> BadDataset:
    few = [c for c in columns if c != label and 1 < len({str(r.get(c)) for r in rows}) <= MAX_LABELS]
    suggestion = f" Columns with few distinct values: {', '.join(repr(c) for c in few)}." if few else ""
    return BadDataset(f"{path}: column {label!r} has {distinct} different labels in {kept} rows; it is probably "
                      f"the wrong column.{suggestion}", "Set 'label column' to the column that holds the class of "
                      "each text, or set problem: regression if it holds a number to predict.",
                      field="label_column")


def read_labelled(path, cfg, *, label_names: list[str] | None = None, problem: str | None = None) -> LabelledData:
    """The usable rows of a labelled file. `label_names` (the training file's) makes this a validation file whose
    every label must be among them; `problem` (the training file's resolved one) overrides cfg.problem. Raises
    BadDataset naming the file, the row and the column."""
    path = Path(str(path)).expanduser()
    if path.suffix.lower() in TEXT_SUFFIXES:
        raise BadDataset(f"{path} is plain text; classification needs a table with a text column and a label "
                         f"column (CSV, TSV, JSON, JSONL or Parquet).", field="dataset")
    records = read_records(path)
    text_col, pair_col, label_col = _choose_columns(path, records.columns, cfg)
    warnings = list(records.warnings)
    problem = problem or cfg.problem
    separator = getattr(cfg, "label_separator", ";") or ";"
    problem = _resolve_problem(path, records.rows, label_col, problem, separator, warnings)
    texts, pairs, labels, where, skipped = [], [] if pair_col else None, [], [], []
    for row, at in zip(records.rows, records.where):
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            what = "empty text" if text in (None, "") or isinstance(text, str) else \
                f"a {type(text).__name__} where text was expected"
            skipped.append(f"{at}: {what} in column {text_col!r}")
            continue
        pair = row.get(pair_col) if pair_col else None
        if pair_col and (not isinstance(pair, str) or not pair.strip()):
            skipped.append(f"{at}: empty text in column {pair_col!r}")
            continue
        try:
            label = _label_cell(row.get(label_col), problem, separator)
        except ValueError as exc:
            raise BadDataset(f"{path}, {at}: column {label_col!r} holds {exc}.",
                             "Fix the row, or check the label column and the problem kind.",
                             field="label_column") from None
        if label is None:
            skipped.append(f"{at}: empty label in column {label_col!r}")
            continue
        texts.append(text)
        if pairs is not None:
            pairs.append(pair)
        labels.append(label)
        where.append(at)
    if not texts:
        reasons = Counter(s.split(": ", 1)[1] for s in skipped)
        raise BadDataset(f"{path}: none of the {len(records.rows)} rows is usable ("
                         f"{'; '.join(f'{n} × {r}' for r, n in reasons.most_common(3))}).",
                         "Check the text and label columns.", field="text_column")
    if skipped:
        shown = ", ".join(s.split(":")[0] for s in skipped[:SHOWN_ROWS]) + (", …" if len(skipped) > SHOWN_ROWS else "")
        warnings.append(f"{path}: {len(skipped)} of {len(records.rows)} rows skipped (empty text or label): {shown}.")
    if problem == "regression":
        names: list[str] = []
    elif label_names is not None:
        names = list(label_names)
        seen = {n for row in labels for n in (row if problem == "multi_label" else [row])}
        unknown = sorted_labels(seen - set(names))
        if unknown:
            raise BadDataset(f"{path}: the label(s) {', '.join(repr(u) for u in unknown[:10])}"
                             f"{' …' if len(unknown) > 10 else ''} in column {label_col!r} are not in the training "
                             f"data, whose labels are {', '.join(repr(n) for n in names[:20])}.",
                             "Add examples of these labels to the training file, or remove those rows from the "
                             "validation file.", field="validation_file")
    else:
        seen = {n for row in labels for n in (row if problem == "multi_label" else [row])}
        if len(seen) > MAX_LABELS and len(seen) > len(labels) / 2:
            raise _wrong_label_column(path, records.rows, records.columns, label_col, len(seen), len(labels))
        names = sorted_labels(seen) if seen else []
        if problem == "single_label" and len(names) < 2:
            raise BadDataset(f"{path}: every usable row has the label {names[0]!r} (column {label_col!r}); a "
                             "classifier needs at least two classes to learn.",
                             "Add examples of the other classes, or check the label column.", field="label_column")
        if problem == "multi_label" and not names:
            raise BadDataset(f"{path}: no row has any label in column {label_col!r}.", field="label_column")
    return LabelledData(path, text_col, pair_col, label_col, problem, texts, pairs, labels, names,
                        count_labels(problem, labels, names), skipped, warnings, where)


def imbalance(counts: dict[str, int]) -> float | None:
    """The largest class count over the smallest (None for fewer than two labels); inf if a label never occurs."""
    values = list(counts.values())
    if len(values) < 2:
        return None
    return max(values) / min(values) if min(values) else math.inf


def label_summary(data: LabelledData) -> dict:
    """What a person sees about the data: rows, columns, labels (most frequent first) and problems."""
    ratio = imbalance(data.counts)
    summary = {"rows": len(data.texts), "problem": data.problem, "text_column": data.text_column,
               "pair_column": data.pair_column, "label_column": data.label_column,
               "labels": dict(sorted(data.counts.items(), key=lambda kv: (-kv[1], data.label_names.index(kv[0])))),
               "imbalance": None if ratio is None else (round(ratio, 3) if math.isfinite(ratio) else None),
               "skipped": len(data.skipped), "warnings": list(data.warnings)}
    if data.problem == "regression" and data.labels:
        values = [float(v) for v in data.labels]
        summary["range"] = [min(values), max(values)]
    return summary


def _stratum(data: LabelledData, i: int, bins: list[float]) -> str:
    label = data.labels[i]
    if data.problem == "single_label":
        return label
    if data.problem == "multi_label":
        # Stratified by each row's rarest label, so rare labels reach the validation data too.
        return min(label, key=lambda n: (data.counts.get(n, 0), n)) if label else ""
    return str(sum(float(label) > b for b in bins))  # regression: the value's decile


def split_validation(data: LabelledData, fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """Hold out `fraction` of the rows, the same fraction of each label (seeded). A label with one row stays in
    training, where the model can learn it."""
    import random

    bins: list[float] = []
    if data.problem == "regression":
        values = sorted(float(v) for v in data.labels)
        bins = [values[len(values) * q // 10] for q in range(1, 10)]
    strata: dict[str, list[int]] = {}
    for i in range(len(data.texts)):
        strata.setdefault(_stratum(data, i, bins), []).append(i)
    rng = random.Random(seed)
    held: list[int] = []
    for key in sorted(strata):
        rows = strata[key]
        rng.shuffle(rows)
        n = round(len(rows) * fraction)
        if n == 0 and len(rows) >= 2 and rng.random() < len(rows) * fraction:
            n = 1  # small strata still reach validation, in proportion on average
        held += rows[:min(n, len(rows) - 1)]
    if not held:
        held = [rng.randrange(len(data.texts))]
    keep = set(held)
    return data.subset([i for i in range(len(data.texts)) if i not in keep]), data.subset(sorted(held))


def read_run_data(cfg) -> tuple[LabelledData, LabelledData, LabelledData | None]:
    """The training file as read, the training rows and the validation rows (a validation file, a stratified
    share of the training file, or None)."""
    full = read_labelled(cfg.dataset, cfg)
    if str(cfg.validation_file or "").strip():
        val = read_labelled(cfg.validation_file, cfg, label_names=full.label_names, problem=full.problem)
        return full, full, val
    if cfg.validation_fraction > 0 and len(full.texts) >= 2:
        train, val = split_validation(full, cfg.validation_fraction, cfg.seed)
        return full, train, val
    return full, full, None
