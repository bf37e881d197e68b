"""The bad-input corpus: files people really bring, each with what the error must say.

`python tests/data/bad/cases.py OUT_DIR` writes the files (the 50 MB one included) for trying them
in the app by hand; the tests write them into a temporary folder.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Case:
    name: str  # the file's name (its suffix picks the reader)
    make: Callable[[Path], None]  # writes the file (or folder) at the given path
    expect: tuple[str, ...]  # words the message must contain (besides the file's path)
    max_length: int = 512


def data(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def rows(items, jsonl: bool = False) -> Callable[[Path], None]:
    if jsonl:
        return data("".join(json.dumps(r) + "\n" for r in items).encode())
    return data(json.dumps(items).encode())


def parquet(columns: dict) -> Callable[[Path], None]:
    def make(path: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)
    return make


def huge_line(path: Path) -> None:
    with open(path, "w") as fh:  # one 50 MB line that is not JSON
        fh.write('{"instruction": "' + "x" * (50 * 2**20))


def huge_cell(path: Path) -> None:
    with open(path, "w") as fh:  # one valid row whose prompt is 50 MB
        fh.write(json.dumps({"instruction": "word " * (10 * 2**20), "output": "ok"}) + "\n")


GOOD = {"instruction": "Say hi.", "output": "Hi!"}

CASES = [
    Case("empty.json", data(b""), ("is empty",)),
    Case("whitespace.jsonl", data(b"  \n\t\n  \n"), ("only whitespace",)),
    Case("truncated.json", data(b'[{"instruction": "a", "output": "b"}, {"instruction": "c", "outp'),
         ("line 1, column", "invalid JSON")),
    Case("top_level_string.json", data(b'"hello"'), ("top level is a str", "list of objects")),
    Case("top_level_object.json", data(b'{"a": 1, "b": 2}'), ("top level is an object",)),
    Case("list_of_numbers.json", data(b"[1, 2, 3]"), ("item 1", "int", "object")),
    Case("bad_line_middle.jsonl",
         data(b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n{broken\n'
              b'{"instruction": "e", "output": "f"}\n'), ("line 3", "invalid JSON")),
    Case("array_line.jsonl", data(b'{"instruction": "a", "output": "b"}\n[1, 2]\n'), ("line 2", "list")),
    Case("ragged.csv", data(b"instruction,output\na,b\nc,d,e\nf,g\n"), ("line 3", "3 fields; expected 2")),
    Case("header_only.csv", data(b"instruction,output\n"), ("holds no examples",)),
    Case("latin1.csv", data("instruction,output\ncafé,crème\n".encode("latin-1")),
         ("line 2", "not UTF-8", "Latin-1")),
    Case("utf16.json", data(json.dumps([GOOD]).encode("utf-16")), ("UTF-16", "UTF-8")),
    Case("binary.json", data(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))), ("binary",)),
    Case("huge_line.jsonl", huge_line, ("line 1", "invalid JSON")),
    Case("huge_cell.jsonl", huge_cell, ("prompt alone is longer than the max length",)),
    Case("missing_columns.jsonl", rows([{"question": "a", "answer": "b"}], jsonl=True),
         ("question, answer", "instruction, output", "column mapping")),
    Case("missing_output.jsonl", rows([{"instruction": "a"}], jsonl=True),
         ("missing column(s) output", "Columns found: instruction")),
    Case("empty_outputs.json", rows([{"instruction": "a", "output": ""}, {"instruction": "b", "output": "  "}]),
         ("the assistant reply is empty", "item 1")),
    Case("unknown_roles.jsonl",
         rows([{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}], True),
         ("unknown role 'wizard'", "line 1")),
    Case("no_assistant.jsonl",
         rows([{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}], True),
         ("no assistant turn", "line 1")),
    Case("messages_not_list.jsonl", rows([{"messages": "hello"}], True), ("'messages' must be a non-empty list",)),
    Case("sharegpt_missing_value.json", rows([{"conversations": [{"from": "human"}]}]),
         ("needs 'from' and 'value'", "item 1")),
    Case("all_too_long.json", rows([{"instruction": "many words here " * 40, "output": "ok"}] * 3),
         ("prompt alone is longer than the max length (32 tokens)",), max_length=32),
    Case("null_cells.json", rows([{"instruction": None, "output": "a"}, {"instruction": "b", "output": None}]),
         ("field 'instruction' is empty (null)", "field 'output' is empty (null)")),
    Case("nan_cells.parquet", parquet({"instruction": ["a", "b"], "output": [float("nan"), None]}),
         ("field 'output'", "row 1")),
    Case("nested.parquet", parquet({"instruction": [{"text": "a"}], "output": [["b", "c"]]}),
         ("field 'instruction' is a dict; expected text", "row 1")),
    Case("deeply_nested.json", data(b"[" * 100_000 + b"]" * 100_000), ("nested too deeply to read",)),
    Case("deeply_nested_line.jsonl", data(b'{"instruction": "a", "output": "b"}\n' + b"[" * 100_000 + b"]" * 100_000),
         ("line 2", "nested too deeply to read")),
    Case("list_in_cell.jsonl", rows([{"instruction": ["a", "b"], "output": "c"}], True),
         ("field 'instruction' is a list; expected text",)),
    Case("bad_history.json", rows([{"instruction": "a", "output": "b", "history": "oops"}]),
         ("'history' must be a list",)),
    Case("a_folder.json", lambda path: path.mkdir(), ("is a folder",)),
    Case("spreadsheet.xlsx", data(b"PK\x03\x04 not really"), ("unsupported file type '.xlsx'",)),
    Case("no_header.csv", data(b""), ("is empty",)),
    Case("unclosed_quote.csv", data(b'instruction,output\n"a,b\n'), ("line",)),
    # Data people actually bring (issue 12): files in which no row is usable, each for a reason worth naming.
    Case("notes.txt", data(b"Once upon a time there was a fox.\n\nIt ran away.\n"),
         ("raw text is pre-training data: open it in the Pre-train tab",)),
    Case("only_text_rows.jsonl", rows([{"text": "A raw paragraph."}, {"text": "Another one."}], True),
         ("open it in the Pre-train tab", "column 'text'")),
    Case("images_only.jsonl",
         rows([{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a.png"}}]},
                             {"role": "assistant", "content": "A cat."}]}], True),
         ("a content part of type 'image_url' in 'messages'", "line 1")),
    Case("all_undesirable.jsonl",
         rows([{"prompt": "2+2?", "completion": "5", "label": False},
               {"prompt": "Capital of France?", "completion": "Rome", "label": False}], True),
         ("reply marked undesirable (column 'label' is false); preference tuning can use it", "line 1, line 2")),
    Case("assistant_first.jsonl",
         rows([{"messages": [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "How can I help?"}]}], True),
         ("the conversation starts with an assistant turn; expected a user turn first", "line 1")),
    Case("only_assistant_turns.json",
         rows([{"conversations": [{"from": "gpt", "value": "One."}, {"from": "gpt", "value": "Two."}]}]),
         ("no user turn", "item 1")),
    Case("ends_with_user.jsonl",
         rows([{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                             {"role": "user", "content": "And?"}]}], True),
         ("the conversation ends with a user turn that has no reply", "line 1")),
    Case("tools_not_json.jsonl",
         rows([{"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny."}],
                "tools": "[{name: get_weather"}], True),
         ("column 'tools' is not valid JSON", "line 1")),
    Case("function_call_not_json.json",
         rows([{"conversations": [{"from": "human", "value": "Weather?"},
                                  {"from": "function_call", "value": "get_weather(Oslo)"},
                                  {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]}]),
         ("a 'function_call' turn in 'conversations' is not JSON", "item 1")),
]


def write_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES:
        path = folder / case.name
        case.make(path)
        paths[case.name] = path
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    for name, path in write_all(out).items():
        print(path)
