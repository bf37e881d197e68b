"""The pre-flight check of an evaluation: the model, the held-out file, the candidates and the shot pool, all
before any model is loaded (an empty file or one with nothing to score is refused here)."""

from __future__ import annotations

from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.evaluate.heldout import HOLDS


def _same_file(a: str, b: str) -> bool:
    try:
        return bool(a and b) and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def check_eval(cfg, report, workspace: Path | None = None) -> None:
    from studio.engine.evaluate.candidates import resolve_candidates, resolve_run_names
    from studio.engine.preflight import _check_model
    from studio.engine.preflight_cache import cached_heldout
    from studio.engine.runs import read_run_config

    counts = cfg.shot_counts()
    if counts or str(cfg.model).strip():
        _check_model(cfg, "eval", report)
    try:
        heldout = cached_heldout(cfg.dataset, cfg.format, cfg.column_mapping, cfg.kind)
    except StudioError as err:
        report.error("data", err)
        heldout = None
    if heldout is not None:
        report.add("note", "data", heldout.describe())
        for warning in heldout.warnings:
            report.add("warning", "data", warning, field="dataset", kind="bad_dataset")
    try:
        resolve_run_names(cfg, workspace)  # cfg is the check's own copy
        candidates = resolve_candidates(cfg)
    except StudioError as err:
        report.error("config", err)
        candidates = []
    for cand in candidates:
        if cand.classifier:
            _check_classifier(cand, heldout, report)
        elif cand.kind == "tuned" and not cand.adapter:
            _check_tuned_model(cand, report)
        trained_on = read_run_config(Path(cand.run)).get("dataset", "") if cand.run else ""
        if _same_file(trained_on, cfg.dataset):
            report.add("warning", "data", f"{cand.label} was trained on {Path(cfg.dataset).name}: its score on that "
                       "file is not a held-out score.", "Evaluate on a file the model never saw.", field="dataset")
    preference = heldout is not None and heldout.kind == "preference"
    if any(counts) and not preference:
        _check_pool(cfg, heldout, max(counts), report)
    if heldout is not None and heldout.kind == "perplexity" and any(counts) and not (0 in counts or cfg.tuned_paths()):
        report.add("error", "config", "Raw text is scored by perplexity, which puts no examples in a prompt: use "
                   "shots 0 or fine-tuned candidates.", field="shots")
    if preference:
        _check_preference(cfg, counts, report)


def _check_preference(cfg, counts: list[int], report) -> None:
    """Preference pairs are judged with no examples in the prompt (the replies are given, not written), through
    each model's chat template."""
    if any(counts) and not (0 in counts or cfg.tuned_paths()):
        report.add("error", "config", "Preference pairs are scored with no examples in the prompt (shots cannot "
                   "help to judge a given reply): use shots 0 or fine-tuned candidates.", field="shots")
    elif any(counts):
        report.add("warning", "config", f"Preference pairs are scored with no examples in the prompt: the "
                   f"{', '.join(str(k) for k in counts if k)}-shot candidate(s) are left out.", field="shots")
    if cfg.mode != "chat":
        report.add("warning", "config", "Preference pairs are scored through each model's chat template, as "
                   "preference tuning renders them; the completion template is not used.", field="mode")


def _check_classifier(cand, heldout, report) -> None:
    """A classifier predicts labels: it can be scored on labelled text whose labels it knows, nothing else."""
    from studio.engine.classify.predict import label_names, problem_of
    from studio.engine.models import read_model_config

    if heldout is None:
        return
    if heldout.kind != "classification":
        report.add("error", "config", f"{cand.label} is a classifier: it puts labels on texts, so it can only be "
                   f"evaluated on labelled text, and this held-out file holds {HOLDS.get(heldout.kind, heldout.kind)}.",
                   "Choose a labelled held-out file (text + label), or leave the classifier out.", field="tuned")
        return
    try:
        config = read_model_config(Path(cand.model))
    except StudioError as err:
        report.error("model", err)
        return
    if problem_of(config) != "single_label":
        report.add("error", "config", f"{cand.label} predicts {problem_of(config).replace('_', '-')} outputs; the "
                   "held-out comparison scores one label per text.", field="tuned")
        return
    known = {name.strip().lower() for name in label_names(config)}
    missing = [label for label in heldout.labels if label.strip().lower() not in known]
    if missing:
        report.add("warning", "data", f"{cand.label} has no class for the held-out label(s) {', '.join(missing)}: "
                   "it can never predict them.", field="tuned")


def _check_tuned_model(cand, report) -> None:
    """A fine-tuned model folder must be a causal LM this transformers can load (not an encoder from a masked-LM
    pre-training run)."""
    from studio.engine.models import read_model_config
    from studio.engine.preflight import architecture_problem

    try:
        config = read_model_config(Path(cand.model))
    except StudioError as err:
        config, problem = {}, err.message
    else:
        problem = architecture_problem(config, "clm")
    masked = [a for a in config.get("architectures") or [] if a.endswith("ForMaskedLM")]
    if not problem and masked and not config.get("is_decoder"):
        # transformers can load some encoders (BERT) as a causal LM, but one trained to fill in blanks scores
        # and writes nonsense left to right.
        problem = f"{cand.model} is a masked-LM encoder ({masked[0]}), not a causal (decoder) language model."
    if problem:
        report.add("error", "model", f"{cand.label}: {problem}", "Evaluate causal (decoder) models; a masked-LM "
                   "encoder cannot answer a prompt.", field="tuned", kind="bad_model")


def _check_pool(cfg, heldout, largest: int, report) -> None:
    from studio.engine.preflight_cache import cached_pool

    if _same_file(cfg.shot_pool, cfg.dataset):
        report.add("warning", "data", "The shot pool is the held-out file: an example is never shown as its own "
                   "shot, but the others are, so the comparison favours prompting.",
                   "Use the training file as the shot pool.", field="shot_pool")
    try:
        pool = cached_pool(cfg.shot_pool, heldout.kind if heldout is not None else "auto")
    except StudioError as err:
        report.add("error", "data", f"Shot pool: {err.message}", err.hint, field="shot_pool", kind=err.kind)
        return
    if not pool:
        report.add("error", "data", f"The shot pool {cfg.shot_pool} holds no examples.", field="shot_pool",
                   kind="bad_dataset")
    elif len(pool) < largest:
        report.add("warning", "data", f"The shot pool has {len(pool)} examples, fewer than k = {largest}: larger k "
                   "use them all.", field="shots")
