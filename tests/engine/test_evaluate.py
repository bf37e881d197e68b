"""The evaluator end to end: real tiny models and adapters, the worker's job in-process, the CLI once."""

import json
import subprocess
import sys
import threading

import pytest

from studio.engine.evaluate.config import EvalConfig
from studio.engine.evaluate.results import load_examples, load_results
from studio.engine.events import EventWriter, read_events
from tests.conftest import QA_PAIRS, ROOT

LABELLED = [("What is the capital of Zorbia?", "place"), ("Who painted the blue fox?", "person"),
            ("How many moons does Kelp have?", "number"), ("What colour is a glimmerfish?", "colour"),
            ("Where does Mira Telsen live?", "place"), ("How many legs has a glimmerfish?", "number")]


def evaluate(cfg: EvalConfig, run_dir, stop_when=None):
    """The worker's evaluation job in-process; `stop_when(event)` sets the stop flag after that event."""
    from studio.engine.config import validate
    from studio.engine.evaluate.recipe import run_eval

    validate(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    class Writer(EventWriter):
        def emit(self, type, **fields):
            event = super().emit(type, **fields)
            if stop_when and stop_when(event):
                stop.set()
            return event

    writer = Writer(run_dir / "events.jsonl", None)
    try:
        run_eval(cfg, run_dir, writer, stop)
    finally:
        writer.close()
    return read_events(run_dir / "events.jsonl"), load_results(run_dir), load_examples(run_dir)


def by_id(results):
    return {c["id"]: c for c in results["candidates"]}


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labelled") / "held-out.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in LABELLED))
    return path


def test_the_memorised_adapter_ranks_above_the_base_model(tiny_llama, qa_dataset, memorised_adapter, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(qa_dataset), shots="0", tuned=str(memorised_adapter),
                     batch_size=3, device="cpu")
    events, results, examples = evaluate(cfg, tmp_path / "eval")
    base, tuned = by_id(results)["prompt-0"], by_id(results)["tuned-1"]
    assert results["kind"] == "generation" and results["complete"]
    assert tuned["metrics"]["exact_match"] == 1.0  # it learned the four answers by heart
    assert tuned["metrics"]["token_f1"] > base["metrics"]["token_f1"]
    assert tuned["metrics"]["reference_loss"] < base["metrics"]["reference_loss"] / 3
    assert "Highest token F1" in results["recommendation"] and tuned["label"] in results["recommendation"]
    assert [row["reference"] for row in examples] == [a for _, a in QA_PAIRS]
    assert all(row["answers"]["tuned-1"]["correct"] for row in examples)
    assert [e["candidate"]["id"] for e in events if e["type"] == "scored"] == ["prompt-0", "tuned-1"]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"


def plain_label_scores(model_dir, text, labels):
    """Reference: each label's log-likelihood after the chat prompt, with plain transformers, one pass each."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.data.render import FALLBACK_CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = tok.chat_template or FALLBACK_CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    messages = [{"role": "system", "content": "Answer with one of: " + ", ".join(labels) + "."},
                {"role": "user", "content": text}]
    prompt = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
                 add_special_tokens=False)["input_ids"]
    scores = []
    for label in labels:
        full_text = tok.apply_chat_template(messages + [{"role": "assistant", "content": label}], tokenize=False)
        full = tok(full_text, add_special_tokens=False)["input_ids"]
        assert full[:len(prompt)] == prompt
        with torch.no_grad():
            logits = model(torch.tensor([full])).logits[0]
        logprobs = torch.log_softmax(logits[:-1].float(), dim=-1)
        scores.append(sum(logprobs[i - 1, full[i]].item() for i in range(len(prompt), len(full))))
    return scores


def test_label_scores_and_accuracy_equal_plain_transformers(tiny_llama, labelled_file, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(labelled_file), shots="0", batch_size=4, device="cpu",
                     generate=False)
    _, results, examples = evaluate(cfg, tmp_path / "eval")
    labels = results["labels"]
    assert labels == ["colour", "number", "person", "place"]
    correct = 0
    for row, (text, label) in zip(examples, LABELLED):
        scores = plain_label_scores(tiny_llama, text, labels)
        best = labels[scores.index(max(scores))]
        answer = row["answers"]["prompt-0"]
        assert answer["answer"] == best
        assert answer["score"] == pytest.approx(max(scores), abs=1e-4)
        correct += best == label
    candidate = by_id(results)["prompt-0"]
    assert candidate["metrics"]["accuracy"] == pytest.approx(correct / len(LABELLED))
    matrix = candidate["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == len(LABELLED) and sum(matrix[i][i] for i in range(len(labels))) == correct


def test_shots_that_do_not_fit_are_dropped_and_counted_never_cut(tiny_llama, qa_dataset, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(qa_dataset), shots="0, 3", shot_pool=str(qa_dataset),
                     max_length=60, max_new_tokens=8, device="cpu")
    _, results, examples = evaluate(cfg, tmp_path / "eval")
    three = by_id(results)["prompt-3"]
    assert three["fit"]["shots_dropped"] + three["fit"]["skipped"] > 0
    assert three["scored"] + three["fit"]["skipped"] == len(QA_PAIRS)
    # A prompt is never longer than the room it had: shots went first.
    assert three["cost"]["prompt_tokens"] <= 60


def test_held_out_labels_the_shots_never_show_are_reported(tiny_llama, labelled_file, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"text": "Who wrote the green book?", "label": "person"}) + "\n")
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(labelled_file), shots="1", shot_pool=str(pool),
                     device="cpu", generate=False)
    _, results, _ = evaluate(cfg, tmp_path / "eval")
    assert by_id(results)["prompt-1"]["unseen_labels"] == ["colour", "number", "place"]
    assert any("colour, number, place never appear in its shots" in w for w in results["warnings"])


def test_a_stop_keeps_the_candidates_already_scored(tiny_llama, qa_dataset, memorised_adapter, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(qa_dataset), shots="0", tuned=str(memorised_adapter),
                     device="cpu")
    events, results, examples = evaluate(cfg, tmp_path / "eval", stop_when=lambda e: e["type"] == "scored")
    assert events[-1]["status"] == "stopped"
    assert not results["complete"] and [c["id"] for c in results["candidates"]] == ["prompt-0"]
    assert all(set(row["answers"]) == {"prompt-0"} for row in examples)


def test_raw_text_is_scored_by_perplexity_without_shots(tiny_llama, qa_dataset, tmp_path):
    text = tmp_path / "held-out.txt"
    text.write_text("\n\n".join(f"{q} {a}" for q, a in QA_PAIRS) + "\n")
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(text), shots="0, 2", shot_pool=str(qa_dataset), window=16,
                     stride=8, device="cpu")
    _, results, examples = evaluate(cfg, tmp_path / "eval")
    assert results["kind"] == "perplexity" and [c["id"] for c in results["candidates"]] == ["prompt-0"]
    assert any("only the 0-shot" in w for w in results["warnings"])
    metrics = by_id(results)["prompt-0"]["metrics"]
    assert metrics["perplexity"] == pytest.approx(2.718281828 ** metrics["loss"], rel=1e-6)
    assert len(examples) == len(QA_PAIRS) and all(row["answers"]["prompt-0"]["score"] > 1 for row in examples)


@pytest.mark.parametrize("content, words", [
    ("", "is empty"),
    ('{"text": "fine", "label": null}\n{"text": "", "label": "a"}\n', "nothing to score"),
    ('{"title": "x", "stars": 3}\n', "cannot tell what to score"),
])
def test_a_file_with_nothing_to_score_is_refused_before_any_run_folder(tiny_llama, tmp_path, content, words):
    from studio.engine.errors import BadDataset
    from studio.engine.supervisor import prepare_run

    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text(content)
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(held_out), shots="0")
    with pytest.raises(BadDataset) as err:
        prepare_run(cfg, tmp_path / "ws")
    assert words in err.value.message and "held-out.jsonl" in err.value.message
    assert not (tmp_path / "ws" / "runs").exists()


def test_a_run_name_becomes_that_runs_folder_in_the_saved_config(tiny_llama, labelled_file, tmp_path):
    from studio.engine.config import load_config
    from studio.engine.supervisor import prepare_run

    run = tmp_path / "ws" / "runs" / "20260101-000000-topics"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_llama)}))
    (run / "config.yaml").write_text(f"task: sft\nname: topics\nmodel: {tiny_llama}\ndataset: x.json\n")
    (run / "events.jsonl").write_text(json.dumps({"type": "finished", "time": 1.0, "status": "completed",
                                                  "output": str(run / "adapter")}) + "\n")
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(labelled_file), shots="0", tuned="topics")
    saved = load_config(prepare_run(cfg, tmp_path / "ws") / "config.yaml")
    assert saved.tuned_paths() == [str(run)]


def test_studio_eval_prints_the_table_and_its_config_re_runs_the_same(tiny_llama, qa_dataset, tmp_path):
    ws = tmp_path / "ws"

    def studio(*args):
        return subprocess.run([sys.executable, "-m", "studio.cli", "eval", *args, "--workspace", str(ws), "--quiet"],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)

    first = studio("--model", str(tiny_llama), "--data", str(qa_dataset), "--shots", "0,1", "--shot-pool",
                   str(qa_dataset), "--set", "max_new_tokens=12")
    assert first.returncode == 0, first.stderr
    assert "token F1" in first.stdout and "tiny-llama" in first.stdout and "Highest token F1" in first.stdout
    run_dir = next((ws / "runs").iterdir())
    again = studio(str(run_dir / "config.yaml"))
    assert again.returncode == 0, again.stderr
    second_dir = next(p for p in (ws / "runs").iterdir() if p != run_dir)
    strip = [{k: c[k] for k in ("id", "metrics", "scored")} for c in load_results(run_dir)["candidates"]]
    assert strip == [{k: c[k] for k in ("id", "metrics", "scored")} for c in load_results(second_dir)["candidates"]]


def test_an_encoder_is_refused_as_a_candidate_before_any_run_folder(tiny_llama, labelled_file, tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    from studio.engine.errors import BadModel
    from studio.engine.supervisor import prepare_run

    encoder = tmp_path / "bert"
    BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(encoder)  # what a masked-LM run saves
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(labelled_file), shots="0", tuned=str(encoder))
    with pytest.raises(BadModel) as err:
        prepare_run(cfg, tmp_path / "ws")
    assert "BertForMaskedLM" in err.value.message and "not a causal" in err.value.message
    assert not (tmp_path / "ws" / "runs").exists()
