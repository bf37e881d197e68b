"""The files an evaluation writes into its run folder, and reading them back. Light module (no torch).

`results.json` (rewritten after each candidate, so a stop or a crash keeps what was measured):
    {"version": 1, "complete": bool, "kind": "classification" | "generation" | "perplexity" | "preference",
     "dataset": path, "examples": int (held-out examples scored), "labels": [...] (classification),
     "primary": {"metric": "accuracy" | "token_f1" | "perplexity" | "preference_accuracy",
                 "higher_is_better": bool},
     "candidates": [{"id", "label", "kind": "prompt" | "tuned", "model", "adapter", "shots", "run",
                     "scored": int,
                     "metrics": {classification: accuracy, macro_f1, gen_accuracy, gen_macro_f1, unparseable;
                                 generation: exact_match, token_f1, chrf (0-100), reference_loss,
                                             reference_perplexity;
                                 perplexity: perplexity, loss, tokens;
                                 preference: preference_accuracy, logprob_margin (per token, chosen − rejected,
                                             averaged over the pairs)},
                     "per_class": {label: {precision, recall, f1, support}},   (classification)
                     "confusion": {"labels": [...], "matrix": [[int]]},         (rows: true, columns: predicted)
                     "unseen_labels": [...],  (held-out labels absent from its shots / training data)
                     "cost": {prompt_tokens, latency_p50_s, latency_p95_s, tokens_per_s, examples_per_s,
                              peak_memory_bytes, train_seconds, train_tokens},
                     "fit": {shots_dropped, skipped}}],   (examples whose prompt lost shots to fit; not scored)
     "recommendation": str, "warnings": [str]}
Fractions (accuracy, F1, exact match, unparseable, preference accuracy) are 0-1. Missing figures are null.

`examples.jsonl`, one line per held-out example:
    {"index", "where", "input", "reference", "rejected" (preference),
     "answers": {candidate id: {"answer": str, "correct": bool | null, "score": float | null,
                                "generated": str (classification with generation on),
                                "chosen_logprob", "rejected_logprob": float (preference)}}}
For classification `answer` is the label with the highest likelihood; for generation the generated text
(`score` its token F1); for perplexity `score` is the document's perplexity; for preference `reference` is the
chosen reply, `answer` the reply the candidate preferred ("chosen", "rejected" or "tie"), `correct` whether that
was the chosen one and `score` the margin (mean log-probability per token, chosen − rejected).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from studio.engine.errors import BadConfig

RESULTS_FILE = "results.json"
EXAMPLES_FILE = "examples.jsonl"
RESULTS_VERSION = 1
PRIMARY = {"classification": ("accuracy", True), "generation": ("token_f1", True), "perplexity": ("perplexity", False),
           "preference": ("preference_accuracy", True)}
METRIC_WORDS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "gen_accuracy": "accuracy (generated)",
                "gen_macro_f1": "macro-F1 (generated)", "unparseable": "no label in the answer",
                "exact_match": "exact match", "token_f1": "token F1", "chrf": "chrF",
                "reference_loss": "loss of the reference", "reference_perplexity": "perplexity of the reference",
                "perplexity": "perplexity", "loss": "loss per token", "tokens": "tokens scored",
                "preference_accuracy": "preference accuracy", "logprob_margin": "margin per token"}
FRACTION_METRICS = ("accuracy", "macro_f1", "gen_accuracy", "gen_macro_f1", "unparseable", "exact_match", "token_f1",
                    "preference_accuracy")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(run_dir: Path, results: dict) -> Path:
    path = Path(run_dir) / RESULTS_FILE
    _write_atomic(path, json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    return path


def write_examples(run_dir: Path, rows: list[dict]) -> Path:
    path = Path(run_dir) / EXAMPLES_FILE
    _write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
    return path


def load_results(run_dir: Path) -> dict:
    path = Path(run_dir) / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadConfig(f"{run_dir} holds no evaluation results ({RESULTS_FILE} is missing).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadConfig(f"{path} is not readable JSON ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise BadConfig(f"{path} is not an evaluation's results file (no candidates).")
    return data


def load_examples(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / EXAMPLES_FILE
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if isinstance(row, dict):
            rows.append(row)
    return rows


def format_metric(name: str, value) -> str:
    if value is None:
        return "–"
    if name in FRACTION_METRICS:
        return f"{100 * value:.1f}%"
    if name == "tokens":
        return f"{int(value):,}"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the candidates × metrics table, as text (the CLI prints it, the GUI shows it)."""
    metrics = []
    for cand in results.get("candidates", []):
        for name in cand.get("metrics", {}):
            if name not in metrics:
                metrics.append(name)
    cost = [("prompt_tokens", "prompt tokens/request"), ("latency_p50_s", "latency p50 (s)"),
            ("examples_per_s", "examples/s")]
    headers = ["candidate"] + [METRIC_WORDS.get(m, m) for m in metrics] + [words for _, words in cost]
    rows = []
    for cand in results.get("candidates", []):
        values = [format_metric(m, cand.get("metrics", {}).get(m)) for m in metrics]
        costs = cand.get("cost", {})
        values += [f"{costs[k]:,.0f}" if k == "prompt_tokens" and costs.get(k) is not None else
                   f"{costs[k]:.3g}" if costs.get(k) is not None else "–" for k, _ in cost]
        rows.append([cand.get("label", cand.get("id", "?"))] + values)
    return headers, rows
