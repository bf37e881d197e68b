"""Pre-training estimates before Start (parameters, memory, steps, time), calibrated on this computer.

A fixed FLOP/s guess was off by 18× on a small CPU run (8 s estimated, 146 s run): small models are
dominated by the worker's start-up, tokenizing and evaluation, not by matrix throughput, and the number
of tokens per character depends on the tokenizer. So each finished pre-training run of the workspace
leaves its measurements, and the estimate uses the latest one on the same kind of device: start-up
seconds (worker start to the first step, which includes tokenizing and the step-0 evaluation), training
FLOP/s actually reached (evaluations and saving included), and characters per token. Without such a run
it says it is uncalibrated. Pure Python, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from studio.engine import presets

DEFAULT_CHARS_PER_TOKEN = 3.5  # byte-level BPE with an 8k vocabulary on English prose
DEFAULT_STARTUP_S = {"cpu": 20.0, "cuda": 30.0, "mps": 25.0}


@dataclass
class Calibration:
    device: str
    startup_s: float
    flops_per_s: float
    chars_per_token: float
    run: str  # the run folder's name it was measured on


@dataclass
class Estimate:
    parameters: int | None
    memory_bytes: int | None
    steps: int | None
    tokens: int | None
    seconds: float | None
    calibration: Calibration | None

    def text(self, device: str) -> str:
        if self.parameters is None:
            return "Choose a model folder to see its size."
        text = f"<b>{presets.human_count(self.parameters)} parameters</b>"
        if self.memory_bytes:
            text += f" · training memory ≈ {presets.human_bytes(self.memory_bytes)}"
        if self.steps:
            text += f" · {self.steps:,} steps, {presets.human_count(self.tokens or 0)} tokens"
        if self.seconds is not None:
            where = "on a CPU" if device == "cpu" else f"on {device.upper()}"
            text += f" · time {where} ≈ {presets.human_seconds(self.seconds)}"
            if self.calibration is not None:
                text += (f" <i>(start-up, training and evaluations; measured on your run {self.calibration.run}: "
                         f"{self.calibration.startup_s:.0f} s start-up, "
                         f"{self.calibration.flops_per_s / 1e9:.1f} GFLOP/s)</i>")
            else:
                text += " <i>(rough: not yet calibrated on this computer; your first run calibrates it)</i>"
        return text


def calibration_from_run(run_dir: Path) -> Calibration | None:
    """The measurements of one finished pre-training run, or None if it cannot give them."""
    from studio.engine.run_state import load_run_state

    state = load_run_state(run_dir, with_history=False)
    if state.status not in ("completed", "stopped") or state.started_time is None or not state.last_time:
        return None
    started = state.started
    params = started.get("parameters")
    tokens = state.summary.get("tokens_seen") or state.tokens_seen
    corpus = started.get("corpus") or state.data
    train_s = state.last_time - state.started_time
    if not (isinstance(params, int) and tokens and train_s > 0 and corpus.get("tokens")):
        return None
    return Calibration(device=str(started.get("device") or "cpu"),
                       startup_s=max(0.0, state.started_time - (state.first_time or state.started_time)),
                       flops_per_s=6 * params * tokens / train_s,
                       chars_per_token=max(0.5, corpus.get("characters", 0) / corpus["tokens"]),
                       run=Path(run_dir).name)


def latest_calibration(workspace: Path, device: str) -> Calibration | None:
    """From the newest finished pre-training run on this kind of device."""
    from studio.engine.runs import read_run_config

    runs = Path(workspace) / "runs"
    if not runs.is_dir():
        return None
    for run in sorted((p for p in runs.iterdir() if p.is_dir()), reverse=True):
        if read_run_config(run).get("task") != "pretrain":
            continue
        cal = calibration_from_run(run)
        if cal is not None and cal.device == device:
            return cal
    return None


def pretrain_estimate(values: dict, *, characters: int | None, documents: int = 0, folder_params: int | None = None,
                      calibration: Calibration | None = None, device: str = "cpu") -> Estimate:
    """`values` are the pre-training form's values; `characters` the corpus size (None before one is chosen)."""
    block = values["block_size"]
    batch = values["batch_size"] * values["gradient_accumulation"]
    arch = None
    if values["mode"] == "scratch":
        try:
            arch = presets.resolve_arch(values["architecture"], values["hidden_size"], values["num_layers"],
                                        values["num_heads"], values["intermediate_size"])
        except KeyError:
            return Estimate(None, None, None, None, None, calibration)
        params = presets.parameter_count(arch, values["vocab_size"], block)
        memory = presets.memory_estimate(arch, values["vocab_size"], block, values["batch_size"])
    else:
        params = folder_params
        if params is None:
            return Estimate(None, None, None, None, None, calibration)
        trainable = 0.02 if values["method"] == "lora" else 1.0
        memory = int(params * 4 + params * trainable * 12 + 300 * 2**20 + values["batch_size"] * block * 2**14)
    steps = values["max_steps"] or None
    if not steps and characters:
        chars_per_token = calibration.chars_per_token if calibration else DEFAULT_CHARS_PER_TOKEN
        blocks = (characters / chars_per_token + documents) // block
        steps = math.ceil(values["epochs"] * blocks * (1 - values["validation_fraction"]) / batch) or None
    if not steps:
        return Estimate(params, memory, None, None, None, calibration)
    tokens = steps * batch * block
    flops = (presets.flops_per_token(arch, values["vocab_size"], block) if arch else 6 * params) * tokens
    if calibration is not None:
        seconds = calibration.startup_s + flops / calibration.flops_per_s
    else:
        throughput = presets.THROUGHPUT.get(device, presets.THROUGHPUT["cpu"])
        seconds = DEFAULT_STARTUP_S.get(device, 20.0) + flops / throughput
    return Estimate(params, memory, steps, tokens, seconds, calibration)


def params_in_folder(folder: str) -> int | None:
    """Parameter count of a model folder from its safetensors headers (no torch, no weights read)."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder or "").expanduser()
    if not path.is_dir():
        return None
    total = 0
    for f in path.glob("*.safetensors"):
        try:
            with safe_open(f, framework="numpy") as weights:
                total += sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())
        except (OSError, SafetensorError):
            continue
    return total or None


def estimate_device(setting: str) -> str:
    """The device an estimate is for: the form's choice, with auto read as the CPU (finding a GPU would mean
    importing torch in the window)."""
    return "cpu" if setting in ("auto", "cpu") else setting


class PretrainEstimator:
    """Estimates for the pre-training form, calibrated on the workspace's latest run on the same kind of
    device (read once per device, until `forget_calibration` after a run ends). `workspace` is a function giving
    the workspace folder, which the settings can move."""

    def __init__(self, workspace):
        self.workspace = workspace
        self._calibration: tuple[str, Calibration | None] | None = None

    def calibration(self, device: str) -> Calibration | None:
        if self._calibration is None or self._calibration[0] != device:
            self._calibration = (device, latest_calibration(Path(self.workspace()), device))
        return self._calibration[1]

    def forget_calibration(self) -> None:
        self._calibration = None

    def estimate(self, values: dict, corpus=None) -> tuple[Estimate, str]:
        """The estimate for the form's `values` and the corpus summary (None before text is chosen), and the
        device it is for."""
        device = estimate_device(values["device"])
        estimate = pretrain_estimate(values, characters=corpus.characters if corpus else None,
                                     documents=corpus.documents if corpus else 0,
                                     folder_params=params_in_folder(values["model"]) if values["mode"] == "continue"
                                     else None,
                                     calibration=self.calibration(device), device=device)
        return estimate, device
