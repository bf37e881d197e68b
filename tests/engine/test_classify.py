"""Classification training end to end on tiny real models: a BERT encoder built from a config (with the MiniLM
tokenizer) and the starter Llama decoder. The outputs must load with plain transformers and peft."""

import csv
import json
import random
import threading
from pathlib import Path

import pytest

from tests.conftest import minilm_path

from studio.engine.classify.config import ClassifyConfig
from studio.engine.events import EventWriter, read_events
from studio.engine.run_state import RunState

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "resources" / "starter-model"
FILLER = "the a this my our box item thing day week it was is and with for".split()
GOOD, BAD = "great lovely perfect excellent".split(), "awful broken terrible useless".split()
# A tiny encoder trained from scratch needs many small steps; these settings learn the easy sets in ~2 s.
TINY = dict(method="full", learning_rate=1e-3, batch_size=8, warmup_ratio=0.0, max_length=64, log_every=5,
            device="cpu", validation_fraction=0.2)




@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer, 64-wide BERT with MiniLM's tokenizer, saved like a user's model folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    # Without dropout and with 4 heads a model this small learns two keywords at once (multi-label) reliably.
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=128, max_position_embeddings=128, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def easy_rows(n: int, seed: int = 0, keyword_last: bool = False) -> list[list[str]]:
    """Texts of filler words with one word that gives the label away (last, for the decoder test)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 20))]
        word = rng.choice(GOOD if positive else BAD)
        words.insert(len(words) if keyword_last else rng.randrange(len(words) + 1), word)
        rows.append([" ".join(words), "yes" if positive else "no"])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(cfg: ClassifyConfig, run_dir: Path) -> list[dict]:
    from studio.engine.classify.recipe import run_classify

    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventWriter(run_dir / "events.jsonl", None)
    try:
        run_classify(cfg, run_dir, writer, threading.Event())
    finally:
        writer.close()
    return read_events(run_dir / "events.jsonl")


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def test_tiny_bert_learns_and_leaves_a_plain_transformers_model(tiny_bert, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, pipeline

    from studio.engine.classify.predict import is_classifier, load_classifier

    data = write_csv(tmp_path / "easy.csv", ["text", "label"], easy_rows(120))
    cfg = ClassifyConfig(model=str(tiny_bert), dataset=str(data), max_steps=150, eval_every=25, save_every=25,
                         keep_checkpoints=1, **TINY)
    events = run(cfg, tmp_path / "run")

    reading = [e for e in of_type(events, "progress") if e.get("dataset")]
    assert reading and reading[-1]["train_rows"] == 96 and reading[-1]["validation_rows"] == 24
    assert reading[-1]["dataset"]["labels"] == {"no": 60, "yes": 60}
    started = of_type(events, "started")[0]
    assert (started["task"], started["problem"], started["labels"]) == ("classify", "single_label", ["no", "yes"])
    evals = of_type(events, "eval")
    assert [e["step"] for e in evals] == [25, 50, 75, 100, 125, 150]
    last = evals[-1]
    assert "perplexity" not in last and last["labels"] == ["no", "yes"]
    assert set(last["per_class"]["yes"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, last["confusion"])) == 24
    assert max(e["accuracy"] for e in evals) >= 0.9 > evals[0]["accuracy"] - 0.3
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.2
    finished = of_type(events, "finished")[0]
    assert finished["status"] == "completed" and finished["output"] == str(tmp_path / "run" / "model")
    summary = finished["summary"]
    assert summary["best_metric"] == "macro_f1" and summary["labels"] == ["no", "yes"]
    assert summary["best_value"] == max(e["macro_f1"] for e in evals) == summary["metrics"]["macro_f1"]

    state = RunState()
    for e in events:
        state.apply(e)
    assert state.evals[-1].details["confusion"] == last["confusion"] and state.evals[-1].perplexity is None
    # Non-numeric figures survive the checkpoint's trainer_state.json (read back when a run resumes).
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    assert any(isinstance(h.get("eval_confusion"), list) for h in history)

    model_dir = tmp_path / "run" / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "no", "1": "yes"} and config["problem_type"] == "single_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    classify = pipeline("text-classification", model=str(model_dir))
    texts = ["it was great with the box", "my item is broken this week"]
    assert [r["label"] for r in classify(texts)] == ["yes", "no"]
    assert is_classifier(model_dir) and is_classifier(tmp_path / "run") and not is_classifier(tiny_bert)
    loaded = load_classifier(tmp_path / "run")
    probs = loaded.predict(texts)
    assert loaded.labels == ["no", "yes"] and probs[0]["yes"] > 0.5 > probs[1]["yes"]
    assert sum(probs[0].values()) == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        enc = loaded.tokenizer(texts, padding=True, return_tensors="pt")
        assert torch.allclose(model(**enc).logits.softmax(-1)[:, 1], torch.tensor([p["yes"] for p in probs]),
                              atol=1e-5)


def test_starter_llama_lora_merges_and_the_adapter_loads_with_peft(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    train = write_csv(tmp_path / "train.csv", ["text", "label"], easy_rows(160, keyword_last=True))
    val = write_csv(tmp_path / "val.csv", ["sentence", "sentiment"], easy_rows(30, seed=1, keyword_last=True))
    cfg = ClassifyConfig(model=str(STARTER), dataset=str(train), validation_file=str(val), method="lora",
                         lora_r=8, lora_alpha=16, learning_rate=3e-3, batch_size=8, max_steps=60, eval_every=20,
                         save_every=20, warmup_ratio=0.0, max_length=64, log_every=5, device="cpu")
    events = run(cfg, tmp_path / "run")
    evals = of_type(events, "eval")
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] and max(e["accuracy"] for e in evals) > 0.7
    started = of_type(events, "started")[0]
    assert started["method"] == "lora" and started["trainable_parameters"] < started["parameters"] / 5

    adapter_dir, model_dir = tmp_path / "run" / "adapter", tmp_path / "run" / "model"
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["task_type"] == "SEQ_CLS" and "score" in adapter_config["modules_to_save"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["pad_token_id"] == tokenizer.pad_token_id is not None
    merged = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    base = AutoModelForSequenceClassification.from_pretrained(STARTER, num_labels=2,
                                                              pad_token_id=tokenizer.pad_token_id)
    with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()
    texts = ["the box was great", "this item is useless", "a day with my thing it was lovely"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**enc).logits, with_adapter(**enc).logits, atol=1e-4)
        alone = merged(**tokenizer(texts[2:], return_tensors="pt")).logits
    assert torch.allclose(merged(**enc).logits[2:], alone, atol=1e-4)  # padding does not change the answer
    labels = [r["label"] for r in pipeline("text-classification", model=str(model_dir))(texts)]
    assert set(labels) <= {"yes", "no"}


def test_multi_label_tunes_and_saves_per_label_thresholds(tiny_bert, tmp_path):
    from studio.engine.classify.predict import load_classifier

    rng = random.Random(2)
    rows = []
    for _ in range(160):
        labels = [name for name, p in (("sport", 0.5), ("weather", 0.4)) if rng.random() < p]
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 12))]
        words += (["football"] if "sport" in labels else []) + (["rain"] if "weather" in labels else [])
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "labels": labels})
    path = tmp_path / "multi.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = ClassifyConfig(model=str(tiny_bert), dataset=str(path), max_steps=200, eval_every=50, save_every=50,
                         class_weights=True, **TINY)
    events = run(cfg, tmp_path / "run")
    assert of_type(events, "started")[0]["problem"] == "multi_label"
    evals = of_type(events, "eval")
    tuned = evals[-1]
    assert tuned.get("thresholds_tuned") and {"micro_f1", "macro_f1", "accuracy", "per_class"} <= set(tuned)
    # Tuning starts from the configured threshold, so it can only do better than the best evaluation with it.
    assert "confusion" not in tuned and tuned["macro_f1"] >= max(e["macro_f1"] for e in evals[:-1]) - 1e-9
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert set(config["label_thresholds"]) == {"sport", "weather"} == set(tuned["thresholds"])
    assert config["label_thresholds"] == tuned["thresholds"]
    loaded = load_classifier(tmp_path / "run" / "model")
    assert loaded.problem == "multi_label" and loaded.thresholds == tuned["thresholds"]
    scores = loaded.predict(["football rain the day", "the box"])
    assert loaded.decide(scores[0]) == ["sport", "weather"] and loaded.decide(scores[1]) == []


def test_regression_predicts_a_number(tiny_bert, tmp_path):
    from transformers import pipeline

    from studio.engine.classify.predict import load_classifier

    rng = random.Random(3)
    rows = []
    for _ in range(160):
        ups = rng.randint(0, 4)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 10))] + ["up"] * ups
        rng.shuffle(words)
        rows.append([" ".join(words), f"{ups / 2:.1f}"])
    path = write_csv(tmp_path / "score.csv", ["text", "score"], rows)
    cfg = ClassifyConfig(model=str(tiny_bert), dataset=str(path), label_column="score", problem="regression",
                         max_steps=150, eval_every=50, save_every=50, **TINY)
    events = run(cfg, tmp_path / "run")
    evals = of_type(events, "eval")
    assert {"mse", "pearson", "spearman"} <= set(evals[-1]) and "accuracy" not in evals[-1]
    assert evals[-1]["mse"] < evals[0]["mse"] and evals[-1]["pearson"] > 0.5
    summary = of_type(events, "finished")[0]["summary"]
    assert summary["best_metric"] == "loss" and summary["best_value"] == min(e["eval_loss"] for e in evals)
    model_dir = tmp_path / "run" / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "value"}
    loaded = load_classifier(model_dir)
    low, high = loaded.predict(["the box", "up up up up the box"])
    assert loaded.problem == "regression" and high["value"] > low["value"] + 0.5
    assert pipeline("text-classification", model=str(model_dir), function_to_apply="none")("up")[0]["label"] == "value"


def test_qlora_runs_and_merges_into_an_unquantized_model(tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForSequenceClassification

    train = write_csv(tmp_path / "train.csv", ["text", "label"], easy_rows(24, keyword_last=True))
    cfg = ClassifyConfig(model=str(STARTER), dataset=str(train), method="qlora-4bit", max_steps=3, batch_size=8,
                         eval_every=0, save_every=0, validation_fraction=0.0, max_length=32, device="cpu")
    events = run(cfg, tmp_path / "run")
    assert of_type(events, "finished")[0]["status"] == "completed"
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert not getattr(model.config, "quantization_config", None) and model.config.id2label == {0: "no", 1: "yes"}


def test_class_weights_weigh_rare_classes_in_the_loss(tiny_bert, tmp_path):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments

    from studio.engine.classify.batches import ClassifyTrainer, PadCollator, class_weights
    from studio.engine.classify.data import read_labelled

    rows = [[f"common text {i}", "common"] for i in range(9)] + [["rare text", "rare"]]
    data = read_labelled(write_csv(tmp_path / "d.csv", ["text", "label"], rows), ClassifyConfig())
    weights = class_weights(data)
    assert weights == pytest.approx([10 / (2 * 9), 10 / (2 * 1)])
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([2.0, -1.0]))  # confident in "common": the rare row costs much
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = ClassifyTrainer(model=model, args=args, problem="single_label", class_weights=weights)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    features = [dict(tokenizer(t), labels=i) for t, i in zip(data.texts, data.label_ids())]
    batch = PadCollator(tokenizer.pad_token_id, "single_label")(features)
    labels = batch["labels"].clone()
    with torch.no_grad():
        loss = trainer.compute_loss(model.eval(), dict(batch))
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels, weight=torch.tensor(weights)).item(), rel=1e-5)
    assert loss.item() > 2 * F.cross_entropy(logits, labels).item()


def test_length_grouped_order_is_seeded_per_epoch_and_pads_less():
    from studio.engine.classify.batches import LengthGroupedOrder

    rng = random.Random(0)
    lengths = [rng.randint(3, 200) for _ in range(1000)]
    order = LengthGroupedOrder(lengths, batch_size=16, seed=7)
    first = list(order)
    assert sorted(first) == list(range(1000)) and list(order) == first
    order.set_epoch(1)
    assert list(order) != first and sorted(order) == list(range(1000))
    order.set_epoch(0)
    assert list(order) == first  # a resumed run sees the epoch's order again

    def padded(indices):
        batches = [indices[i:i + 16] for i in range(0, len(indices), 16)]
        return sum(16 * max(lengths[i] for i in b) for b in batches)

    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    assert padded(first) < 0.7 * padded(shuffled)
    assert padded(first) < 1.1 * sum(lengths)  # the short last batch does not shift the others across groups


def test_worker_stops_gracefully_and_resumes_the_same_loss_curve(tiny_bert, tmp_path):
    """Two real worker processes (stopped, then resumed) against one uninterrupted run in this process."""
    from studio.engine.runs import last_checkpoint
    from studio.engine.supervisor import WorkerProcess, prepare_run

    data = write_csv(tmp_path / "easy.csv", ["text", "label"], easy_rows(120))
    settings = dict(TINY, model=str(tiny_bert), dataset=str(data), scheduler="constant", log_every=1, eval_every=0,
                    save_every=0, name="resume")
    reference = {e["step"]: e["loss"] for e in run(ClassifyConfig(**settings, max_steps=40), tmp_path / "whole")
                 if e["type"] == "log"}

    def start(cfg):
        worker = WorkerProcess(prepare_run(cfg, tmp_path / "ws"))
        worker.start()
        return worker

    worker = start(ClassifyConfig(**settings, max_steps=2000))
    streamed, asked = [], False
    for event in worker.events():
        streamed.append(event)
        if not asked and event["type"] == "log" and event["step"] >= 3:
            worker.request_stop()
            asked = True
    final = streamed[-1]
    assert final["type"] == "finished" and final["status"] == "stopped"
    stopped_at = final["summary"]["steps"]
    assert 3 <= stopped_at < 30
    assert (worker.run_dir / "model" / "config.json").is_file()
    checkpoint = last_checkpoint(worker.run_dir)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped_at}"

    resumed = start(ClassifyConfig(**settings, max_steps=40, resume_from=str(checkpoint)))
    events = list(resumed.events())
    assert next(e for e in events if e["type"] == "started")["resumed_at"] == stopped_at
    after = {e["step"]: e["loss"] for e in events if e["type"] == "log"}
    assert min(after) == stopped_at + 1 and max(after) == 40  # 12 steps an epoch: epochs 2 and 3 come after
    assert after == pytest.approx({s: reference[s] for s in after}, abs=1e-4)
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"


def test_lora_trains_layers_the_checkpoint_lacks_in_full(tiny_bert, tmp_path):
    """A checkpoint without BERT's pooler: the pooler starts random, so LoRA must train it with the head, and the
    merged model must keep it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertModel

    folder = tmp_path / "no-pooler"
    encoder = BertModel.from_pretrained(tiny_bert, add_pooling_layer=False)
    encoder.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    data = write_csv(tmp_path / "easy.csv", ["text", "label"], easy_rows(40))
    cfg = ClassifyConfig(**dict(TINY, method="lora", learning_rate=1e-2), model=str(folder), dataset=str(data),
                         max_steps=4, eval_every=0, save_every=0)
    run(cfg, tmp_path / "run")
    adapter_config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert "bert.pooler.dense" in adapter_config["modules_to_save"]
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    pooler = next(v for k, v in saved.items() if "pooler.dense" in k and k.endswith("weight") and "lora" not in k)
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert torch.equal(merged.bert.pooler.dense.weight, pooler)


def test_early_stopping_watches_the_best_metric(tiny_bert, tmp_path):
    data = write_csv(tmp_path / "easy.csv", ["text", "label"], easy_rows(60))
    cfg = ClassifyConfig(**dict(TINY, learning_rate=1e-8), model=str(tiny_bert), dataset=str(data), max_steps=60,
                         eval_every=2, save_every=2, early_stopping_patience=2, best_metric="accuracy")
    events = run(cfg, tmp_path / "run")
    evals = of_type(events, "eval")
    summary = of_type(events, "finished")[0]["summary"]
    # Accuracy cannot rise at this learning rate: the run stops after the first evaluation and two more.
    assert [e["step"] for e in evals] == [2, 4, 6] and summary["steps"] == 6
    assert summary["best_metric"] == "accuracy" and summary["best_step"] == 2
