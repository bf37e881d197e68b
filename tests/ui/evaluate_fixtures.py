"""Hand-written evaluation folders (results.json, examples.jsonl, config.yaml, events.jsonl) valid per the schema of
studio.engine.evaluate.results, for the Evaluate tab's tests; and finished training runs to pick as candidates."""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.config import FineTuneConfig, save_config
from studio.engine.evaluate.config import EvalConfig
from studio.engine.evaluate.results import write_examples, write_results
from studio.engine.events import EventWriter
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE

LABELS = ["negative", "neutral", "positive"]
# Per example: (text, true label, {candidate id: predicted label}).
EXAMPLES = [
    ("The food was cold and late.", "negative", {"prompt-0": "negative", "prompt-3": "negative", "tuned-1": "negative"}),
    ("Service was fine, nothing special.", "neutral", {"prompt-0": "positive", "prompt-3": "neutral", "tuned-1": "neutral"}),
    ("Best pizza in town!", "positive", {"prompt-0": "positive", "prompt-3": "positive", "tuned-1": "positive"}),
    ("I will not come back.", "negative", {"prompt-0": "neutral", "prompt-3": "negative", "tuned-1": "negative"}),
    ("It was okay.", "neutral", {"prompt-0": "neutral", "prompt-3": "positive", "tuned-1": "neutral"}),
    ("Lovely staff, great view.", "positive", {"prompt-0": "negative", "prompt-3": "neutral", "tuned-1": "neutral"}),
]
RECOMMENDATION = ("Fine-tune: the LoRA adapter is right on 83.3% of the examples, 16.7 points above the best prompt "
                  "(3-shot), and its prompts are 90% shorter.")


def _candidate(cid: str, label: str, kind: str, shots: int | None, prompt_tokens: float, run: str | None = None,
               adapter: str | None = None) -> dict:
    true = [t for _, t, _ in EXAMPLES]
    predicted = [p[cid] for _, _, p in EXAMPLES]
    matrix = [[sum(1 for t, p in zip(true, predicted) if t == a and p == b) for b in LABELS] for a in LABELS]
    right = sum(t == p for t, p in zip(true, predicted))
    return {"id": cid, "label": label, "kind": kind, "model": "/models/tiny", "adapter": adapter, "shots": shots,
            "run": run, "scored": len(EXAMPLES),
            "metrics": {"accuracy": right / len(EXAMPLES), "macro_f1": right / len(EXAMPLES) - 0.05,
                        "gen_accuracy": None, "gen_macro_f1": None, "unparseable": 0.0},
            "per_class": {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for label in LABELS},
            "confusion": {"labels": list(LABELS), "matrix": matrix}, "unseen_labels": [],
            "cost": {"prompt_tokens": prompt_tokens, "latency_p50_s": 0.05, "latency_p95_s": 0.08,
                     "tokens_per_s": 900.0, "examples_per_s": 20.0, "peak_memory_bytes": None,
                     "train_seconds": 120.0 if kind == "tuned" else None,
                     "train_tokens": 5000 if kind == "tuned" else None},
            "fit": {"shots_dropped": 0, "skipped": 0}}


def classification_results(complete: bool = True, count: int = 3) -> dict:
    cands = [_candidate("prompt-0", "tiny, 0-shot", "prompt", 0, 40.0),
             _candidate("prompt-3", "tiny, 3-shot", "prompt", 3, 160.0),
             _candidate("tuned-1", "reviews (LoRA adapter)", "tuned", None, 40.0, run="/ws/runs/reviews",
                        adapter="/ws/runs/reviews/adapter")][:count]
    return {"version": 1, "complete": complete, "kind": "classification", "dataset": "/data/reviews-test.jsonl",
            "examples": len(EXAMPLES), "labels": list(LABELS),
            "primary": {"metric": "accuracy", "higher_is_better": True}, "candidates": cands,
            "recommendation": RECOMMENDATION if complete else "", "warnings": []}


def example_rows(ids=("prompt-0", "prompt-3", "tuned-1")) -> list[dict]:
    rows = []
    for i, (text, label, predicted) in enumerate(EXAMPLES):
        answers = {cid: {"answer": predicted[cid], "correct": predicted[cid] == label, "score": None} for cid in ids}
        rows.append({"index": i, "where": f"line {i + 1}", "input": text, "reference": label, "answers": answers})
    return rows


def disagreements(ids=("prompt-0", "prompt-3", "tuned-1")) -> set[int]:
    """The indices of the examples where the candidates' correctness differs."""
    return {i for i, (_, label, predicted) in enumerate(EXAMPLES) if len({predicted[c] == label for c in ids}) > 1}


def write_events(run: Path, events: list[tuple[str, dict]]) -> None:
    writer = EventWriter(run / EVENTS_FILE)
    for kind, fields in events:
        writer.emit(kind, **fields)
    writer.close()


def eval_run(workspace: Path, folder: str = "2024-03-05-143000-evaluate", results: dict | None = None,
             heldout: Path | None = None) -> Path:
    """A finished evaluation's run folder, as the worker leaves it."""
    run = workspace / "runs" / folder
    run.mkdir(parents=True)
    cfg = EvalConfig(name="reviews-eval", model="/models/tiny", dataset=str(heldout or "/data/reviews-test.jsonl"),
                     shots="0, 3", shot_pool="/data/reviews-train.jsonl")
    save_config(cfg, run / CONFIG_FILE)
    results = results if results is not None else classification_results()
    write_results(run, results)
    write_examples(run, example_rows(tuple(c["id"] for c in results["candidates"])))
    events = [("started", dict(task="eval", total_steps=18))]
    events += [("scored", dict(candidate=c)) for c in results["candidates"]]
    events += [("finished", dict(status="completed", output=str(run / "results.json"),
                                 summary={"recommendation": results["recommendation"]}))]
    write_events(run, events)
    return run


def finetune_run(workspace: Path, folder: str = "2024-03-04-101500-reviews", name: str = "reviews",
                 model: str = "/models/tiny") -> Path:
    """A finished fine-tuning run with an adapter/ folder."""
    run = workspace / "runs" / folder
    run.mkdir(parents=True)
    save_config(FineTuneConfig(name=name, model=model, dataset="/data/reviews-train.jsonl"), run / CONFIG_FILE)
    adapter = run / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": model}))
    write_events(run, [("started", dict(total_steps=6)),
                       ("log", dict(step=6, loss=1.2, learning_rate=1e-4)),
                       ("finished", dict(status="completed", output=str(adapter)))])
    return run


def labelled_file(folder: Path, name: str = "reviews-test.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label, _ in EXAMPLES))
    return path
