import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A real Llama-architecture model (random weights) with a tokenizer trained on the fly, in a folder."""
    from studio.engine.scratch import save_new_causal_lm

    texts = [f"{q} {a}" for q, a in QA_PAIRS] * 20 + [
        (FIXTURES / "corpus.txt").read_text(encoding="utf-8")]
    return save_new_causal_lm(tmp_path_factory.mktemp("tiny-llama"), texts, vocab_size=400, hidden=64, layers=2)


@pytest.fixture(scope="session")
def qa_dataset(tmp_path_factory) -> Path:
    import json

    path = tmp_path_factory.mktemp("qa") / "qa.json"
    path.write_text(json.dumps([{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS]))
    return path
