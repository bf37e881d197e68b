"""The README.md written beside an exported model: where it came from (base model, data, method), how training
went (steps, final losses) and, when an evaluation in the workspace scored it, its figures. Light module."""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.export.checks import ExportSource

CARD_FILE = "README.md"


def _data_line(run: Path, run_config: dict) -> str:
    dataset = run_config.get("dataset") or run_config.get("corpus") or "not recorded"
    line = f"- Data: `{dataset}`"
    try:
        summary = json.loads((run / "dataset_summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return line
    if isinstance(summary, dict) and summary.get("used") is not None:
        line += (f" ({summary.get('used')} of {summary.get('rows')} rows used, {summary.get('format')} format, "
                 f"{summary.get('trained_tokens')} trained tokens)")
    return line


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def evaluations_of(run: Path, workspace: Path) -> list[tuple[str, dict]]:
    """(the evaluation's folder name, the candidate's record) for each evaluation that scored this run's output."""
    from studio.engine.evaluate.results import load_results

    found = []
    runs = Path(workspace) / "runs"
    if not runs.is_dir():
        return found
    names = {str(Path(run).resolve())}
    for folder in sorted(p for p in runs.iterdir() if (p / "results.json").is_file()):
        try:
            results = load_results(folder)
        except Exception:  # noqa: BLE001 - an unreadable evaluation is left out of the card, not fatal
            continue
        for cand in results.get("candidates", []):
            paths = [cand.get("run"), cand.get("adapter"), cand.get("model")]
            if any(p and (str(Path(p).resolve()) in names or str(Path(p).resolve().parent) in names) for p in paths):
                found.append((folder.name, {**cand, "primary": results.get("primary", {}),
                                            "dataset": results.get("dataset")}))
    return found


def card_text(name: str, src: ExportSource, workspace: Path | None, files: list[str]) -> str:
    from studio.engine.evaluate.results import format_metric, METRIC_WORDS
    from studio.engine.run_state import load_run_state

    run_config = src.run_config
    base = src.base if src.kind == "adapter" else run_config.get("model") or src.path
    lines = [f"# {name}", "", "Exported by Adapt Studio.", "",
             f"- Base model: `{base}`",
             f"- Source: `{src.path}`" + (" (LoRA adapter, merged into the base)" if src.kind == "adapter" else "")]
    if src.run is not None:
        state = load_run_state(src.run)
        lines += [_data_line(src.run, run_config),
                  f"- Method: {_method_words(run_config)}",
                  f"- Steps: {state.step}" + (f" of {state.total_steps}" if state.total_steps else ""),
                  f"- Final training loss: {_number(state.summary.get('train_loss', state.last_loss))}",
                  f"- Final validation loss: {_number(state.evals[-1].loss if state.evals else None)}"
                  + (f" (best {_number(state.best_eval_loss)})" if state.best_eval_loss is not None else "")]
        for warning in src.warnings:
            lines.append(f"- Note: {warning}")
        evals = evaluations_of(src.run, workspace) if workspace is not None else []
        if evals:
            lines += ["", "## Evaluation", ""]
            for folder, cand in evals:
                figures = ", ".join(f"{METRIC_WORDS.get(k, k)} {format_metric(k, v)}"
                                    for k, v in cand.get("metrics", {}).items())
                lines.append(f"- {folder} on `{cand.get('dataset')}` ({cand.get('scored', '?')} examples): {figures}")
    if files:
        lines += ["", "## Files", ""] + [f"- {f}" for f in files]
    return "\n".join(lines) + "\n"


def write_card(folder: Path, name: str, src: ExportSource, workspace: Path | None, files: list[str]) -> Path:
    path = Path(folder) / CARD_FILE
    path.write_text(card_text(name, src, workspace, files), encoding="utf-8")
    return path


TASK_WORDS = {"sft": "supervised fine-tuning", "preference": "preference tuning", "pretrain": "pre-training"}


def _method_words(run_config: dict) -> str:
    """E.g. "preference tuning (DPO, beta 0.1) with lora"."""
    task, method = run_config.get("task"), run_config.get("method")
    if not task and not method:
        return "not recorded"
    words = TASK_WORDS.get(task, task or "")
    if task == "preference" and run_config.get("objective"):
        words += f" ({str(run_config['objective']).upper()}, beta {run_config.get('beta')})"
    return f"{words} with {method}" if words and method else (words or method)
