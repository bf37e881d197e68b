"""Faults: workers killed at random moments, a full disk, a diverging run, bad models and configs."""

import errno
from concurrent.futures import ThreadPoolExecutor

import pytest

from fault_helpers import check_checkpoint_loads, kill_at, random_delays, run_status
from sft_helpers import MEMORISE, losses, run_in_process, sft_config
from studio.engine.errors import BadModel, NanLoss, UnsafeModel
from studio.engine.worker import classify

FAULTY = dict(MEMORISE, epochs=1000, max_steps=12, log_every=1, save_every=1, keep_checkpoints=2,
              lora_dropout=0.1, learning_rate=1e-3, scheduler="linear", batch_size=2)


@pytest.fixture(scope="module")
def reference(tiny_llama, qa_dataset, tmp_path_factory):
    """The losses of one uninterrupted run, in-process: the worker runs this same recipe, and a worker start
    costs the imports of torch and transformers."""
    return losses(run_in_process(sft_config(tiny_llama, qa_dataset, **FAULTY), tmp_path_factory.mktemp("ref")))


def test_random_kills_lose_nothing_that_was_complete(tiny_llama, qa_dataset, tmp_path, reference):
    cfg = sft_config(tiny_llama, qa_dataset, **FAULTY)
    # The three workers run side by side: each start is mostly the imports of torch and transformers.
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = [pool.submit(kill_at, cfg, tmp_path / f"k{i}", after_s=delay, latest_step=FAULTY["max_steps"] - 2)
                   for i, delay in enumerate(random_delays(2, 0.6))]
        started.append(pool.submit(kill_at, cfg, tmp_path / "out", on_saving_output=True))
        kills = [f.result() for f in started]
    assert kills[-1].moment == "output"
    for kill in kills:
        assert kill.final_event["type"] == "failed", kill
        assert run_status(kill.run_dir) == "failed"
        assert not (kill.run_dir / "adapter").exists()  # never a half-written output
        if kill.checkpoint is None:
            continue
        check_checkpoint_loads(kill.checkpoint)
        # Resumed in-process (tests/engine/test_worker.py resumes killed runs in a real worker).
        events = run_in_process(sft_config(tiny_llama, qa_dataset, **dict(FAULTY, resume_from=str(kill.checkpoint))),
                                tmp_path / f"resume-{kill.run_dir.name}")
        assert events[-1]["type"] == "finished", events[-1]
        resumed = losses(events)
        assert resumed == pytest.approx({s: reference[s] for s in resumed}, abs=1e-5)
    assert any(k.checkpoint is not None for k in kills)


def test_disk_full_during_a_checkpoint_fails_clearly_and_keeps_the_previous_one(tiny_llama, qa_dataset, tmp_path,
                                                                             monkeypatch):
    import torch

    real_save, calls = torch.save, {"n": 0}

    def failing_save(obj, f, *args, **kwargs):
        if str(f).endswith("optimizer.pt"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    cfg = sft_config(tiny_llama, qa_dataset, **dict(FAULTY, save_every=2, keep_checkpoints=5))
    with pytest.raises(OSError) as info:
        run_in_process(cfg, tmp_path)
    event = classify(info.value)
    assert event["kind"] == "disk_full" and "disk is full" in event["message"] and "Free space" in event["hint"]
    from studio.engine.runs import complete_checkpoints

    done = complete_checkpoints(tmp_path)
    assert [p.name for p in done] == ["checkpoint-2"]
    monkeypatch.setattr(torch, "save", real_save)
    check_checkpoint_loads(done[0])
    assert not (tmp_path / "adapter").exists()


def test_a_diverging_run_stops_with_nan_loss(tiny_llama, qa_dataset, tmp_path):
    cfg = sft_config(tiny_llama, qa_dataset, **dict(FAULTY, method="full", learning_rate=1.0, max_grad_norm=0.0,
                                                     save_every=0, max_steps=40))
    with pytest.raises(NanLoss) as info:
        run_in_process(cfg, tmp_path)
    event = classify(info.value)
    assert event["kind"] == "nan_loss" and "learning rate" in event["hint"]


def _tiny_folder(tiny_llama, tmp_path, name):
    import shutil

    folder = tmp_path / name
    shutil.copytree(tiny_llama, folder)
    return folder


def test_model_problems_are_classified(tiny_llama, tmp_path):
    import json

    from studio.engine.generation import load_for_generation
    from studio.engine.models import check_model_safety, resolve_model_path

    unsupported = _tiny_folder(tiny_llama, tmp_path, "unsupported")
    cfg = json.loads((unsupported / "config.json").read_text())
    (unsupported / "config.json").write_text(json.dumps({**cfg, "model_type": "fantasy-net"}))
    with pytest.raises(BadModel, match="fantasy-net|architecture"):
        load_for_generation(str(unsupported))

    corrupt = _tiny_folder(tiny_llama, tmp_path, "corrupt")
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(BadModel, match="corrupt|Could not load"):
        load_for_generation(str(corrupt))

    no_tokenizer = _tiny_folder(tiny_llama, tmp_path, "no-tokenizer")
    for f in no_tokenizer.glob("tokenizer*"):
        f.unlink()
    with pytest.raises(BadModel, match="tokenizer"):
        load_for_generation(str(no_tokenizer))

    pickled = _tiny_folder(tiny_llama, tmp_path, "pickled")
    weights = pickled / "model.safetensors"
    weights.rename(pickled / "pytorch_model.bin")
    with pytest.raises(UnsafeModel, match="pickle"):
        check_model_safety(resolve_model_path(str(pickled)), trust_remote_code=False, allow_pickle=False)
    check_model_safety(pickled, trust_remote_code=False, allow_pickle=True)  # the user said yes

    remote = _tiny_folder(tiny_llama, tmp_path, "remote")
    (remote / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(UnsafeModel, match="its own Python code"):
        check_model_safety(remote, trust_remote_code=False, allow_pickle=False)

    with pytest.raises(BadModel, match="does not exist"):
        resolve_model_path(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(BadModel, match="not in the Hugging Face cache"):
        resolve_model_path("someone/not-cached-model")


def test_an_adapter_for_another_base_model_is_refused(tiny_llama, qa_dataset, tmp_path):
    from tests.conftest import plain_text
    from studio.engine.generation import load_for_generation
    from studio.engine.scratch import save_new_causal_lm

    other = save_new_causal_lm(tmp_path / "other", [plain_text()], vocab_size=400, hidden=96, layers=2)
    run_in_process(sft_config(other, qa_dataset, **dict(MEMORISE, max_steps=1)), tmp_path / "run")
    with pytest.raises(BadModel) as info:
        load_for_generation(str(tiny_llama), str(tmp_path / "run" / "adapter"))
    assert "does not fit" in info.value.message


@pytest.mark.parametrize("text, words", [
    ("model: m\ndataset: d\nbatch_size: many\n", "Field 'batch_size' has the value 'many'; expected a whole number"),
    ("model: m\ndataset: d\nlearnign_rate: 0.1\n", "unknown field(s) learnign_rate"),
    ("model: m\ndataset: d\nlora_dropout: 2\n", "expected a value from 0.0 to 0.9"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_bad_configs_fail_in_the_cli_before_any_run(tmp_path, capsys, text, words):
    from studio.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", str(path), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "ws" / "runs").exists()
