"""Preference tuning end to end on the tiny model: DPO, ORPO and KTO learn a memorisable toy preference (the
loss falls and the chosen replies win more often than chance), through real files, TRL's trainers, PEFT adapters
that plain peft loads, and the same stop/resume as supervised fine-tuning."""

import json
import threading
from pathlib import Path

import pytest

from studio.engine.events import EventWriter, read_events
from studio.engine.preference.config import PreferenceConfig
from tests.conftest import QA_PAIRS

WRONG = ["The capital of Zorbia is Kelp.", "Nobody painted the blue fox.", "Kelp has two moons.",
         "A glimmerfish is green."]
FAST = dict(lora_r=8, lora_alpha=16, lora_dropout=0.0, learning_rate=5e-3, max_steps=24, batch_size=4,
            validation_fraction=0.0, eval_every=0, save_every=0, warmup_ratio=0.0, log_every=2, scheduler="constant",
            max_length=96)


def _pairs() -> list[dict]:
    return [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": a}],
             "rejected": [{"role": "assistant", "content": b}]} for (q, a), b in zip(QA_PAIRS, WRONG)]


@pytest.fixture(scope="module")
def pair_file(tmp_path_factory) -> Path:
    """The toy preference as a file in the layout people bring (TRL's prompt/chosen/rejected strings)."""
    path = tmp_path_factory.mktemp("pref") / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": q, "chosen": a, "rejected": b})
                              for (q, a), b in zip(QA_PAIRS, WRONG)) * 1)
    return path


@pytest.fixture(scope="module")
def mark_file(tmp_path_factory) -> Path:
    """The same preference as single replies marked good or bad (KTO), as the playground writes them."""
    path = tmp_path_factory.mktemp("marks") / "marks.jsonl"
    lines = []
    for pair in _pairs():
        lines.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        lines.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    path.write_text("\n".join(json.dumps(line) for line in lines))
    return path


def run(cfg: PreferenceConfig, run_dir: Path, stop: threading.Event | None = None) -> list[dict]:
    from studio.engine.preference.recipe import run_preference

    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventWriter(run_dir / "events.jsonl", None)
    try:
        run_preference(cfg, run_dir, writer, stop or threading.Event())
    finally:
        writer.close()
    return read_events(run_dir / "events.jsonl")


def _accuracy(model_dir: Path, adapter: Path | None, objective: str, tuned_folder: Path | None = None) -> float:
    """Preference accuracy on the training pairs: against the base model for DPO and KTO (the implicit reward),
    per-token log-probability for ORPO (which has no reference)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.data.render import ensure_chat_template
    from studio.engine.preference.scoring import pair_accuracy, pair_scores

    tokenizer = AutoTokenizer.from_pretrained(adapter or model_dir)
    ensure_chat_template(tokenizer)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    reference = pair_scores(base, tokenizer, _pairs())
    if adapter is not None:
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(base, str(adapter))
    else:
        tuned = AutoModelForCausalLM.from_pretrained(tuned_folder)
    scores = pair_scores(tuned, tokenizer, _pairs())
    if objective == "orpo":
        return pair_accuracy(scores, per_token=True)
    return pair_accuracy(scores, reference)


def _losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e["type"] == "log"]


@pytest.mark.parametrize("objective", ["dpo", "orpo", "kto"])
def test_each_objective_learns_the_preference(objective, tiny_llama, pair_file, mark_file, tmp_path):
    data = mark_file if objective == "kto" else pair_file
    cfg = PreferenceConfig(model=str(tiny_llama), dataset=str(data), objective=objective, **FAST)
    events = run(cfg, tmp_path / objective)
    finished = events[-1]
    assert finished["type"] == "finished" and finished["status"] == "completed", events[-1]
    started = next(e for e in events if e["type"] == "started")
    assert started["task"] == "preference" and started["objective"] == objective
    losses = _losses(events)
    assert sum(losses[-3:]) / 3 < losses[0], losses
    adapter = tmp_path / objective / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert not (adapter / "ref").exists()  # the frozen reference copy is not part of the output
    assert _accuracy(tiny_llama, adapter, objective) >= 0.75  # 3 or 4 of the 4 pairs; chance is 2
    if objective != "kto":  # TRL reports the accuracy per batch of pairs
        logged = [e for e in events if e["type"] == "log" and "preference_accuracy" in e]
        assert logged and "reward_margin" in logged[-1]


def test_kto_reports_a_preference_accuracy_on_validation_replies(tiny_llama, mark_file, tmp_path):
    cfg = PreferenceConfig(model=str(tiny_llama), dataset=str(mark_file), validation_file=str(mark_file),
                           objective="kto", **{**FAST, "eval_every": 12})
    events = run(cfg, tmp_path / "kto")
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and all(0.0 <= e["preference_accuracy"] <= 1.0 for e in evals)
    assert evals[-1]["preference_accuracy"] >= 0.75 and evals[-1]["reward_margin"] > 0


def test_full_fine_tuning_needs_no_second_model(tiny_llama, pair_file, tmp_path):
    cfg = PreferenceConfig(model=str(tiny_llama), dataset=str(pair_file), method="full",
                           **{**FAST, "learning_rate": 1e-3, "max_steps": 12})
    events = run(cfg, tmp_path / "full")
    started = next(e for e in events if e["type"] == "started")
    assert "before training" in started["reference"]
    assert started["trainable_parameters"] == started["parameters"]
    assert (tmp_path / "full" / "model" / "model.safetensors").is_file()
    assert _accuracy(tiny_llama, None, "dpo", tuned_folder=tmp_path / "full" / "model") >= 0.75
    losses = _losses(events)
    assert losses[-1] < losses[0]


def test_continuing_an_adapter_uses_it_as_the_reference(tiny_llama, pair_file, memorised_adapter, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = PreferenceConfig(model=str(tiny_llama), dataset=str(pair_file), adapter=str(memorised_adapter),
                           **{**FAST, "max_steps": 4, "log_every": 1})
    events = run(cfg, tmp_path / "continued")
    assert next(e for e in events if e["type"] == "started")["reference"].startswith("the starting adapter")
    first = next(e for e in events if e["type"] == "log")
    # The reference is the starting adapter, not the base model: before any update the margin is zero.
    assert abs(first["reward_margin"]) < 1e-4
    out = tmp_path / "continued" / "adapter"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(out))
    assert list(model.peft_config) == ["default"]


def test_stop_then_resume_continues_the_same_run(tiny_llama, pair_file, tmp_path):
    stop = threading.Event()
    stop.set()  # asked before the first step ends: the run saves a checkpoint at step 1 and stops
    cfg = PreferenceConfig(model=str(tiny_llama), dataset=str(pair_file), **{**FAST, "max_steps": 6})
    events = run(cfg, tmp_path / "first", stop)
    assert events[-1]["status"] == "stopped"
    checkpoint = next(e for e in events if e["type"] == "checkpoint")["path"]
    # The resumed run saves at its own interval, not at the first run's (which saved only at the end).
    resumed = PreferenceConfig(model=str(tiny_llama), dataset=str(pair_file), resume_from=checkpoint,
                               **{**FAST, "max_steps": 6, "save_every": 2})
    events = run(resumed, tmp_path / "second")
    started = next(e for e in events if e["type"] == "started")
    assert started["resumed_at"] == 1
    assert events[-1]["status"] == "completed" and events[-1]["summary"]["steps"] == 6
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [2, 4, 6]
