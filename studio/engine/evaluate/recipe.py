"""The worker's evaluation job: score every candidate on the held-out file and write results.json and
examples.jsonl into the run folder (rewritten after each candidate, so a stop or a crash keeps what was
measured). Events: `started` (task eval, the units to score), `log` (progress, ETA, the candidate),
`scored` (one candidate's figures), `finished` (the results file, the recommendation)."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from studio.engine.errors import BadConfig
from studio.engine.evaluate.candidates import Candidate, resolve_candidates
from studio.engine.evaluate.heldout import HOLDS, HeldOut, read_heldout, reply_text
from studio.engine.evaluate.metrics import percentile
from studio.engine.evaluate.prompts import PromptStyle, system_prompt
from studio.engine.evaluate.recommend import recommend
from studio.engine.evaluate.results import PRIMARY, RESULTS_VERSION, write_examples, write_results
from studio.engine.evaluate.shots import Shot
from studio.engine.events import EventWriter

LOG_INTERVAL_S = 0.5
# Kinds scored without examples in the prompt (only k = 0): raw text has no question to put them before, and a
# preference pair's replies are given, not written, so shots cannot help to judge them.
# kind -> (what the file holds, why it takes no shots)
NO_SHOTS = {"perplexity": ("raw text is scored by perplexity",
                           "Perplexity scores raw text, which has no question to put examples before"),
            "preference": ("preference pairs are scored by preference accuracy",
                           "Preference accuracy judges the replies a pair gives, which examples in the prompt do not "
                           "help to judge")}


class Progress:
    """Units scored so far, reported as `log` events at most every half second, with an ETA."""

    def __init__(self, events: EventWriter, total: float):
        self.events, self.total, self.done = events, total, 0.0
        self.started = time.time()
        self.last = 0.0
        self.candidate = ""

    def advance(self, units: float, force: bool = False) -> None:
        self.done = min(self.total, self.done + units)
        now = time.time()
        if not force and now - self.last < LOG_INTERVAL_S:
            return
        self.last = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.events.emit("log", step=int(self.done), total_steps=int(self.total), elapsed_s=elapsed, eta_s=eta,
                         candidate=self.candidate)


def read_pool(path: str, kind: str) -> list[Shot]:
    """In-context examples from a playground preset (.json with studio_preset) or any training file."""
    import json

    from studio.engine.prompting import load_preset

    file = Path(path).expanduser()
    if file.suffix.lower() == ".json" and file.is_file():
        try:
            head = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            head = None
        if isinstance(head, dict) and "studio_preset" in head:
            return [Shot(e.input, e.output) for e in load_preset(file).examples]
    pool = read_heldout(file, "auto", {}, "classification" if kind == "classification" else "auto")
    return [Shot(e.input, e.reference) for e in pool.examples]


def _unseen_labels(cand: Candidate, heldout: HeldOut, shots_seen: list[str]) -> list[str]:
    """Held-out labels a candidate never saw: not among its shots, or not in its training data's replies."""
    if heldout.kind != "classification":
        return []
    if cand.kind == "prompt":
        return [label for label in heldout.labels if label not in shots_seen] if cand.shots else []
    if cand.classifier:
        from studio.engine.classify.predict import label_names
        from studio.engine.models import read_model_config

        known = {name.strip().lower() for name in label_names(read_model_config(Path(cand.model)))}
        return [label for label in heldout.labels if label.strip().lower() not in known]
    if not cand.run:
        return []
    from studio.engine.runs import read_run_config

    run_cfg = read_run_config(Path(cand.run))
    try:
        trained = read_heldout(run_cfg.get("dataset", ""), run_cfg.get("format", "auto"),
                               run_cfg.get("column_mapping") or {}, "classification")
    except Exception:  # noqa: BLE001 - a moved or unreadable training file only means we cannot tell
        return []
    return [label for label in heldout.labels if label not in set(trained.labels)]


def _peak_memory(device: str) -> int | None:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # the process's peak (Linux: KiB)
    except (ImportError, OSError):
        return None


def _candidate_record(cand: Candidate, outcome, seconds: float, device: str, unseen: list[str]) -> dict:
    scored = sum(a is not None for a in outcome.answers)
    gen_s = sum(outcome.generation_seconds)
    record = {k: v for k, v in cand.as_dict().items() if k not in ("train_seconds", "train_tokens")}
    record.update(scored=scored, metrics=outcome.metrics, unseen_labels=unseen,
                  fit={"shots_dropped": outcome.fit.shots_dropped, "skipped": outcome.fit.skipped})
    if outcome.per_class is not None:
        record.update(per_class=outcome.per_class, confusion=outcome.confusion)
    record["cost"] = {
        "prompt_tokens": sum(outcome.prompt_tokens) / len(outcome.prompt_tokens) if outcome.prompt_tokens else None,
        "latency_p50_s": percentile(outcome.generation_seconds, 50),
        "latency_p95_s": percentile(outcome.generation_seconds, 95),
        "tokens_per_s": outcome.generated_tokens / gen_s if gen_s > 0 and outcome.generated_tokens else None,
        "examples_per_s": scored / seconds if seconds > 0 else None,
        "peak_memory_bytes": _peak_memory(device), "train_seconds": cand.train_seconds,
        "train_tokens": cand.train_tokens}
    return record


def _load(cfg, cand: Candidate, current):
    from studio.engine.generation import load_for_generation

    key = (cand.model, cand.adapter)
    if current is not None and current[0] == key:
        return current
    current = None
    gc.collect()
    if cand.classifier:
        from studio.engine.classify.predict import load_classifier
        from studio.engine.models import choose_device

        return key, load_classifier(cand.model, choose_device(cfg.device, cfg.precision).device,
                                    trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    loaded = load_for_generation(cand.model, cand.adapter, device=cfg.device, precision=cfg.precision,
                                 trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle,
                                 allow_download=cfg.allow_download)
    return key, loaded


def run_eval(cfg, run_dir: Path, events: EventWriter, stop) -> None:
    import torch

    from studio.engine.evaluate.preference_scorer import prefer
    from studio.engine.evaluate.scorers import SCORERS, Job, head_classify
    from studio.engine.evaluate.scoring import Stopped

    torch.manual_seed(cfg.seed)
    events.emit("progress", phase="reading the held-out file")
    heldout = read_heldout(cfg.dataset, cfg.format, cfg.column_mapping, cfg.kind).sample(cfg.max_examples, cfg.seed)
    candidates = resolve_candidates(cfg)
    warnings = list(heldout.warnings)
    if heldout.kind in NO_SHOTS and any(c.shots for c in candidates):
        held, why = NO_SHOTS[heldout.kind]
        warnings.append(f"{why}: only the 0-shot base model and the fine-tuned candidates are scored.")
        candidates = [c for c in candidates if not c.shots]
        if not candidates:
            raise BadConfig(f"Nothing to score: {held}, which takes the 0-shot base model or fine-tuned models, "
                            f"and none was given.", field="shots")
    classifiers = [c.label for c in candidates if c.classifier and heldout.kind != "classification"]
    if classifiers:
        raise BadConfig(f"{', '.join(classifiers)}: a classifier puts labels on texts, so it can only be evaluated "
                        f"on labelled text, and this held-out file holds {HOLDS[heldout.kind]}.",
                        "Choose a labelled held-out file (text + label), or leave the classifier out.", field="tuned")
    if heldout.kind == "preference" and cfg.mode != "chat":
        warnings.append("Preference pairs are scored through each model's chat template, as preference tuning "
                        "renders them; the completion template is not used.")
    pool = read_pool(cfg.shot_pool, heldout.kind) if any(c.shots for c in candidates) else []
    if pool and max(c.shots or 0 for c in candidates) > len(pool):
        warnings.append(f"The shot pool has {len(pool)} examples; larger k use them all.")
    style = PromptStyle(cfg.mode, system_prompt(cfg.system, heldout.labels, cfg.label_instruction),
                        cfg.completion_template)
    metric, higher = PRIMARY[heldout.kind]
    results = {"version": RESULTS_VERSION, "complete": False, "kind": heldout.kind, "dataset": str(heldout.path),
               "examples": len(heldout.examples), "labels": heldout.labels,
               "primary": {"metric": metric, "higher_is_better": higher}, "system_prompt": style.system,
               "mode": cfg.mode, "candidates": [], "recommendation": "", "warnings": warnings}
    rows = [{"index": i, "where": e.where, "input": e.input[:2000], "reference": e.reference[:2000], "answers": {}}
            for i, e in enumerate(heldout.examples)]
    for row, e in zip(rows, heldout.examples):
        if e.pair is not None:
            row["rejected"] = reply_text(e.pair["rejected"])[:2000]
    progress = Progress(events, len(heldout.examples) * len(candidates))
    from studio.engine.models import choose_device

    choice = choose_device(cfg.device, cfg.precision)
    events.emit("started", task="eval", total_steps=int(progress.total), device=choice.device,
                device_name=choice.name, precision=choice.precision, kind=heldout.kind,
                examples=len(heldout.examples), candidates=[c.label for c in candidates])
    status, current = "completed", None
    try:
        for cand in candidates:
            progress.candidate = cand.label
            events.emit("progress", phase="loading the model", candidate=cand.label)
            current = _load(cfg, cand, current)
            loaded = current[1]
            device = loaded.device if cand.classifier else loaded.choice.device
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            if cand.classifier:
                outcome = head_classify(loaded, heldout, cfg.batch_size, progress, stop)
            else:
                context = min(cfg.max_length or loaded.context_window, loaded.context_window)
                job = Job(loaded, heldout, style, cand.shots or 0, pool, cfg.shot_selection, cfg.seed, context,
                          cfg.batch_size, cfg.max_new_tokens, cfg.generate, cfg.window, cfg.stride, progress, stop)
                outcome = {**SCORERS, "preference": prefer}[heldout.kind](job)
            record = _candidate_record(cand, outcome, time.perf_counter() - started, device,
                                       _unseen_labels(cand, heldout, outcome.shots_seen))
            if record["unseen_labels"]:
                seen_in = ("its shots" if cand.kind == "prompt" else "its classes" if cand.classifier
                           else "its training data")
                warnings.append(f"{cand.label}: the held-out label(s) {', '.join(record['unseen_labels'])} never "
                                f"appear in {seen_in}.")
            if outcome.fit.shots_dropped:
                warnings.append(f"{cand.label}: {outcome.fit.shots_dropped} prompt(s) had shots left out to fit in the "
                                f"{context}-token context (shots go before anything is cut).")
            if outcome.fit.skipped:
                where = ", ".join(outcome.fit.skipped_where[:5]) + ("…" if outcome.fit.skipped > 5 else "")
                warnings.append(f"{cand.label}: {outcome.fit.skipped} example(s) did not fit in the {context}-token "
                                f"context even without shots and were not scored ({where}).")
            for row, answer in zip(rows, outcome.answers):
                if answer is not None:
                    row["answers"][cand.id] = answer
            results["candidates"].append(record)
            results["recommendation"] = recommend(results)
            write_results(run_dir, results)
            write_examples(run_dir, rows)
            events.emit("scored", candidate=record)
            if stop.is_set():
                raise Stopped()
    except Stopped:
        status = "stopped"
    results["complete"] = status == "completed"
    results["recommendation"] = recommend(results) if results["candidates"] else \
        "Stopped before any candidate was scored."
    path = write_results(run_dir, results)
    write_examples(run_dir, rows)
    progress.advance(0, force=True)
    events.emit("finished", status=status, output=str(path),
                summary={"recommendation": results["recommendation"], "candidates": len(results["candidates"])})
