"""Validation figures of a classifier, from logits and labels (numpy only: scipy and scikit-learn are not
dependencies). Every figure is a plain float, list or dict so that it survives JSON: events, trainer_state.json.
"""

from __future__ import annotations

import numpy as np

# Candidate multi-label thresholds tried per label (the configured threshold is always tried too).
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _per_class(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, labels: list[str]) -> dict:
    out = {}
    for i, name in enumerate(labels):
        p = float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else 0.0
        r = float(tp[i] / (tp[i] + fn[i])) if tp[i] + fn[i] else 0.0
        out[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(_f1(p, r), 4),
                     "support": int(tp[i] + fn[i])}
    return out


def _macro_f1(per_class: dict) -> float:
    # Labels absent from the validation data and never predicted say nothing about the model: left out.
    scored = [v["f1"] for v in per_class.values() if v["support"] or v["precision"]]
    return float(np.mean(scored)) if scored else 0.0


def single_label_metrics(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    pred = logits.argmax(-1)
    k = len(names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), pred.astype(np.int64)), 1)
    tp = np.diag(confusion)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    per_class = _per_class(tp, fp, fn, names)
    return {"accuracy": float((pred == labels).mean()) if len(labels) else 0.0, "macro_f1": _macro_f1(per_class),
            "per_class": per_class, "confusion": confusion.tolist(), "labels": list(names)}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def multi_label_metrics(logits: np.ndarray, labels: np.ndarray, names: list[str],
                        thresholds: list[float]) -> dict:
    probs = sigmoid(logits)
    truth = labels >= 0.5
    pred = probs >= np.asarray(thresholds)[None, :]
    tp = (pred & truth).sum(0)
    fp = (pred & ~truth).sum(0)
    fn = (~pred & truth).sum(0)
    per_class = _per_class(tp, fp, fn, names)
    p_all = tp.sum() / max(tp.sum() + fp.sum(), 1)
    r_all = tp.sum() / max(tp.sum() + fn.sum(), 1)
    return {"accuracy": float((pred == truth).all(1).mean()) if len(labels) else 0.0,
            "macro_f1": _macro_f1(per_class), "micro_f1": float(_f1(float(p_all), float(r_all))),
            "per_class": per_class, "labels": list(names),
            "thresholds": {n: float(t) for n, t in zip(names, thresholds)}}


def tune_thresholds(logits: np.ndarray, labels: np.ndarray, start: float) -> list[float]:
    """Per label, the threshold with the best F1 on these predictions; ties go to the one nearest `start`, and
    a label without any positive example keeps `start`."""
    probs = sigmoid(logits)
    truth = labels >= 0.5
    grid = sorted(set(THRESHOLD_GRID) | {float(start)}, key=lambda t: (abs(t - start), t))
    chosen = []
    for j in range(labels.shape[1]):
        if not truth[:, j].any():
            chosen.append(float(start))
            continue
        best, best_f1 = float(start), -1.0
        for t in grid:
            pred = probs[:, j] >= t
            tp = float((pred & truth[:, j]).sum())
            f1 = 2 * tp / max(float(pred.sum() + truth[:, j].sum()), 1.0)
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(t), f1
        chosen.append(best)
    return chosen


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties given their mean rank (what Spearman's correlation needs)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom else 0.0


def regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
    pred = predictions.reshape(-1).astype(np.float64)
    truth = labels.reshape(-1).astype(np.float64)
    return {"mse": float(((pred - truth) ** 2).mean()) if len(truth) else 0.0,
            "pearson": pearson(pred, truth) if len(truth) > 1 else 0.0,
            "spearman": pearson(_ranks(pred), _ranks(truth)) if len(truth) > 1 else 0.0}


def compute_for(problem: str, names: list[str], thresholds_of):
    """A compute_metrics for Trainer; `thresholds_of()` gives the multi-label thresholds in force."""

    def compute(eval_pred) -> dict:
        logits = eval_pred.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        labels = eval_pred.label_ids
        if problem == "regression":
            return regression_metrics(np.asarray(logits), np.asarray(labels))
        if problem == "multi_label":
            return multi_label_metrics(np.asarray(logits), np.asarray(labels), names, thresholds_of())
        return single_label_metrics(np.asarray(logits), np.asarray(labels), names)

    return compute
