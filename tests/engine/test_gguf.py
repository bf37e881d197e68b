"""GGUF export: files read back with gguf.GGUFReader, and (where llama-cpp-python is installed) run in llama.cpp."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.engine.errors import BadConfig, BadModel, StudioError
from studio.engine.export.gguf import (GGUF_TYPES, estimate_gguf_bytes, gguf_problem, gguf_type_problem,
                                       permute_for_llama, write_gguf)
from tests.conftest import ROOT, minilm_path

STARTER = ROOT / "resources" / "starter-model"
TURN_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|pad|>' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def _hf_tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()}


def _field(reader, key):
    return reader.fields[key].contents()


def _expected(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """config and the HF tensors under their GGUF names, q/k permuted as the llama arch expects."""
    import json

    import gguf

    config = json.loads((folder / "config.json").read_text())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    expected = {}
    for source, data in _hf_tensors(folder).items():
        if source == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue
        if source.endswith("q_proj.weight"):
            data = permute_for_llama(data, config["num_attention_heads"])
        if source.endswith("k_proj.weight"):
            data = permute_for_llama(data, config["num_key_value_heads"])
        expected[names.get_name(source, try_suffixes=(".weight", ".bias"))] = data
    return config, expected


@pytest.fixture(scope="module", params=["tiny_llama", "starter"])
def model_dir(request):
    return request.getfixturevalue("tiny_llama") if request.param == "tiny_llama" else STARTER


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_written_file_reads_back_with_metadata_and_every_tensor(model_dir, outtype, tmp_path):
    import gguf
    from transformers import AutoTokenizer

    out = tmp_path / f"model-{outtype}.gguf"
    fractions = []
    report = write_gguf(model_dir, out, outtype, progress=fractions.append)
    reader = gguf.GGUFReader(out)
    config, expected = _expected(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    assert report["bytes"] == out.stat().st_size and report["tensors"] == len(expected)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "llama.block_count") == config["num_hidden_layers"]
    assert _field(reader, "llama.attention.head_count_kv") == config["num_key_value_heads"]
    assert _field(reader, "llama.context_length") == config["max_position_embeddings"]
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    assert report["eos_token_ids"] == [tokenizer.eos_token_id]
    assert len(_field(reader, "tokenizer.ggml.tokens")) == config["vocab_size"]
    assert _field(reader, "tokenizer.ggml.tokens")[5] == tokenizer.convert_ids_to_tokens(5)
    assert report["chat_template"] == bool(tokenizer.chat_template)
    if tokenizer.chat_template:
        assert _field(reader, "tokenizer.chat_template") == tokenizer.chat_template

    written = {t.name: t for t in reader.tensors}
    assert set(written) == set(expected)
    for name, want in expected.items():
        tensor = written[name]
        got = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(want.shape)
        if want.ndim == 1:
            assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
            np.testing.assert_array_equal(got, want)
        elif outtype == "f16":
            assert tensor.tensor_type == gguf.GGMLQuantizationType.F16
            np.testing.assert_array_equal(got, want.astype(np.float16).astype(np.float32))
        else:
            assert tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0
            # Q8_0 stores each block of 32 as int8 times one fp16 scale: half a step, plus the scale's rounding.
            step = np.abs(want).max() / 127
            assert np.abs(got - want).max() <= step * 0.6 + 1e-6


def test_permutation_turns_split_half_rotary_into_interleaved_rotary():
    """Attention scores with HF's rotary on the original q/k equal those with llama.cpp's on the permuted ones."""
    rng = np.random.default_rng(0)
    heads, head_dim, hidden = 2, 8, 16
    wq, wk = rng.normal(size=(heads * head_dim, hidden)), rng.normal(size=(heads * head_dim, hidden))
    x, y = rng.normal(size=hidden), rng.normal(size=hidden)
    inv_freq = 10000.0 ** (-np.arange(0, head_dim, 2) / head_dim)

    def split_half(v, position):  # HF: pairs (i, i + d/2)
        cos, sin = np.cos(position * inv_freq), np.sin(position * inv_freq)
        a, b = v[: head_dim // 2], v[head_dim // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin])

    def interleaved(v, position):  # ggml's default rope: pairs (2i, 2i + 1)
        cos, sin = np.cos(position * inv_freq), np.sin(position * inv_freq)
        out = v.copy()
        out[0::2], out[1::2] = v[0::2] * cos - v[1::2] * sin, v[1::2] * cos + v[0::2] * sin
        return out

    def scores(q, k, rope):  # query at position 7, key at position 2
        return [rope(q[h * head_dim:(h + 1) * head_dim], 7) @ rope(k[h * head_dim:(h + 1) * head_dim], 2)
                for h in range(heads)]

    hf = scores(wq @ x, wk @ y, split_half)
    gg = scores(permute_for_llama(wq, heads) @ x, permute_for_llama(wk, heads) @ y, interleaved)
    np.testing.assert_allclose(gg, hf, rtol=1e-10)
    assert not np.allclose(scores(wq @ x, wk @ y, interleaved), hf)


def test_qwen2_is_written_without_permutation_and_with_biases(tiny_llama, tmp_path):
    import gguf
    from transformers import AutoTokenizer, Qwen2Config

    from studio.engine.scratch import build_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, max_position_embeddings=256,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id)
    folder = tmp_path / "qwen2"
    build_model(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_gguf(folder, tmp_path / "q.gguf", "f16")
    reader = gguf.GGUFReader(tmp_path / "q.gguf")
    written = {t.name: t for t in reader.tensors}
    hf = _hf_tensors(folder)
    assert _field(reader, "general.architecture") == "qwen2"
    assert _field(reader, "qwen2.attention.head_count_kv") == 2
    q = written["blk.0.attn_q.weight"].data.astype(np.float32).reshape(64, 64)
    np.testing.assert_array_equal(q, hf["model.layers.0.self_attn.q_proj.weight"].astype(np.float16))
    assert written["blk.0.attn_k.bias"].tensor_type == gguf.GGMLQuantizationType.F32


def test_end_of_turn_token_of_the_chat_template_is_recorded(tiny_llama, tmp_path):
    import gguf

    folder = Path(shutil.copytree(tiny_llama, tmp_path / "chat"))
    (folder / "chat_template.jinja").write_text(TURN_TEMPLATE)
    report = write_gguf(folder, tmp_path / "chat.gguf", "q8_0")
    reader = gguf.GGUFReader(tmp_path / "chat.gguf")
    pad_id = _field(reader, "tokenizer.ggml.padding_token_id")
    assert _field(reader, "tokenizer.ggml.eot_token_id") == pad_id
    assert report["eos_token_ids"] == sorted({_field(reader, "tokenizer.ggml.eos_token_id"), pad_id})
    assert _field(reader, "tokenizer.chat_template") == TURN_TEMPLATE


def test_stop_leaves_no_file(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(StudioError, match="stopped"):
        write_gguf(STARTER, tmp_path / "s.gguf", "f16", stop=stop)
    assert list(tmp_path.iterdir()) == []


def test_problems_are_named():
    assert gguf_problem({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "num_attention_heads": 2,
                         "num_hidden_layers": 1, "vocab_size": 300}) is None
    message = gguf_problem({"architectures": ["GPT2LMHeadModel"]})
    assert "GPT2LMHeadModel" in message and "LlamaForCausalLM" in message and "Qwen2ForCausalLM" in message
    llama3 = {"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}
    assert "llama3" in gguf_problem(llama3)
    assert "llama-quantize" in gguf_type_problem("q4_k_m")
    assert all(gguf_type_problem(t) is None for t in GGUF_TYPES)
    with pytest.raises(BadConfig, match="q4_k_m"):
        write_gguf(STARTER, Path("unused.gguf"), "q4_k_m")


def test_unsupported_model_folder_is_refused_with_its_architecture(tmp_path):
    with pytest.raises(BadModel, match="BertModel|BertForMaskedLM"):
        write_gguf(minilm_path(), tmp_path / "m.gguf", "f16")
    assert not (tmp_path / "m.gguf").exists()


def test_estimate_is_close_to_the_written_size(tmp_path):
    from transformers import AutoModelForCausalLM

    n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(STARTER).parameters())
    for outtype in ("f16", "q8_0"):
        written = write_gguf(STARTER, tmp_path / f"e-{outtype}.gguf", outtype)["bytes"]
        assert abs(estimate_gguf_bytes(n_params, outtype) - written) / written < 0.2


# --- Checked in llama.cpp itself (llama-cpp-python) --------------------------------------------------------------

PROMPTS = ["What is the capital of Zorbia?", "Who painted the blue fox?", "Tell me about glimmerfish."]


def _llama_cpp():
    return pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: the GGUF files are checked "
                               "with gguf.GGUFReader only")


def _rendered(tokenizer, prompt: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)


def _greedy_pairs(folder: Path, gguf_path: Path, round_to_f16: bool):
    """(llama.cpp ids, transformers ids) of 32 greedy tokens for each prompt, and the prompt token ids of both."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    llama_cpp = _llama_cpp()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if round_to_f16:  # the F16 file holds these weights; norms stay F32 in both
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim > 1:
                    p.copy_(p.half().float())
    llm = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=128, verbose=False)
    stop_ids = {tokenizer.eos_token_id}
    pairs = []
    for prompt in PROMPTS:
        text = _rendered(tokenizer, prompt)
        hf_prompt = tokenizer(text, add_special_tokens=False).input_ids
        cpp_prompt = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        hf = model.generate(torch.tensor([hf_prompt]), max_new_tokens=32, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id)[0, len(hf_prompt):].tolist()
        cpp = []
        for token in llm.generate(cpp_prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            cpp.append(token)
            if token in stop_ids or len(cpp) == 32:
                break
        pairs.append((cpp_prompt, hf_prompt, cpp, hf))
    return pairs


def test_llama_cpp_generates_the_same_tokens_as_transformers_from_the_f16_file(tmp_path):
    _llama_cpp()
    write_gguf(STARTER, tmp_path / "starter-f16.gguf", "f16")
    for cpp_prompt, hf_prompt, cpp, hf in _greedy_pairs(STARTER, tmp_path / "starter-f16.gguf", True):
        assert cpp_prompt == hf_prompt
        assert cpp == hf


LLAMA_CPP_GREEDY = """
import json, sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, verbose=False)
out = []
for text in json.loads(sys.argv[2]):
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    got = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        got.append(token)
        if token == llm.token_eos() or len(got) == 32:
            break
    out.append(got)
print(json.dumps(out))
"""


def test_llama_cpp_q8_0_output_mostly_matches_transformers(tmp_path):
    """Q8_0 against the fp32 model: the share of equal greedy tokens. Run in a child process: some llama.cpp builds
    (seen with the native build on a Xeon with AMX) crash on every Q8_0 file, llama.cpp's own included; that is the
    build's fault and is reported as a skip with the reason. On a build that runs Q8_0 (the generic one, on that same
    machine) every greedy token of the starter model's three replies was equal (31 of 31: the replies end at the
    end-of-text token)."""
    import json
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _llama_cpp()
    write_gguf(STARTER, tmp_path / "starter-q8_0.gguf", "q8_0")
    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    texts = [_rendered(tokenizer, prompt) for prompt in PROMPTS]
    child = subprocess.run([sys.executable, "-c", LLAMA_CPP_GREEDY, str(tmp_path / "starter-q8_0.gguf"),
                            json.dumps(texts)], capture_output=True, text=True, timeout=300)
    if child.returncode < 0:
        pytest.skip(f"this llama.cpp build crashes on Q8_0 files (signal {-child.returncode}); see the docstring")
    assert child.returncode == 0, child.stderr[-2000:]
    cpp_all = json.loads(child.stdout.strip().splitlines()[-1])
    model = AutoModelForCausalLM.from_pretrained(STARTER, dtype=torch.float32).eval()
    equal = total = 0
    for text, cpp in zip(texts, cpp_all):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        hf = model.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
        equal += sum(a == b for a, b in zip(cpp, hf))
        total += max(len(cpp), len(hf))
    print(f"Q8_0: {equal}/{total} greedy tokens equal")
    assert equal / total >= 0.9, f"Q8_0: {equal}/{total} greedy tokens equal"


def test_llama_cpp_renders_the_embedded_chat_template_like_transformers(tmp_path):
    from transformers import AutoTokenizer

    llama_cpp = _llama_cpp()
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    write_gguf(STARTER, tmp_path / "starter-q8_0.gguf", "q8_0")
    llm = llama_cpp.Llama(model_path=str(tmp_path / "starter-q8_0.gguf"), n_ctx=128, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    eos = llm._model.token_get_text(llm.token_eos())
    formatter = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token=eos, bos_token=eos,
                                    add_generation_prompt=True)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[0]},
                {"role": "assistant", "content": "Quillton."}, {"role": "user", "content": PROMPTS[1]}]
    assert formatter(messages=messages).prompt == tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False)
