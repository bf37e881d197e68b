"""Batch prompting files: prompts in (a text file, or JSON / JSON Lines objects with a "prompt" field), each
prompt's replies out (CSV or JSON Lines)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

BATCH_COLUMNS = ("prompt", "base", "tuned", "base_tokens", "tuned_tokens", "error")


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts from a text file (one a line, blank lines skipped) or a JSON / JSON Lines file of objects
    with a "prompt" field (read by the dataset reader, so errors name the line or item)."""
    from studio.engine.data.files import TABLE_SUFFIXES, read_records, read_text
    from studio.engine.errors import BadDataset

    path = Path(path)
    if path.suffix.lower() in TABLE_SUFFIXES:
        records = read_records(path)
        prompts = []
        for row, where in zip(records.rows, records.where):
            if not isinstance(row.get("prompt"), str):
                raise BadDataset(f"{path}, {where}: expected an object with a text field \"prompt\".")
            prompts.append(row["prompt"])
    else:
        prompts = [line for line in read_text(path).splitlines() if line.strip()]
    if not prompts:
        raise BadDataset(f"{path} holds no prompts.")
    return prompts


def batch_columns(rows: list[dict]) -> list[str]:
    """The columns of batch results: the known ones in a fixed order, then any others."""
    present = {k for row in rows for k in row}
    return [c for c in BATCH_COLUMNS if c in present] + sorted(present - set(BATCH_COLUMNS))


def save_batch_results(rows: list[dict], path: str | Path) -> Path:
    """Rows (prompt, base, tuned, ...) as CSV or, for .jsonl names, JSON Lines."""
    path = Path(path)
    columns = batch_columns(rows)
    rows = [{c: row[c] for c in columns if c in row} for row in rows]
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return path
