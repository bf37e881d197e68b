"""Reading the files users bring, with errors that name the file, the line and what was expected.

JSON, JSONL and CSV are parsed here rather than through `datasets` because its loaders cannot
say which line of a file is broken; the rows become a `datasets.Dataset` after tokenization.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.data.hygiene import DuplicateKeys, duplicate_key_warning, strip_control_characters
from studio.engine.errors import BadDataset

TABLE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
TEXT_SUFFIXES = (".txt", ".md", ".text")


@dataclass
class Records:
    """Rows of a table file with where each came from ("line 12", "item 3", "row 7"), and warnings about
    what was cleaned or looks wrong (each naming the file and the locations)."""

    path: Path
    rows: list[dict]
    where: list[str]
    columns: list[str]
    warnings: list[str] = field(default_factory=list)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise BadDataset(f"{path} does not exist.")
    if path.is_dir():
        raise BadDataset(f"{path} is a folder; expected a data file ({', '.join(TABLE_SUFFIXES)}).")
    if path.stat().st_size == 0:
        raise BadDataset(f"{path} is empty.")


def read_text(path: Path) -> str:
    """The file as UTF-8 text, or an error that says where it stops being UTF-8 text."""
    path = Path(path)
    _check_file(path)
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadDataset(f"{path} is UTF-16 text; expected UTF-8. Save it again as UTF-8.")
    head = raw[:8192]
    # A stray NUL in a text file is stripped later with a warning; many of them, or NULs in bytes that are
    # not UTF-8, mean a binary file (an image, a spreadsheet, UTF-16 without its mark).
    if head.count(b"\x00") > max(1, len(head) // 100):
        raise BadDataset(f"{path} looks like a binary file (it contains NUL bytes); expected UTF-8 text.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in head:
            raise BadDataset(f"{path} looks like a binary file (it contains NUL bytes); expected UTF-8 text.") from None
        line = raw[: exc.start].count(b"\n") + 1
        raise BadDataset(f"{path}, line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; expected UTF-8 "
                         f"(the file may be Latin-1 or Windows-1252: save it again as UTF-8).") from None


def _clean_cell(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_rows(path: Path, text: str) -> Records:
    if not text.strip():
        raise BadDataset(f"{path} contains only whitespace; expected a JSON list of objects.")
    duplicates = DuplicateKeys()
    try:
        # strict=False: raw control characters inside strings are read, then stripped with a warning
        data = json.loads(text, strict=False, object_pairs_hook=duplicates)
    except json.JSONDecodeError as exc:
        first_line_end = text.find("\n")
        if exc.msg == "Extra data" and text.lstrip().startswith("{") and first_line_end > 0:
            return _jsonl_rows(path, text)  # JSON lines saved with a .json name
        raise BadDataset(f"{path}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}).") from None
    except RecursionError:
        raise BadDataset(f"{path}: the JSON is nested too deeply to read; expected a list of objects with text "
                         f"fields.") from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) == 1:  # {"data": [...]} style wrappers
            data = data[lists[0]]
        else:
            raise BadDataset(f"{path}: the top level is an object; expected a list of objects "
                             f"(one per example).")
    if not isinstance(data, list):
        raise BadDataset(f"{path}: the top level is a {type(data).__name__}; expected a list of objects.")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise BadDataset(f"{path}, item {i + 1}: a {type(row).__name__}; expected an object with named "
                             f"fields.")
    where = [f"item {i + 1}" for i in range(len(data))]
    keys_at: dict[str, list[str]] = {}
    for i, keys in sorted(duplicates.by_item(data).items()) if duplicates.found else ():
        for key in dict.fromkeys(keys):
            keys_at.setdefault(key, []).append(where[i])
    return _records(path, data, where, duplicate_key_warning(path, keys_at))


def _jsonl_rows(path: Path, text: str) -> Records:
    rows, where = [], []
    duplicates = DuplicateKeys()
    keys_at: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, strict=False, object_pairs_hook=duplicates)
        except json.JSONDecodeError as exc:
            raise BadDataset(f"{path}, line {number}, column {exc.colno}: invalid JSON ({exc.msg}); each line "
                             f"must be one JSON object.") from None
        except RecursionError:
            raise BadDataset(f"{path}, line {number}: the JSON is nested too deeply to read; expected one object "
                             f"with text fields.") from None
        if not isinstance(row, dict):
            raise BadDataset(f"{path}, line {number}: a {type(row).__name__}; expected a JSON object.")
        for key in dict.fromkeys(duplicates.take()):
            keys_at.setdefault(key, []).append(f"line {number}")
        rows.append(row)
        where.append(f"line {number}")
    return _records(path, rows, where, duplicate_key_warning(path, keys_at))


def _csv_rows(path: Path, text: str, delimiter: str) -> Records:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BadDataset(f"{path} has no header row; expected column names on the first line.") from None
    except csv.Error as exc:
        raise BadDataset(f"{path}, line 1: {exc}.") from None
    repeated = [name for i, name in enumerate(header) if name in header[:i]]
    warnings = [f"{path}, line 1: the header names the column(s) {', '.join(repr(n) for n in dict.fromkeys(repeated))} "
                f"more than once; only the last column of each name is read."] if repeated else []
    rows, where = [], []
    try:
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise BadDataset(f"{path}, line {reader.line_num}: {len(cells)} fields; expected {len(header)} "
                                 f"like the header ({', '.join(header)}).")
            rows.append(dict(zip(header, cells)))
            where.append(f"line {reader.line_num}")
    except csv.Error as exc:
        raise BadDataset(f"{path}, line {reader.line_num}: {exc}.") from None
    return _records(path, rows, where, warnings)


def _parquet_rows(path: Path) -> Records:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadDataset(f"{path} is not a readable Parquet file: {exc}.") from None
    rows = [{k: _clean_cell(v) for k, v in row.items()} for row in table.to_pylist()]
    return _records(path, rows, [f"row {i + 1}" for i in range(len(rows))])


def _records(path: Path, rows: list[dict], where: list[str], warnings: list[str] | None = None) -> Records:
    if not rows:
        raise BadDataset(f"{path} holds no examples.")
    columns: list[str] = []
    for row in rows[:1000]:
        for key in row:
            if key not in columns:
                columns.append(key)
    warnings = list(warnings or []) + strip_control_characters(path, rows, where)
    return Records(path=path, rows=rows, where=where, columns=columns, warnings=warnings)


def read_records(path: str | Path) -> Records:
    """Rows of a JSON, JSONL, CSV/TSV or Parquet file."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix in TEXT_SUFFIXES:
        raise BadDataset(f"{path} is plain text ('{suffix}'): raw text is pre-training data: open it in the "
                         f"Pre-train tab. Fine-tuning needs examples with a prompt and a reply, in a "
                         f"{', '.join(TABLE_SUFFIXES)} file.",
                         "Open the file in the Pre-train tab, or convert it to rows such as "
                         "{\"instruction\": …, \"output\": …}.", field="dataset")
    if suffix not in TABLE_SUFFIXES:
        raise BadDataset(f"{path}: unsupported file type '{suffix}'; expected one of {', '.join(TABLE_SUFFIXES)}.")
    text = read_text(path)
    if not text.strip():
        raise BadDataset(f"{path} contains only whitespace.")
    if suffix == ".json":
        return _json_rows(path, text)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path, text)
    return _csv_rows(path, text, "\t" if suffix == ".tsv" else ",")
