"""The pre-flight check: everything that can be known about a run before a worker starts.

One function, `preflight(cfg, workspace)`, used by `prepare_run` (so `studio train` and both training tabs
refuse a bad run before any run folder exists) and by the tabs live, as the person edits the form. It
reads files and the tokenizer only, never a torch model, and keeps the last tokenizers and parsed
datasets so that a second check of the same files costs milliseconds.

What it checks, in order (a failing step stops the steps that need it): the config's fields; the model
(folder, safety, architecture this transformers supports, tokenizer, context length); the data (readable,
rows left after mapping, rows left after tokenizing a sample at the max length); the resume checkpoint; the
save interval; the free disk for the output and checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.config import effective_save_every, validate
from studio.engine.errors import BadConfig, BadDataset, BadModel, DiskFull, StudioError, UnsafeModel
from studio.engine.preflight_cache import cached_conversations, cached_tokenizer

# Rows tokenized to prove that examples survive the max length: enough to be sure, few enough to be instant.
TOKENIZE_SAMPLE = 2000
ERROR_CLASSES = {cls.kind: cls for cls in (BadConfig, BadDataset, BadModel, DiskFull, UnsafeModel)}


@dataclass
class Finding:
    level: str  # error | warning | note
    check: str  # config | model | context | data | resume | schedule | disk
    message: str
    hint: str = ""
    field: str | None = None
    kind: str = "bad_config"

    def as_error(self) -> StudioError:
        return ERROR_CLASSES.get(self.kind, StudioError)(self.message, self.hint, field=self.field)

    def line(self) -> str:
        mark = {"error": "✖", "warning": "⚠", "note": "·"}[self.level]
        return f"{mark} {self.message}"


@dataclass
class Preflight:
    config: object  # a copy of the config that was checked
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "note"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def blocking(self, *, will_ask_about_safety: bool = False) -> list[Finding]:
        """The errors that stop a start; the GUI asks about model code and pickle weights itself."""
        return [f for f in self.errors if not (will_ask_about_safety and f.kind == UnsafeModel.kind)]

    def raise_first(self) -> None:
        if self.errors:
            raise self.errors[0].as_error()

    def describe(self, levels=("error", "warning", "note")) -> str:
        return "\n".join(f.line() for f in self.findings if f.level in levels)

    def checked(self, cfg) -> bool:
        """Whether this report is about `cfg` as it is now."""
        return self.config == cfg


class _Report:
    def __init__(self, cfg):
        self.result = Preflight(config=dataclasses.replace(cfg))

    def add(self, level: str, check: str, message: str, hint: str = "", *, field: str | None = None,
            kind: str = "bad_config") -> None:
        self.result.findings.append(Finding(level, check, message, hint, field, kind))

    def error(self, check: str, err: StudioError) -> None:
        self.add("error", check, err.message, err.hint, field=err.field, kind=err.kind)


def preflight(cfg, workspace: Path | None = None) -> Preflight:
    """Check a run's config and files without starting anything; every problem becomes a finding."""
    report = _Report(cfg)
    cfg = dataclasses.replace(cfg)
    try:
        validate(cfg)
    except BadConfig as err:
        report.error("config", err)
        return report.result
    task = getattr(cfg, "task", "sft")
    if task == "eval":
        from studio.engine.evaluate.checks import check_eval

        check_eval(cfg, report, Path(workspace) if workspace is not None else None)
        return report.result
    if task == "classify":
        from studio.engine.classify.checks import check_classify

        check_classify(cfg, report, Path(workspace) if workspace is not None else None)
        return report.result
    if task == "preference":
        from studio.engine.preference.checks import check_preference

        check_preference(cfg, report, Path(workspace) if workspace is not None else None)
        return report.result
    if task == "export":
        from studio.engine.export.checks import check_export

        check_export(cfg, report, Path(workspace) if workspace is not None else None)
        return report.result
    tokenizer = _check_model(cfg, task, report)
    _check_data(cfg, task, tokenizer, report)
    _check_resume(cfg, report)
    _check_schedule(cfg, task, report)
    if workspace is not None:
        _check_disk(cfg, task, Path(workspace), report)
    return report.result


def needs_model(cfg) -> bool:
    return getattr(cfg, "task", "sft") != "pretrain" or getattr(cfg, "mode", "") == "continue"


def model_folder_and_config(cfg, report: _Report):
    """(the model's folder, its config.json) when it is found and safe to load, else None with a finding."""
    from studio.engine.models import check_model_safety, read_model_config, resolve_model_path

    try:
        path = resolve_model_path(cfg.model, cfg.allow_download)
        config = read_model_config(path)
    except StudioError as err:
        report.error("model", err)
        return None
    try:
        check_model_safety(path, cfg.trust_remote_code, cfg.allow_pickle)
    except UnsafeModel as err:
        report.error("model", err)
        return None
    return path, config


def _check_model(cfg, task: str, report: _Report):
    """The tokenizer of the model, or None when there is no model yet or it cannot be used."""
    from studio.engine.data.analysis import context_problem, model_context_length

    if not needs_model(cfg):
        return None
    found = model_folder_and_config(cfg, report)
    if found is None:
        return None
    path, config = found
    wanted = "mlm" if getattr(cfg, "objective", "clm") == "mlm" else "clm"
    problem = architecture_problem(config, wanted, trusted_code=cfg.trust_remote_code)
    if problem:
        report.add("error", "model", f"{path}: {problem}", "Choose another model, or update transformers "
                   "(pip install -U transformers) if the model is newer than this version.", field="model",
                   kind="bad_model")
        return None
    try:
        tokenizer = cached_tokenizer(path, cfg.trust_remote_code)
    except StudioError as err:
        report.error("model", err)
        return None
    length_field = "block_size" if task == "pretrain" else "max_length"
    problem = context_problem(int(getattr(cfg, length_field)), model_context_length(path))
    if problem:
        report.add("error", "context", problem.replace("Max length", "Block size") if task == "pretrain" else problem,
                   "A longer sequence than the model was built for gives it positions it never learned.",
                   field=length_field)
    return tokenizer


def architecture_problem(config: dict, objective: str = "clm", *, trusted_code: bool = False) -> str | None:
    """Why this transformers cannot train a model of this config.json for the objective, or None."""
    from transformers import __version__
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    if trusted_code and config.get("auto_map"):
        return None  # the model brings its own classes
    model_type = config.get("model_type")
    supported = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES if objective == "clm" else MODEL_FOR_MASKED_LM_MAPPING_NAMES
    kind = "causal (decoder) language model" if objective == "clm" else "masked (encoder) language model"
    if not model_type:
        return "config.json has no 'model_type', so the architecture is unknown."
    if model_type in supported:
        return None
    examples = ", ".join(t for t in ("llama", "qwen2", "mistral", "gemma2", "phi3", "gpt2", "bert", "roberta",
                                     "modernbert") if t in supported)
    return (f"the architecture '{model_type}' ({', '.join(config.get('architectures') or []) or 'no class named'}) "
            f"is not a {kind} that transformers {__version__} can train; it knows {len(supported)} such "
            f"architectures, e.g. {examples}.")


def _check_data(cfg, task: str, tokenizer, report: _Report) -> None:
    if task == "pretrain":
        _check_corpus(cfg, report)
        return
    if not str(cfg.dataset).strip():
        report.add("error", "data", "Field 'dataset' is empty: no training file was chosen.",
                   "Choose a JSON, JSONL, CSV or Parquet file (Fine-tune › Open dataset, or 'dataset:' in the "
                   "config).", field="dataset", kind="bad_dataset")
        return
    for name in ("dataset", "validation_file"):
        path = str(getattr(cfg, name, "") or "").strip()
        if not path:
            continue
        try:
            convs = cached_conversations(path, cfg.format, cfg.column_mapping,
                                         placeholders=getattr(cfg, "placeholders", None) or {})
        except StudioError as err:
            report.error("data", err)
            if name == "dataset":
                _note_preference_pairs(cfg, path, report, read=False)
            continue
        if name == "dataset":
            _note_preference_pairs(cfg, path, report, read=True)
        for warning in getattr(convs, "warnings", []):
            report.add("warning", "data", warning, field=name, kind="bad_dataset")
        if tokenizer is not None and convs.conversations:
            _check_tokenized(cfg, convs, tokenizer, name, report)
        elif convs.dropped:
            _report_drops(convs.dropped, len(convs.conversations) + convs.dropped_count, path, report)


def _note_preference_pairs(cfg, path: str, report: _Report, read: bool) -> None:
    from studio.engine.preference.checks import holds_pairs

    if holds_pairs(path, cfg.column_mapping):
        learns = "supervised fine-tuning learns the chosen replies only. To" if read else "to"
        report.add("note", "data", f"{Path(path).name} holds preference pairs (chosen and rejected replies): {learns} "
                   "learn which reply is preferred, choose the task Preference tuning (DPO).", field="dataset")


def _check_tokenized(cfg, convs, tokenizer, name: str, report: _Report) -> None:
    from studio.engine.data.render import ensure_chat_template, tokenize_all

    ensure_chat_template(tokenizer)
    sample = dataclasses.replace(convs, conversations=convs.conversations[:TOKENIZE_SAMPLE],
                                 where=convs.where[:TOKENIZE_SAMPLE])
    try:
        _, summary = tokenize_all(tokenizer, sample, cfg.max_length, cfg.train_on_prompt)
    except StudioError as err:
        report.error("data", err)
        return
    rows = len(convs.conversations) + convs.dropped_count
    sampled = "" if len(sample.conversations) == len(convs.conversations) else \
        f" (token counts from the first {len(sample.conversations)} usable rows)"
    if name == "dataset":
        report.add("note", "data", f"{Path(convs.source or cfg.dataset).name}: {len(convs.conversations)} of {rows} "
                   f"rows usable ({convs.format} format); tokens per example median {summary.median_tokens:.0f}, "
                   f"max {summary.max_tokens}; {summary.truncated} truncated at {cfg.max_length}{sampled}.")
    _report_drops(summary.dropped, rows, convs.source or getattr(cfg, name), report)


def _report_drops(dropped: dict, rows: int, source, report: _Report) -> None:
    from studio.engine.data.formats import describe_drops

    count = sum(len(v) for v in dropped.values())
    if count:
        report.add("warning", "data", f"{source}: {count} of {rows} rows dropped — {describe_drops(dropped)}.",
                   "Fix those rows, or check the format and column mapping.", field="dataset", kind="bad_dataset")


def _check_corpus(cfg, report: _Report) -> None:
    from studio.engine.data.corpus import find_files

    try:
        files = find_files(cfg.corpus_paths())
    except StudioError as err:
        report.error("data", err)
        return
    empty = [f for f in files if f.stat().st_size == 0]
    if len(empty) == len(files):
        report.add("error", "data", f"Every corpus file is empty ({', '.join(str(f) for f in files[:3])}).",
                   "Choose files that hold text.", field="corpus", kind="bad_dataset")
        return
    size = sum(f.stat().st_size for f in files)
    report.add("note", "data", f"Corpus: {len(files)} file{'s' * (len(files) != 1)}, {size / 1e6:.1f} MB."
               + (f" {len(empty)} empty file(s) are skipped." if empty else ""))


def _check_resume(cfg, report: _Report) -> None:
    from studio.engine.resume import check_resume

    if not getattr(cfg, "resume_from", ""):
        return
    try:
        checked = dataclasses.replace(cfg)
        check_resume(checked)
        report.add("note", "resume", f"Resumes from {checked.resume_from}.")
    except StudioError as err:
        report.error("resume", err)


def _has_validation(cfg, task: str) -> bool:
    if task == "pretrain":
        return cfg.validation_fraction > 0
    return bool(getattr(cfg, "validation_file", "")) or cfg.validation_fraction > 0


def _check_schedule(cfg, task: str, report: _Report) -> None:
    has_eval = _has_validation(cfg, task)
    saved = effective_save_every(cfg, has_eval)
    if saved != cfg.save_every:
        report.add("warning", "schedule", f"Checkpoints every {saved} steps, not {cfg.save_every}: with validation "
                   f"on, a checkpoint is saved on an evaluation step (every {cfg.eval_every}) so that the best "
                   "one can be kept.", f"Set 'save every' to a multiple of 'eval every' ({cfg.eval_every}), or "
                   "evaluate more often.", field="save_every")


def _folder_bytes(path: Path, suffixes=(".safetensors", ".bin", ".pt", ".pth")) -> int:
    try:
        return sum(f.stat().st_size for f in path.iterdir() if f.suffix in suffixes and f.is_file())
    except OSError:
        return 0


def output_bytes(cfg, task: str) -> int:
    """A generous estimate of what the run writes: the output, and the kept checkpoints with their optimizer
    state (AdamW keeps two fp32 moments per trainable weight)."""
    from studio.engine.models import resolve_model_path

    if needs_model(cfg):
        try:
            weights = _folder_bytes(resolve_model_path(cfg.model, False))
        except StudioError:
            weights = 0
    else:
        from studio.engine.presets import parameter_count, resolve_arch

        arch = resolve_arch(cfg.architecture, cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.intermediate_size)
        weights = 4 * parameter_count(arch, cfg.vocab_size, cfg.block_size)
    if getattr(cfg, "method", "full") == "full":
        # A checkpoint holds the weights and AdamW's two moments, in fp32 whatever the file's precision.
        output, per_checkpoint = weights, 5 * weights
    else:
        adapter = max(weights // 50, 1 << 20)  # adapters are a few percent of the model at most
        per_checkpoint = 3 * adapter
        output = weights if task == "pretrain" else adapter  # pre-training merges LoRA into a full model
    return output + per_checkpoint * (cfg.keep_checkpoints + 1)  # +1: the best is kept besides the recent ones


def _check_disk(cfg, task: str, workspace: Path, report: _Report) -> None:
    probe = workspace
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if not os.access(probe, os.W_OK):
        report.add("error", "disk", f"The workspace {workspace} cannot be written to.",
                   "Choose another workspace in Settings (or set ADAPT_STUDIO_WORKSPACE).", kind="disk_full")
        return
    need = output_bytes(cfg, task)
    gb = 1e9
    if free < need:
        report.add("error", "disk", f"The workspace's disk has {free / gb:.1f} GB free; this run needs about "
                   f"{need / gb:.1f} GB for its output and {cfg.keep_checkpoints} checkpoints.",
                   "Free space, keep fewer checkpoints, or move the workspace in Settings.", field="keep_checkpoints",
                   kind="disk_full")
    elif free < 2 * need:
        report.add("warning", "disk", f"The workspace's disk has {free / gb:.1f} GB free; this run may write "
                   f"about {need / gb:.1f} GB.", "Keep fewer checkpoints, or free space before a long run.",
                   field="keep_checkpoints")
