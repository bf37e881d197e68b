"""The Pre-train tab's estimates, computed in the engine without Qt: a model folder's size from its safetensors
headers, and the estimate for the form's values."""

import dataclasses
import subprocess
import sys

from studio.engine.estimates import PretrainEstimator, estimate_device, params_in_folder
from studio.engine.pretrain_config import PretrainConfig


def test_a_model_folder_s_size_is_read_from_its_safetensors_headers(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert params_in_folder(str(tiny_llama)) == sum(p.numel() for p in model.parameters())
    assert params_in_folder(str(tmp_path / "nowhere")) is None
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert params_in_folder(str(broken)) is None  # unreadable files count nothing
    code = (f"import sys; from studio.engine.estimates import params_in_folder; params_in_folder({str(tiny_llama)!r});"
            " print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"  # the window can ask without loading torch


def _values(**changes) -> dict:
    return dataclasses.asdict(dataclasses.replace(PretrainConfig(), **changes))


def test_the_estimator_sizes_new_and_continued_models_for_the_form(tiny_llama, tmp_path):
    from studio.engine.data.corpus import CorpusSummary

    estimator = PretrainEstimator(lambda: tmp_path / "workspace")
    assert estimate_device("auto") == "cpu" and estimate_device("cuda") == "cuda"
    new, device = estimator.estimate(_values(architecture="llama-5m", max_steps=0))
    assert device == "cpu" and new.parameters > 1_000_000 and new.memory_bytes and new.steps is None
    assert "parameters" in new.text(device) and "steps" not in new.text(device)  # no text chosen yet
    corpus = CorpusSummary(files=1, documents=10, duplicates_removed=0, characters=350_000, tokens=0, blocks=0,
                           block_size=256, dropped_tokens=0, sources=[])
    sized, _ = estimator.estimate(_values(architecture="llama-5m", max_steps=0, epochs=1.0), corpus)
    assert sized.steps and sized.seconds and "not yet calibrated" in sized.text(device)
    continued, _ = estimator.estimate(_values(mode="continue", model=str(tiny_llama), max_steps=10))
    assert continued.parameters == params_in_folder(str(tiny_llama)) and continued.steps == 10
    nothing, _ = estimator.estimate(_values(mode="continue", model=str(tmp_path / "none")))
    assert nothing.text("cpu") == "Choose a model folder to see its size."
