"""Fine-tuning in-process: LoRA memorisation, QLoRA, full fine-tuning, determinism, packed rows."""

import json

import pytest
import torch

from tests.conftest import QA_PAIRS
from sft_helpers import MEMORISE, losses, run_in_process, sft_config


@pytest.fixture(scope="module")
def memorised(memorised_run):
    return memorised_run  # tests/conftest.py trains it once for the suite, with MEMORISE


def test_lora_learns_the_pairs_and_saves_a_peft_adapter(memorised, tiny_llama):
    run_dir, events = memorised
    curve = losses(events)
    first, last = curve[min(curve)], curve[max(curve)]
    assert last < 0.15 * first, curve
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    adapter = run_dir / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "tokenizer_config.json").read_text()).get("chat_template") or \
        (adapter / "chat_template.jinja").is_file()
    assert not list(run_dir.glob(".adapter*"))  # no temporary folder left behind


def test_greedy_generation_with_the_adapter_reproduces_the_answers(memorised, tiny_llama):
    from studio.engine.generation import generate_text, load_for_generation

    loaded = load_for_generation(str(tiny_llama), str(memorised[0] / "adapter"))
    for question, answer in QA_PAIRS:
        assert generate_text(loaded, question, max_new_tokens=24).strip() == answer


def test_plain_peft_gives_the_same_logits(memorised, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.generation import build_prompt, load_for_generation

    adapter = memorised[0] / "adapter"
    ours = load_for_generation(str(tiny_llama), str(adapter))
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), adapter).eval()
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    text = build_prompt(tokenizer, QA_PAIRS[0][0])
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        assert torch.allclose(ours.model(ids).logits, plain(ids).logits, atol=1e-5)
        base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()(ids).logits
    assert not torch.allclose(base, plain(ids).logits, atol=1e-2)  # the adapter changed something


def test_same_seed_gives_the_same_loss_curve(tiny_llama, qa_dataset, tmp_path):
    cfg = dict(MEMORISE, epochs=3, log_every=1, lora_dropout=0.1, learning_rate=1e-3, batch_size=2)
    a = losses(run_in_process(sft_config(tiny_llama, qa_dataset, **cfg), tmp_path / "a"))
    b = losses(run_in_process(sft_config(tiny_llama, qa_dataset, **cfg), tmp_path / "b"))
    c = losses(run_in_process(sft_config(tiny_llama, qa_dataset, **cfg, seed=7), tmp_path / "c"))
    assert len(a) == 6 and a == pytest.approx(b, abs=1e-6)
    assert a != pytest.approx(c, abs=1e-6)


def test_qlora_4bit_runs_and_saves(tiny_llama, qa_dataset, tmp_path):
    events = run_in_process(sft_config(tiny_llama, qa_dataset, **dict(MEMORISE, method="qlora-4bit", max_steps=3,
                                                                      log_every=1)), tmp_path)
    started = next(e for e in events if e["type"] == "started")
    assert started["method"] == "qlora-4bit"
    assert events[-1]["status"] == "completed"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses(events).values())


def test_full_fine_tune_saves_a_plain_transformers_model(tiny_llama, qa_dataset, tmp_path):
    from transformers import AutoModelForCausalLM

    run_in_process(sft_config(tiny_llama, qa_dataset, **dict(MEMORISE, method="full", max_steps=3,
                                                             learning_rate=1e-3)), tmp_path)
    out = tmp_path / "model"
    assert list(out.glob("*.safetensors")) and not list(out.glob("*.bin"))
    tuned = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    changed = any(not torch.equal(p, q) for p, q in zip(tuned.parameters(), base.parameters()))
    assert changed


def test_validation_split_evaluates_and_keeps_the_best(tiny_llama, qa_dataset, tmp_path):
    cfg = sft_config(tiny_llama, qa_dataset, **dict(MEMORISE, max_steps=6, validation_fraction=0.25,
                                                     eval_every=2, save_every=2, batch_size=1))
    events = run_in_process(cfg, tmp_path)
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4, 6]
    assert all(e["perplexity"] > 1 for e in evals)
    summary = events[-1]["summary"]
    assert summary["best_eval_loss"] == pytest.approx(min(e["eval_loss"] for e in evals))


def test_packed_rows_give_the_same_logits_as_each_sequence_alone(tiny_llama):
    from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    model.config.use_cache = False
    seqs = [[5, 9, 22, 40, 7], [11, 3, 99], [70, 71, 72, 73, 74, 75]]
    batch = DataCollatorWithFlattening(return_position_ids=True)([{"input_ids": s} for s in seqs])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        start = 0
        for s in seqs:
            alone = model(input_ids=torch.tensor([s]), use_cache=False).logits[0]
            assert torch.allclose(packed[start:start + len(s)], alone, atol=1e-5)
            start += len(s)


def test_eval_at_start_puts_the_untrained_score_at_step_zero(tiny_llama, qa_dataset, tmp_path):
    cfg = sft_config(tiny_llama, qa_dataset, **{**MEMORISE, "epochs": 1, "max_steps": 6, "validation_fraction": 0.25,
                                                "eval_every": 3, "eval_at_start": True, "device": "cpu"})
    events = run_in_process(cfg, tmp_path / "run")
    evals = [(e["step"], e["eval_loss"]) for e in events if e["type"] == "eval"]
    assert [step for step, _ in evals][:1] == [0] and len(evals) >= 3
    assert evals[-1][1] < evals[0][1]  # the curve starts from the base model's score and falls from it
