"""Few-shot examples and replies marked good, saved as a fine-tuning dataset (alpaca, messages or sharegpt) that
the Fine-tune tab's loader (files.read_records + formats.to_conversations) reads back."""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.prompting.errors import BadPrompt
from studio.engine.prompting.presets import Example

DATASET_FORMATS = ("alpaca", "messages", "sharegpt")


def example_conversations(examples: list[Example], system: str = "") -> list[list[dict]]:
    sys = [{"role": "system", "content": system}] if system.strip() else []
    return [sys + [{"role": "user", "content": e.input}, {"role": "assistant", "content": e.output}]
            for e in examples]


def _alpaca_row(conv: list[dict]) -> dict:
    system = conv[0]["content"] if conv and conv[0]["role"] == "system" else ""
    turns = conv[1:] if system else conv
    pairs = [(turns[i], turns[i + 1]) for i in range(0, len(turns) - 1, 2)]
    row = {"instruction": pairs[-1][0]["content"], "input": "", "output": pairs[-1][1]["content"]}
    if system:
        row["system"] = system
    if len(pairs) > 1:
        row["history"] = [[u["content"], a["content"]] for u, a in pairs[:-1]]
    return row


def _sharegpt_row(conv: list[dict]) -> dict:
    tags = {"user": "human", "assistant": "gpt"}
    system = conv[0]["content"] if conv and conv[0]["role"] == "system" else ""
    turns = conv[1:] if system else conv
    row = {"conversations": [{"from": tags[m["role"]], "value": m["content"]} for m in turns]}
    if system:
        row["system"] = system
    return row


def _messages_row(conv: list[dict]) -> dict:
    return {"messages": [dict(role=m["role"], content=m["content"]) for m in conv]}


ROW_WRITERS = {"alpaca": _alpaca_row, "messages": _messages_row, "sharegpt": _sharegpt_row}


def _check_dataset_conversation(conv: list[dict], number: int) -> None:
    turns = conv[1:] if conv and conv[0]["role"] == "system" else conv
    roles = [m["role"] for m in turns]
    expected = ["user", "assistant"] * (len(turns) // 2)
    if not turns or len(turns) % 2 or roles != expected:
        raise BadPrompt(f"Example {number} is not a sequence of user/assistant pairs ending in a reply "
                        f"(roles: {', '.join(roles) or 'none'}).", field="examples")
    if not turns[-1]["content"].strip():
        raise BadPrompt(f"Example {number} has an empty reply.", field="examples")


def save_dataset(conversations: list[list[dict]], path: str | Path, fmt: str = "alpaca") -> Path:
    """Write conversations as a dataset in format `fmt`: JSON Lines if the name ends in .jsonl, else a JSON list."""
    path = Path(path)
    if fmt not in DATASET_FORMATS:
        raise BadPrompt(f"Unknown dataset format {fmt!r}; expected one of {', '.join(DATASET_FORMATS)}.",
                        field="format")
    if not conversations:
        raise BadPrompt("There is nothing to save: add few-shot examples or mark replies as good first.",
                        field="examples")
    rows = []
    for number, conv in enumerate(conversations, start=1):
        _check_dataset_conversation(conv, number)
        rows.append(ROW_WRITERS[fmt](conv))
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        text = json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadPrompt(f"Could not write {path}: {exc.strerror or exc}.",
                        "Choose a folder you can write to.") from None
    return path
