"""Preference data: every layout read into pairs and marks in TRL's conversational format, every unusable row named
with its location, the rows each objective learns from, and the pre-flight check of a preference run on a tiny real
model (no training here)."""

import json
import shutil
from pathlib import Path

import pytest

from studio.engine.config import FineTuneConfig
from studio.engine.errors import BadDataset
from studio.engine.preference.config import PreferenceConfig
from studio.engine.preference.checks import FULL_MEMORY_NOTE
from studio.engine.preference.data import (SAME_REPLIES, describe, read_preferences, rows_for, rows_with_where,
                                           split_validation)
from studio.engine.preflight import preflight
from tests.conftest import shared_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "preference"
SKY = "What colour is the sky?"
MAX_LENGTH = 128  # the tiny test tokenizer spells most words in bytes: a short chat is about 60 tokens


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def texts(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


# --- layouts ------------------------------------------------------------------------------------------------------

def test_sharegpt_pairs_take_the_turns_the_system_and_both_reply_shapes(tmp_path):
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                           {"from": "human", "value": SKY}],
         "chosen": {"from": "gpt", "value": "Blue."}, "rejected": "Green.", "system": "Be brief.", "id": 7},
    ]))
    data = read_preferences(path)
    assert data.format == "ShareGPT pairs" and data.pair_where == ["item 1"] and not data.marks
    pair = data.pairs[0]
    assert texts(pair["prompt"]) == [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", SKY)]
    assert pair["chosen"] == [bot("Blue.")] and pair["rejected"] == [bot("Green.")]


def test_alpaca_pairs_join_instruction_and_input_as_supervised_data_does():
    data = read_preferences(FIXTURES / "alpaca_pairs.json")
    assert data.format == "Alpaca pairs" and len(data.pairs) == 2
    assert texts(data.pairs[0]["prompt"]) == [("user", "Name the capital of Zorbia.")]
    second = data.pairs[1]
    assert texts(second["prompt"]) == [("system", "You are a careful translator."),
                                       ("user", "Translate to French.\n\nGood morning")]
    assert second["chosen"] == [bot("Bonjour")] and second["rejected"] == [bot("Bonsoir")]


def test_messages_pairs_accept_text_a_message_or_a_list_ending_with_the_reply(tmp_path):
    ask = [{"role": "developer", "content": "Be brief."}, user(SKY)]
    path = write_jsonl(tmp_path / "messages.jsonl", [
        {"messages": ask, "chosen": "Blue.", "rejected": "Green."},
        {"messages": ask, "chosen": bot("Blue."), "rejected": {"role": "assistant", "content": [
            {"type": "text", "text": "Green,"}, {"type": "text", "text": "mostly."}]}},
        {"messages": ask, "chosen": ask + [bot("Blue.")], "rejected": [bot("Green.")]},
    ])
    data = read_preferences(path)
    assert data.format == "messages pairs" and data.pair_where == ["line 1", "line 2", "line 3"]
    for pair in data.pairs:
        assert texts(pair["prompt"]) == [("system", "Be brief."), ("user", SKY)]
        assert pair["chosen"] == [bot("Blue.")]
    assert data.pairs[1]["rejected"] == [bot("Green,\nmostly.")]


def test_trl_standard_conversational_and_implicit_prompt_pairs(tmp_path):
    path = write_jsonl(tmp_path / "trl.jsonl", [
        {"prompt": SKY, "chosen": "Blue.", "rejected": "Green."},
        {"prompt": [user(SKY)], "chosen": [bot("Blue.")], "rejected": [bot("Green.")]},
        {"chosen": [user("Hi"), bot("Hello!"), user(SKY), bot("Blue.")],
         "rejected": [user("Hi"), bot("Hello!"), user(SKY), bot("Green.")]},
    ])
    data = read_preferences(path)
    assert data.format == "prompt pairs + whole-conversation pairs"
    assert [texts(p["prompt"]) for p in data.pairs[:2]] == [[("user", SKY)]] * 2
    implicit = data.pairs[2]
    assert texts(implicit["prompt"]) == [("user", "Hi"), ("assistant", "Hello!"), ("user", SKY)]
    assert implicit["chosen"] == [bot("Blue.")] and implicit["rejected"] == [bot("Green.")]


def test_marks_read_true_false_words_in_each_layout(tmp_path):
    path = write_jsonl(tmp_path / "kto.jsonl", [
        {"prompt": SKY, "completion": "Blue.", "label": True},
        {"prompt": [user(SKY)], "completion": [bot("Green.")], "label": "false"},
        {"messages": [user(SKY), bot("Blue, by day.")], "label": 1},
        {"instruction": "Name a colour", "input": "of the sky", "output": "Purple.", "label": "no"},
    ])
    data = read_preferences(path)
    assert not data.pairs and data.mark_where == ["line 1", "line 2", "line 3", "line 4"]
    assert [m["label"] for m in data.marks] == [True, False, True, False]
    assert [m["completion"] for m in data.marks] == [[bot("Blue.")], [bot("Green.")], [bot("Blue, by day.")],
                                                     [bot("Purple.")]]
    assert texts(data.marks[3]["prompt"]) == [("user", "Name a colour\n\nof the sky")]
    assert data.format == "marked replies + marked messages + marked Alpaca rows"


def test_a_csv_of_alpaca_rows_with_a_kto_tag_column():
    data = read_preferences(FIXTURES / "kto_marks.csv")
    assert [m["label"] for m in data.marks] == [True, False, True, False]
    assert data.mark_where == ["line 2", "line 3", "line 4", "line 5"]
    assert texts(data.marks[1]["prompt"]) == [("user", "How many moons does Kelp have?")]
    assert data.marks[1]["completion"] == [bot("Kelp has no moons at all.")]


def test_the_column_mapping_renames_columns_before_reading(tmp_path):
    path = write_jsonl(tmp_path / "renamed.jsonl", [{"question": SKY, "good": "Blue.", "bad": "Green."}])
    data = read_preferences(path, {"question": "prompt", "good": "chosen", "bad": "rejected"})
    assert texts(data.pairs[0]["prompt"]) == [("user", SKY)] and data.pairs[0]["rejected"] == [bot("Green.")]


def test_the_playground_feedback_file_mixes_pairs_and_marks():
    data = read_preferences(FIXTURES / "feedback.jsonl")
    assert data.pair_where == ["line 1"] and data.mark_where == ["line 2", "line 3"] and not data.dropped
    assert texts(data.pairs[0]["prompt"]) == [("system", "Answer briefly."), ("user", "Who painted the blue fox?")]
    assert data.pairs[0]["chosen"] == [bot("Mira Telsen painted the blue fox.")]
    assert [m["label"] for m in data.marks] == [True, False]
    assert data.format == "prompt pairs + marked replies"
    assert describe(data, "kto") == ("4 marked replies, 2 good and 2 bad (prompt pairs + marked replies; 1 pair "
                                     "counts as one good and one bad reply)")
    assert describe(data, "dpo").startswith("1 pair (prompt pairs + marked replies); 2 marked replies not used")


def test_an_unfinished_last_line_of_the_feedback_file_is_left_out_with_a_warning(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text((FIXTURES / "feedback.jsonl").read_text() + '{"prompt": [{"role": "user", "con')
    data = read_preferences(path)
    assert len(data.pairs) == 1 and len(data.marks) == 2
    assert any("line 4" in w and "unfinished" in w for w in data.warnings)
    path.write_text('{"prompt": "a", "chosen": \n' + (FIXTURES / "feedback.jsonl").read_text())
    with pytest.raises(BadDataset, match="line 1"):
        read_preferences(path)


def test_the_shared_dpo_demo_reads_300_sharegpt_pairs():
    data = read_preferences(shared_dataset("dpo_en_demo.json"))
    assert len(data.pairs) == 300 and not data.marks and not data.dropped and data.format == "ShareGPT pairs"
    first = data.pairs[0]
    assert texts(first["prompt"]) == [("user", "Hi! I'd like to create a new language game simulating the first "
                                               "person perspective of a character named Angela.")]
    assert first["chosen"][0]["content"].startswith("That sounds like a fun and engaging idea!")
    assert first["rejected"][0]["role"] == "assistant" and first["rejected"] != first["chosen"]
    assert data.pairs[1]["prompt"][0]["role"] == "system"
    for pair in data.pairs:
        assert pair["prompt"][-1]["role"] == "user" and [m["role"] for m in pair["chosen"]] == ["assistant"]
    assert describe(data, "dpo") == "300 pairs (ShareGPT pairs)"


# --- problems -----------------------------------------------------------------------------------------------------

def test_every_row_problem_is_named_with_its_location(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"prompt": SKY, "chosen": "Blue.", "rejected": "Green."},
        {"prompt": SKY, "chosen": "Blue.", "rejected": "  Blue.\n"},
        {"prompt": SKY, "chosen": "Blue.", "rejected": ""},
        {"prompt": SKY, "chosen": "Blue."},
        {"prompt": SKY, "rejected": "Green."},
        {"prompt": "   ", "chosen": "Blue.", "rejected": "Green."},
        {"prompt": [{"role": "system", "content": "Be brief."}, bot("Hi")], "chosen": "Blue.", "rejected": "Green."},
        {"prompt": SKY, "completion": "Blue.", "label": "maybe"},
        {"prompt": SKY, "completion": "Blue.", "label": None},
    ])
    data = read_preferences(path)
    assert data.pair_where == ["line 1"]
    assert data.dropped == {
        SAME_REPLIES: ["line 2"],
        "no rejected reply (field 'rejected' is missing or empty)": ["line 3", "line 4"],
        "no chosen reply (field 'chosen' is missing or empty)": ["line 5"],
        "the prompt is empty": ["line 6"],
        "no user turn in the prompt: there is nothing the replies answer": ["line 7"],
        "column 'label' is not true or false (yes/no and 1/0 are read too)": ["line 8"],
        "no chosen or rejected reply (fields 'chosen' and 'rejected' are empty) and no good/bad mark "
        "(column 'label' is empty)": ["line 9"],
    }
    assert describe(data, "dpo") == "1 pair (prompt pairs); 8 rows dropped"


def test_a_file_without_preference_columns_lists_the_columns_and_the_layouts(tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"instruction": "Hi", "output": "Hello"}])
    with pytest.raises(BadDataset) as info:
        read_preferences(path)
    message = info.value.message
    assert str(path) in message and "Columns found: instruction, output" in message
    assert "prompt, chosen, rejected" in message and "true/false column" in message
    assert "Supervised fine-tuning" in info.value.hint


def test_a_file_whose_every_row_is_unusable_says_why(tmp_path):
    path = write_jsonl(tmp_path / "same.jsonl", [{"prompt": SKY, "chosen": "Blue.", "rejected": "Blue."}] * 2)
    with pytest.raises(BadDataset) as info:
        read_preferences(path)
    assert str(path) in info.value.message and "line 1, line 2" in info.value.message
    assert "nothing to prefer" in info.value.message


# --- rows for each objective and the validation split ------------------------------------------------------------

def test_rows_for_kto_unpairs_each_pair_into_a_good_and_a_bad_reply():
    data = read_preferences(FIXTURES / "feedback.jsonl")
    assert rows_for(data, "dpo") == [{"prompt": data.pairs[0]["prompt"], "chosen": data.pairs[0]["chosen"],
                                      "rejected": data.pairs[0]["rejected"]}]
    rows, where = rows_with_where(data, "kto")
    assert [r["label"] for r in rows] == [True, False, True, False]
    assert rows[2] == {"prompt": data.pairs[0]["prompt"], "completion": data.pairs[0]["chosen"], "label": True}
    assert rows[3]["completion"] == data.pairs[0]["rejected"] and where == ["line 2", "line 3", "line 1", "line 1"]


def test_split_validation_is_seeded_and_keeps_both_kto_labels_for_training():
    rows = [{"prompt": [user(str(i))], "completion": [bot("x")], "label": i == 0} for i in range(10)]
    train, val = split_validation(rows, 0.5, seed=3)
    assert (train, val) == split_validation(rows, 0.5, seed=3) and len(train) == len(val) == 5
    for seed in range(20):  # whichever row the shuffle holds out, the one good mark stays in training
        train, val = split_validation(rows, 0.5, seed=seed)
        assert any(r["label"] for r in train) and len(val) == 5
    assert split_validation(rows, 0.0, seed=1) == (rows, [])


# --- the pre-flight check -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    from studio.engine.scratch import save_new_causal_lm

    words = ["What colour is the sky? Blue. Green. The capital of Zorbia is Quillton."] * 20
    return save_new_causal_lm(tmp_path_factory.mktemp("pref-model"), words, vocab_size=300, hidden=32, layers=1)


def preference(model, dataset, **fields) -> PreferenceConfig:
    return PreferenceConfig(model=str(model), dataset=str(dataset), max_length=MAX_LENGTH, validation_fraction=0.0,
                            **fields)


def pairs_file(path: Path, n: int = 3, prompt: str = SKY) -> Path:
    return write_jsonl(path, [{"prompt": f"{prompt} ({i})", "chosen": "Blue.", "rejected": "Green."}
                              for i in range(n)])


def test_a_good_preference_run_passes_with_a_data_note(chat_model, tmp_path):
    report = preflight(preference(chat_model, pairs_file(tmp_path / "p.jsonl")), tmp_path)
    assert report.ok, report.describe()
    note = next(n.message for n in report.notes if n.check == "data")
    assert note.startswith("p.jsonl: 3 pairs (prompt pairs); prompt + reply tokens median ")
    assert note.endswith(f"0 pairs longer than max_length {MAX_LENGTH}.")
    assert not [n for n in report.notes if n.message == FULL_MEMORY_NOTE]


def test_dropped_rows_are_a_warning_with_reasons_and_locations(chat_model, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": SKY, "chosen": "Blue.", "rejected": "Green."},
        {"prompt": SKY, "chosen": "Blue.", "rejected": "Blue. "},
        {"prompt": SKY, "chosen": "Blue."},
    ])
    report = preflight(preference(chat_model, path), tmp_path)
    assert report.ok
    warning = next(w for w in report.warnings if w.check == "data")
    assert warning.message.startswith(f"{path}: 2 of 3 rows dropped") and warning.field == "dataset"
    assert f"{SAME_REPLIES} (line 2)" in warning.message
    assert "no rejected reply (field 'rejected' is missing or empty) (line 3)" in warning.message


def test_kto_with_one_kind_of_mark_is_an_error(chat_model, tmp_path):
    path = write_jsonl(tmp_path / "good.jsonl", [{"prompt": f"{SKY} {i}", "completion": "Blue.", "label": True}
                                                 for i in range(3)])
    report = preflight(preference(chat_model, path, objective="kto", batch_size=2), tmp_path)
    assert not report.ok
    assert "all 3 marks are good: KTO needs some replies marked bad too" in report.errors[0].message
    ok = preflight(preference(chat_model, FIXTURES / "feedback.jsonl", objective="kto", batch_size=2), tmp_path)
    assert ok.ok, ok.describe()


def test_dpo_on_marks_alone_says_to_choose_kto(chat_model, tmp_path):
    report = preflight(preference(chat_model, FIXTURES / "kto_marks.csv"), tmp_path)
    error = report.errors[0]
    assert "has no pairs" in error.message and "choose objective kto" in error.message
    assert error.field == "objective"
    validation = preflight(preference(chat_model, FIXTURES / "feedback.jsonl",
                                      validation_file=str(FIXTURES / "kto_marks.csv")), tmp_path)
    assert [e.field for e in validation.errors] == ["validation_file"]


def test_prompts_that_fill_max_length_are_named_or_refused(chat_model, tmp_path):
    long = "the sky is blue and the sea is green " * 20
    path = write_jsonl(tmp_path / "long.jsonl", [
        {"prompt": SKY, "chosen": "Blue.", "rejected": "Green."},
        {"prompt": long, "chosen": "Blue.", "rejected": "Green."},
    ])
    report = preflight(preference(chat_model, path), tmp_path)
    assert report.ok
    warning = next(w for w in report.warnings if w.field == "max_length")
    assert f"1 row has a prompt of {MAX_LENGTH} tokens or more" in warning.message and "(line 2)" in warning.message
    assert f"1 pair longer than max_length {MAX_LENGTH}" in next(n.message for n in report.notes if n.check == "data")
    every = preflight(preference(chat_model, pairs_file(tmp_path / "all.jsonl", prompt=long)), tmp_path)
    assert "every prompt is longer than max_length" in every.errors[0].message
    assert every.errors[0].field == "max_length"


def test_a_preference_file_given_to_supervised_fine_tuning_gets_a_note(chat_model, tmp_path):
    path = tmp_path / "dpo.json"
    path.write_text(json.dumps([{"conversations": [{"from": "human", "value": SKY}],
                                 "chosen": {"from": "gpt", "value": "Blue."},
                                 "rejected": {"from": "gpt", "value": "Green."}}] * 2))
    cfg = FineTuneConfig(model=str(chat_model), dataset=str(path), max_length=MAX_LENGTH, validation_fraction=0.0)
    report = preflight(cfg, tmp_path)
    assert report.ok, report.describe()
    assert any(n.message == "dpo.json holds preference pairs (chosen and rejected replies): supervised fine-tuning "
               "learns the chosen replies only. To learn which reply is preferred, choose the task Preference "
               "tuning (DPO)." and n.field == "dataset" for n in report.notes)
    plain = write_jsonl(tmp_path / "sft.jsonl", [{"instruction": SKY, "output": "Blue."}])
    cfg.dataset = str(plain)
    assert not [n for n in preflight(cfg, tmp_path).notes if "preference pairs" in n.message]


def test_full_dpo_notes_the_reference_log_probabilities(chat_model, tmp_path):
    report = preflight(preference(chat_model, pairs_file(tmp_path / "p.jsonl"), method="full"), tmp_path)
    assert any(n.message == FULL_MEMORY_NOTE and n.field == "method" for n in report.notes)
    orpo = preflight(preference(chat_model, pairs_file(tmp_path / "p.jsonl"), method="full", objective="orpo"),
                     tmp_path)
    assert not [n for n in orpo.notes if n.message == FULL_MEMORY_NOTE]


@pytest.fixture(scope="module")
def real_adapter(chat_model, tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(chat_model)
    folder = tmp_path_factory.mktemp("run") / "adapter"
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])).save_pretrained(folder)
    return folder


def test_the_adapter_must_be_a_lora_folder_for_this_model(chat_model, real_adapter, tmp_path):
    data = pairs_file(tmp_path / "p.jsonl")
    fits = preflight(preference(chat_model, data, adapter=str(real_adapter)), tmp_path)
    assert fits.ok and not [f for f in fits.findings if f.field == "adapter"], fits.describe()
    run_folder = preflight(preference(chat_model, data, adapter=str(real_adapter.parent)), tmp_path)
    assert run_folder.errors[0].field == "adapter" and str(real_adapter) in run_folder.errors[0].hint
    missing = preflight(preference(chat_model, data, adapter=str(tmp_path / "nowhere")), tmp_path)
    assert "does not exist" in missing.errors[0].message
    other = shutil.copytree(chat_model, tmp_path / "other-model")
    elsewhere = preflight(preference(other, data, adapter=str(real_adapter)), tmp_path)
    assert elsewhere.ok
    warning = next(w for w in elsewhere.warnings if w.field == "adapter")
    assert f"was trained on {chat_model}" in warning.message and "other-model" in warning.message


def test_an_encoder_is_refused_as_the_model_of_a_preference_run(chat_model, tmp_path):
    model = shutil.copytree(chat_model, tmp_path / "encoder")
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "distilbert"
    (model / "config.json").write_text(json.dumps(config))
    report = preflight(preference(model, pairs_file(tmp_path / "p.jsonl")), tmp_path)
    assert "'distilbert'" in report.errors[0].message and "causal" in report.errors[0].message
