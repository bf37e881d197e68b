"""What the dataset panel shows about a file, computed without Qt: the file read and its format detected
(`parse_dataset`), then the rows rendered with the model's chat template and their token lengths
summarised (`render_dataset`). `analyse_dataset` runs both. Every failure comes back as a StudioError whose
message names the file; nothing here raises on odd input except `AnalysisCancelled`.

Only light modules are imported at the top: the GUI imports this one, and the tokenizer (transformers)
is loaded lazily in `render_dataset`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from studio.engine.data.formats import FORMAT_COLUMNS, Conversations, detect_format, split_mapping
from studio.engine.errors import BadDataset, StudioError

PREVIEW_ROWS = 20
PREVIEW_CHARS = 2000  # per message: a 50 MB cell must not become a 50 MB label
SUMMARY_ROW_LIMIT = 5000  # token lengths are estimated from this many rows of a larger file
# A column mapped here is read by no format: the way to leave out a column whose name a format uses.
NOT_USED = "(not used)"
# Keys of config.json that hold a model's context length, by architecture family.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length", "seq_length",
                "n_ctx", "max_seq_length")
# Tokenizers without a limit report a huge placeholder (transformers uses 1e30); above this it means "unknown".
SANE_TOKENIZER_LIMIT = 10_000_000


class AnalysisCancelled(Exception):
    """The analysis was superseded by newer settings; its result would be thrown away."""


@dataclass
class ParsedDataset:
    """The file read and converted to conversations (or why not)."""

    path: str
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    detected: str | None = None  # format told by the (mapped) columns
    conversations: Conversations | None = None
    preview: list[tuple[str, list[dict]]] = field(default_factory=list)  # (where, clipped messages)
    error: StudioError | None = None
    # What was cleaned or looks wrong (control characters stripped, duplicate keys, placeholders left,
    # formats mixed…), each naming the file and the locations; shown beside the summary, never blocking.
    warnings: list[str] = field(default_factory=list)
    placeholders: dict[str, list[str]] = field(default_factory=dict)  # {{name}} found -> locations

    @property
    def format(self) -> str | None:
        return self.conversations.format if self.conversations else None

    @property
    def dropped(self) -> dict[str, list[str]]:
        return self.conversations.dropped if self.conversations else {}


@dataclass
class RenderedDataset:
    """The rows as the model sees them and their token lengths (or why not)."""

    previews: list[tuple[str, str, list[tuple[int, int]]]] = field(default_factory=list)  # (where, text, spans)
    summary: object = None  # render.DatasetSummary
    sampled: bool = False  # summary estimated from the first SUMMARY_ROW_LIMIT rows
    fallback_template: bool = False  # the model has no chat template of its own
    context_length: int | None = None
    error: StudioError | None = None  # a problem of the data (blocks training)
    model_error: StudioError | None = None  # the tokenizer could not be loaded (the model picker's business)


@dataclass
class DatasetAnalysis:
    parsed: ParsedDataset
    rendered: RenderedDataset | None = None  # None without a model or when the file could not be used


def _shown(message: dict) -> dict:
    """A message as the preview shows it before any template: tool calls written out in its text."""
    if not message.get("tool_calls"):
        return message
    from studio.engine.data.tools import call_text

    lines = ([message["content"]] if message["content"].strip() else []) + \
        [f"[tool call] {call_text(c)}" for c in message["tool_calls"]]
    return {**message, "content": "\n".join(lines)}


def clip_messages(messages: list[dict], show_calls: bool = False) -> list[dict]:
    """Messages cut to what a preview shows, marked where they were cut; with `show_calls`, tool calls written
    out in the text (for showing the messages as they are, not for a chat template)."""
    if show_calls:
        messages = [_shown(m) for m in messages]
    return [{**m, "content": m["content"][:PREVIEW_CHARS] + f" … ({len(m['content']) - PREVIEW_CHARS:,} more "
             f"characters)"} if len(m["content"]) > PREVIEW_CHARS else m for m in messages]


def mapping_targets(fmt: str, detected: str | None = None) -> list[str]:
    """Column names a mapping may rename to: those of the chosen format; for auto those of the detected
    format first, then the others (auto may still land on any format)."""
    if fmt in FORMAT_COLUMNS:
        order = [fmt]
    else:
        order = ([detected] if detected in FORMAT_COLUMNS else []) + [f for f in FORMAT_COLUMNS if f != detected]
    targets: list[str] = []
    for name in order:
        required, optional = FORMAT_COLUMNS[name]
        targets += [c for c in (*required, *optional) if c not in targets]
    return targets


def _naming_file(exc: BaseException, path) -> StudioError:
    """The exception as a StudioError whose message names `path`: unexpected ones become BadDataset."""
    if isinstance(exc, StudioError):
        if str(path) in exc.message:
            return exc
        return type(exc)(f"{path}: {exc.message}", exc.hint, field=exc.field)
    if isinstance(exc, RecursionError):
        return BadDataset(f"{path}: the data is nested too deeply to read (more than about "
                          f"{sys.getrecursionlimit()} levels); expected rows of plain fields.")
    if isinstance(exc, MemoryError):
        return BadDataset(f"{path} is too large to read into memory.", "Split it into smaller files.")
    return BadDataset(f"{path} could not be read: {type(exc).__name__}: {exc}")


def _check(cancelled: Callable[[], bool] | None) -> None:
    if cancelled is not None and cancelled():
        raise AnalysisCancelled


def parse_dataset(path, fmt: str = "auto", mapping: dict | None = None,
                  cancelled: Callable[[], bool] | None = None, placeholders: dict | None = None) -> ParsedDataset:
    """Read the file, detect its format and convert the rows; errors are returned, not raised.
    `placeholders` ({name: value}) fill `{{name}}` in the text, as the fine-tuning config's knob does."""
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import to_conversations

    parsed = ParsedDataset(path=str(path))
    try:
        records = read_records(path)
    except Exception as exc:  # noqa: BLE001 - any failure is shown, naming the file
        parsed.error = _naming_file(exc, path)
        return parsed
    _check(cancelled)
    col_map, _ = split_mapping(mapping or {})
    parsed.columns, parsed.rows = list(records.columns), len(records.rows)
    parsed.warnings = list(records.warnings)
    parsed.detected = detect_format([col_map.get(c, c) for c in records.columns])
    try:
        convs = to_conversations(records, fmt, mapping, placeholders=placeholders)
    except Exception as exc:  # noqa: BLE001
        parsed.error = _naming_file(exc, path)
        return parsed
    _check(cancelled)
    parsed.conversations = convs
    parsed.warnings, parsed.placeholders = list(convs.warnings), dict(convs.placeholders)
    parsed.preview = [(where, clip_messages(messages, show_calls=True)) for where, messages
                      in zip(convs.where[:PREVIEW_ROWS], convs.conversations[:PREVIEW_ROWS])]
    return parsed


def render_dataset(parsed: ParsedDataset, model: str, max_length: int, train_on_prompt: bool = False,
                   cancelled: Callable[[], bool] | None = None) -> RenderedDataset:
    """Render the preview rows with the model's chat template and summarise the token lengths of all rows."""
    from studio.engine.data.render import assistant_spans, ensure_chat_template, tokenize_all
    from studio.engine.models import load_tokenizer, resolve_model_path

    rendered = RenderedDataset()
    try:
        folder = resolve_model_path(model)
        tokenizer = load_tokenizer(folder)
    except StudioError as exc:
        rendered.model_error = exc
        return rendered
    rendered.context_length = model_context_length(folder)
    rendered.fallback_template = ensure_chat_template(tokenizer)
    _check(cancelled)

    def check_progress(_fraction: float) -> None:
        _check(cancelled)

    convs = parsed.conversations
    try:
        for where, messages in zip(convs.where[:PREVIEW_ROWS], convs.conversations[:PREVIEW_ROWS]):
            text, spans = assistant_spans(tokenizer, clip_messages(messages))
            rendered.previews.append((where, text, spans))
        _check(cancelled)
        rendered.sampled = len(convs.conversations) > SUMMARY_ROW_LIMIT
        if rendered.sampled:
            convs = dataclasses.replace(convs, conversations=convs.conversations[:SUMMARY_ROW_LIMIT],
                                        where=convs.where[:SUMMARY_ROW_LIMIT], labels=convs.labels[:SUMMARY_ROW_LIMIT])
        _, rendered.summary = tokenize_all(tokenizer, convs, max_length, train_on_prompt, progress=check_progress)
    except AnalysisCancelled:
        raise
    except StudioError as exc:
        rendered.error = _naming_file(exc, parsed.path)
    except Exception as exc:  # noqa: BLE001 - e.g. a chat template that rejects these conversations
        if isinstance(exc, (RecursionError, MemoryError)):
            rendered.error = _naming_file(exc, parsed.path)
        else:
            rendered.error = BadDataset(f"{parsed.path}: the rows could not be rendered with the model's chat "
                                        f"template: {type(exc).__name__}: {exc}",
                                        "Check the roles and their order, or choose a model whose template fits.")
    return rendered


def analyse_dataset(path, fmt: str = "auto", mapping: dict | None = None, model: str = "", max_length: int = 512,
                    train_on_prompt: bool = False, *, on_parsed: Callable[[ParsedDataset], None] | None = None,
                    cancelled: Callable[[], bool] | None = None, placeholders: dict | None = None
                    ) -> DatasetAnalysis:
    """Parse, then (with a model and usable rows) render and summarise. `on_parsed` sees the first half
    as soon as it is ready, so a preview can show before tokenization ends."""
    parsed = parse_dataset(path, fmt, mapping, cancelled, placeholders)
    if on_parsed is not None:
        on_parsed(parsed)
    if parsed.error is not None or not model:
        return DatasetAnalysis(parsed)
    return DatasetAnalysis(parsed, render_dataset(parsed, model, max_length, train_on_prompt, cancelled))


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def model_context_length(folder) -> int | None:
    """The longest sequence the model in `folder` was built for, from config.json (nested text_config of
    multimodal models included), else the tokenizer's model_max_length when it is a real limit; None if
    neither says."""
    folder = Path(folder)
    config = _json_object(folder / "config.json")
    text_config = config.get("text_config")
    for cfg in (config, text_config if isinstance(text_config, dict) else {}):
        for key in CONTEXT_KEYS:
            if (value := _positive_int(cfg.get(key))) is not None:
                return value
    value = _positive_int(_json_object(folder / "tokenizer_config.json").get("model_max_length"))
    return value if value is not None and value <= SANE_TOKENIZER_LIMIT else None


def context_problem(max_length: int, context_length: int | None) -> str | None:
    """Why `max_length` cannot be used with a model of this context length, or None."""
    if context_length is not None and max_length > context_length:
        return (f"Max length {max_length} is above this model's context of {context_length} tokens; "
                f"set it to {context_length} or less.")
    return None


def one_line_summary(summary) -> str:
    """A render.DatasetSummary in one line (the details go to `DatasetSummary.describe`)."""
    dropped = summary.rows - summary.used
    return (f"{summary.used} of {summary.rows} rows used ({summary.format})"
            + (f", {dropped} dropped" if dropped else "")
            + f" · tokens median {summary.median_tokens:.0f}, max {summary.max_tokens}"
            + f" · {summary.truncated} truncated")
