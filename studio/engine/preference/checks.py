"""The pre-flight check of a preference-tuning run: the model (a causal LM), the adapter to start from, the pairs or
marked replies the objective learns from, their lengths in tokens through the chat template, the memory the
reference needs, resume, schedule and disk, all before any worker starts. Reads files and the tokenizer only,
never a torch model."""

from __future__ import annotations

import json
import statistics
from collections import OrderedDict
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.preference.config import PAIRED
from studio.engine.preference.scoring import common_prefix

# Rows tokenized to measure lengths: enough to be sure, few enough to be instant.
TOKENIZE_SAMPLE = 2000
_parsed: OrderedDict = OrderedDict()
_token_counts: OrderedDict = OrderedDict()
_pair_columns: OrderedDict = OrderedDict()
FULL_MEMORY_NOTE = ("Full fine-tuning keeps the reference model's log-probabilities, computed once before training "
                    "(one extra pass over the data, no second copy of the model).")


def _data_key(path: str, mapping: dict | None) -> tuple:
    from studio.engine.preflight_cache import file_identity

    return file_identity(Path(path)), tuple(sorted((str(k), repr(v)) for k, v in (mapping or {}).items()))


def cached_preferences(path: str, mapping: dict | None = None):
    """read_preferences, kept for the last few files: the live check runs on every edit of the form."""
    from studio.engine.preference.data import read_preferences
    from studio.engine.preflight_cache import _remember

    return _remember(_parsed, _data_key(path, mapping), lambda: read_preferences(path, mapping or {}))


def holds_pairs(path: str, mapping: dict | None = None) -> bool:
    """Whether a data file has `chosen` and `rejected` columns (after the mapping): preference pairs."""
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import split_mapping
    from studio.engine.preflight_cache import _remember

    def look() -> bool:
        try:
            columns = read_records(path).columns
        except StudioError:
            return False
        renames = split_mapping(mapping or {})[0]
        return {"chosen", "rejected"} <= {renames.get(c, c) for c in columns}

    return _remember(_pair_columns, _data_key(path, mapping), look)


def token_counts(tokenizer, rows: list[dict]) -> list[tuple[int, int]]:
    """(prompt tokens, prompt + longest reply tokens) of each row, as TRL's trainers count them: the prompt with
    the generation prompt, cut where it stops being a prefix of the prompt followed by a reply."""
    from studio.engine.data.render import ensure_chat_template

    ensure_chat_template(tokenizer)
    if not rows:
        return []
    replies = ["chosen", "rejected"] if "chosen" in rows[0] else ["completion"]
    # One batched call per part: the template is rendered per row, the texts are tokenized together.
    prompts = tokenizer.apply_chat_template([row["prompt"] for row in rows], tokenize=True, return_dict=False,
                                            add_generation_prompt=True)
    full = [tokenizer.apply_chat_template([row["prompt"] + row[reply] for row in rows], tokenize=True,
                                          return_dict=False) for reply in replies]
    return [(min(common_prefix(prompt, ids[i]) for ids in full), max(len(ids[i]) for ids in full))
            for i, prompt in enumerate(prompts)]


def _cached_counts(cfg, name: str, tokenizer, rows: list[dict]) -> list[tuple[int, int]]:
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.preflight_cache import _remember

    ensure_chat_template(tokenizer)  # before the key reads the template
    key = (_data_key(getattr(cfg, name), cfg.column_mapping), cfg.objective, tokenizer.name_or_path, len(tokenizer),
           getattr(tokenizer, "chat_template", None) or "")
    return _remember(_token_counts, key, lambda: token_counts(tokenizer, rows))


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _check_lengths(cfg, name: str, source: str, tokenizer, rows: list[dict], where: list[str], report) -> str:
    """Findings on prompts too long to train; returns the token summary for the data note."""
    from studio.engine.data.hygiene import locations

    sample = rows[:TOKENIZE_SAMPLE]
    counts = _cached_counts(cfg, name, tokenizer, sample)
    unit = ("pair", "pairs") if cfg.objective in PAIRED else ("marked reply", "marked replies")
    limit = cfg.max_length
    too_long = list(dict.fromkeys(where[i] for i, (prompt, _) in enumerate(counts) if prompt >= limit))
    sampled = "" if len(sample) == len(rows) else f" (the first {len(sample)} {unit[1]})"
    if all(prompt >= limit for prompt, _ in counts):
        shortest = min(prompt for prompt, _ in counts)
        report.add("error", "data", f"{source}: every prompt is longer than max_length {limit} allows (the shortest "
                   f"has {shortest} tokens with the chat template){sampled}, so no reply token fits and nothing can "
                   f"be trained; raise max_length.", "Raise 'max length', or shorten the prompts.", field="max_length",
                   kind="bad_dataset")
    elif too_long:
        report.add("warning", "data", f"{source}: {_plural(len(too_long), 'row has', 'rows have')} a prompt of "
                   f"{limit} tokens or more{sampled}, so no reply token fits and training leaves them out "
                   f"({locations(too_long)}).", "Raise 'max length', or shorten those prompts.", field="max_length",
                   kind="bad_dataset")
    full = [total for _, total in counts]
    longer = sum(total > limit for total in full)
    return (f"prompt + reply tokens median {statistics.median(full):.0f}, max {max(full)}; "
            f"{_plural(longer, *unit)} longer than max_length {limit}{sampled}")


def _no_rows_problem(cfg, data) -> str:
    what = "pairs (a prompt with a chosen and a rejected reply)"
    return (f"{data.source} has no {what}, only {_plural(len(data.marks), 'marked reply', 'marked replies')}; "
            f"{cfg.objective.upper()} learns from pairs. KTO learns from single marks: choose objective kto.")


def _check_labels(rows: list[dict], source: str, report) -> None:
    good = sum(row["label"] for row in rows)
    if 0 < good < len(rows):
        return
    kind, other = ("good", "bad") if good else ("bad", "good")
    alone = "; to learn from good replies alone, choose supervised fine-tuning" if good else ""
    report.add("error", "data", f"{source}: all {len(rows)} marks are {kind}: KTO needs some replies marked {other} "
               f"too (it learns by telling them apart).", f"Mark some replies {other}, or add preference pairs (each "
               f"counts as one good and one bad reply){alone}.", field="dataset", kind="bad_dataset")


def _check_file(cfg, name: str, tokenizer, report) -> None:
    from studio.engine.data.formats import describe_drops
    from studio.engine.preference.data import describe, rows_with_where

    path = str(getattr(cfg, name, "") or "").strip()
    try:
        data = cached_preferences(path, cfg.column_mapping)
    except StudioError as err:
        report.add("error", "data", err.message, err.hint, field=name if err.field in (None, "dataset") else err.field,
                   kind=err.kind)
        return
    for warning in data.warnings:
        report.add("warning", "data", warning, field=name, kind="bad_dataset")
    if data.dropped:
        rows = len(data.pairs) + len(data.marks) + data.dropped_count
        report.add("warning", "data", f"{data.source}: {data.dropped_count} of {rows} rows dropped — "
                   f"{describe_drops(data.dropped)}.", "Fix those rows, or check the column mapping.", field=name,
                   kind="bad_dataset")
    rows, where = rows_with_where(data, cfg.objective)
    if not rows:
        report.add("error", "data", _no_rows_problem(cfg, data), "Choose objective kto, or a file of pairs.",
                   field="objective" if name == "dataset" else name, kind="bad_dataset")
        return
    if cfg.objective == "kto" and name == "dataset":
        _check_labels(rows, data.source, report)
    lengths = _check_lengths(cfg, name, data.source, tokenizer, rows, where, report) if tokenizer else ""
    if name == "dataset":
        report.add("note", "data", f"{Path(data.source).name}: {describe(data, cfg.objective)}"
                   + (f"; {lengths}." if lengths else "."))


def _check_data(cfg, tokenizer, report) -> None:
    if not str(cfg.dataset).strip():
        report.add("error", "data", "Field 'dataset' is empty: no training file was chosen.",
                   "Choose a JSON, JSONL, CSV or Parquet file of preference pairs or marked replies (the "
                   "playground's feedback file is one).", field="dataset", kind="bad_dataset")
        return
    for name in ("dataset", "validation_file"):
        if str(getattr(cfg, name, "") or "").strip():
            _check_file(cfg, name, tokenizer, report)


def _model_key(model: str) -> str:
    """A model's name as folders and hub ids spell it: the last folder (its parent for a run's model/ folder), or
    the name in a Hugging Face cache folder (models--org--name)."""
    path = Path(model.strip().rstrip("/\\")).expanduser()
    cached = next((p for p in path.parts if p.startswith("models--")), None)
    if cached:
        return cached.split("--")[-1].lower()
    return (path.parent.name if path.name == "model" else path.name).lower()


def same_model(one: str, other: str) -> bool:
    a, b = Path(one).expanduser(), Path(other).expanduser()
    if a.exists() and b.exists() and a.resolve() == b.resolve():
        return True
    return _model_key(one) == _model_key(other)


def _check_adapter(cfg, report) -> None:
    text = str(cfg.adapter or "").strip()
    if not text:
        return
    folder = Path(text).expanduser()

    def refuse(message: str, hint: str = "Choose the adapter/ folder of a finished LoRA fine-tuning run, or clear "
                                         "'adapter'.") -> None:
        report.add("error", "model", message, hint, field="adapter", kind="bad_model")

    if not folder.is_dir():
        return refuse(f"The adapter folder {folder} does not exist." if not folder.exists() else
                      f"The adapter {folder} is a file; expected a folder with adapter_config.json.")
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        inner = folder / "adapter"
        return refuse(f"{folder} is not a LoRA adapter: it has no adapter_config.json.",
                      f"Choose its adapter folder: {inner}." if (inner / "adapter_config.json").is_file() else "")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return refuse(f"{config_file} cannot be read as JSON ({exc}).")
    kind = str(config.get("peft_type") or "LORA")
    if kind.upper() != "LORA":
        return refuse(f"{folder} is a {kind} adapter; only LoRA adapters can be trained further.")
    base = str(config.get("base_model_name_or_path") or "")
    if base and str(cfg.model).strip() and not same_model(base, str(cfg.model)):
        report.add("warning", "model", f"The adapter {folder} was trained on {base}, but this run's model is "
                   f"{cfg.model}: an adapter only fits the model it was trained on.",
                   "Choose the model the adapter was trained on, or clear 'adapter'.", field="adapter")


def check_preference(cfg, report, workspace: Path | None = None) -> None:
    from studio.engine.preflight import _check_disk, _check_model, _check_resume, _check_schedule

    tokenizer = _check_model(cfg, "sft", report)  # a causal LM with a fast tokenizer, as for fine-tuning
    _check_adapter(cfg, report)
    _check_data(cfg, tokenizer, report)
    if cfg.method == "full" and cfg.objective in ("dpo", "kto"):
        report.add("note", "config", FULL_MEMORY_NOTE, field="method")
    _check_resume(cfg, report)
    _check_schedule(cfg, "sft", report)
    if workspace is not None:
        _check_disk(cfg, "sft", Path(workspace), report)
