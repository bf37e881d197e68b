"""Writing a full transformers model folder as one GGUF file (llama.cpp, Ollama, LM Studio) in F16, BF16 or Q8_0.

Tensors are converted and written one at a time, so memory holds one tensor, not the model; the file is
written beside its destination and renamed into place, so a stopped or failed export leaves no partial file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import BadConfig, BadModel, StudioError

GGUF_TYPES = ("f16", "bf16", "q8_0")
# HF architecture -> (GGUF architecture, whether q/k rows are re-ordered). HF Llama checkpoints store q and k
# with the rotary halves split ("rotate_half"); llama.cpp's llama arch applies rotary to interleaved pairs, so
# its converter permutes q/k rows. Its qwen2 arch uses the HF (NeoX) order, so no permutation there.
ARCHITECTURES = {
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
    "Qwen2ForCausalLM": ("qwen2", False),
}
ROPE_TYPES = (None, "default", "linear")
# Bytes per weight, and a margin for the vocabulary and metadata.
BYTES_PER_PARAM = {"f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32}
METADATA_BYTES = 64 * 1024


def gguf_type_problem(outtype: str) -> str | None:
    if outtype in GGUF_TYPES:
        return None
    if outtype.lower().startswith(("q4", "q5", "q6", "q3", "q2", "iq")):
        return (f"GGUF type '{outtype}' needs llama.cpp's quantizer (C++), which is not part of Adapt Studio; "
                f"export {', '.join(GGUF_TYPES)} here and run "
                f"`llama-quantize MODEL-f16.gguf OUT.gguf {outtype.upper()}`.")
    return f"GGUF type '{outtype}' is not one this writer produces; choose one of {', '.join(GGUF_TYPES)}."


def _rope(config: dict) -> dict:
    return config.get("rope_parameters") or config.get("rope_scaling") or {}


def gguf_problem(config: dict) -> str | None:
    """None when this config.json describes a model this writer can convert; else a sentence saying why not."""
    names = config.get("architectures") or [config.get("model_type") or "unknown"]
    arch = names[0]
    supported = ", ".join(ARCHITECTURES)
    if arch not in ARCHITECTURES:
        return f"GGUF export supports the Llama-layout decoders ({supported}); this model is {arch}."
    rope_type = _rope(config).get("rope_type") or _rope(config).get("type")
    if rope_type not in ROPE_TYPES:
        return (f"GGUF export of {arch} supports rotary scaling {', '.join(str(t) for t in ROPE_TYPES[1:])}; "
                f"this model uses '{rope_type}'.")
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if not heads or not hidden or not config.get("num_hidden_layers") or not config.get("vocab_size"):
        return f"config.json of this {arch} lacks hidden_size, num_attention_heads, num_hidden_layers or vocab_size."
    return None


def estimate_gguf_bytes(n_params: int, outtype: str) -> int:
    return int(n_params * BYTES_PER_PARAM[outtype]) + METADATA_BYTES


@dataclass
class PlannedTensor:
    source: str  # name in the safetensors files
    name: str  # GGUF name
    shape: tuple[int, ...]
    qtype: object  # gguf.GGMLQuantizationType

    def byte_shape(self) -> tuple[int, ...]:
        import gguf

        return gguf.quant_shape_to_byte_shape(self.shape, self.qtype)

    def nbytes(self) -> int:
        return math.prod(self.byte_shape())


def _weight_files(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> safetensors file, for one file or a sharded model."""
    from safetensors import safe_open

    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise BadModel(f"{model_dir} has no model.safetensors (or model.safetensors.index.json); GGUF export reads "
                       "safetensors weights only.", "Save the model with save_pretrained (safetensors is the "
                       "default) and export again.")
    with safe_open(single, framework="pt") as f:
        return {name: single for name in f.keys()}


def _qtype(name: str, shape: tuple[int, ...], outtype: str):
    import gguf

    q = gguf.GGMLQuantizationType
    # llama.cpp keeps norms and every 1-D tensor in F32: its kernels for them take F32 only.
    if len(shape) <= 1 or name.endswith("_norm.weight"):
        return q.F32
    chosen = {"f16": q.F16, "bf16": q.BF16, "q8_0": q.Q8_0}[outtype]
    block = gguf.GGML_QUANT_SIZES[chosen][0]
    # Q8_0 quantises rows in blocks of 32; a row that does not divide falls back to F16 as llama.cpp does.
    return chosen if shape[-1] % block == 0 else q.F16


def plan_tensors(model_dir: Path, config: dict, outtype: str) -> list[PlannedTensor]:
    import gguf
    from safetensors import safe_open

    gguf_arch = ARCHITECTURES[(config.get("architectures") or ["?"])[0]][0]
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == gguf_arch)
    name_map = gguf.get_tensor_name_map(arch, int(config["num_hidden_layers"]))
    tied = bool(config.get("tie_word_embeddings", False))
    files = _weight_files(model_dir)
    plan = []
    for file in sorted(set(files.values())):
        with safe_open(file, framework="pt") as f:
            for source in f.keys():
                if source.endswith("rotary_emb.inv_freq") or (tied and source == "lm_head.weight"):
                    continue  # recomputed by llama.cpp / the same weights as the token embedding
                name = name_map.get_name(source, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise BadModel(f"{file}: tensor '{source}' has no GGUF name for the {gguf_arch} architecture.")
                shape = tuple(f.get_slice(source).get_shape())
                plan.append(PlannedTensor(source, name, shape, _qtype(name, shape, outtype)))
    return plan


def permute_for_llama(weights, n_head: int):
    """Reorder q/k rows from HF's split rotary halves to the interleaved pairs llama.cpp's llama arch expects."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def convert_tensor(data, tensor: PlannedTensor, config: dict, permute_qk: bool):
    """float32 numpy data of one HF tensor -> the bytes (numpy array) written for it."""
    import gguf

    if permute_qk and tensor.source.endswith(("q_proj.weight", "q_proj.bias")):
        data = permute_for_llama(data, int(config["num_attention_heads"]))
    elif permute_qk and tensor.source.endswith(("k_proj.weight", "k_proj.bias")):
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        data = permute_for_llama(data, int(heads))
    return gguf.quants.quantize(data, tensor.qtype)


def _add_model_metadata(writer, config: dict, outtype: str, name: str) -> None:
    import gguf

    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    rope = _rope(config)
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or config.get("rope_theta") or 10000.0))
    if (rope.get("rope_type") or rope.get("type")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    file_types = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                  "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_file_type(file_types[outtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def supported_model_config(model_dir: Path) -> dict:
    """The model's config.json, if GGUF export supports its architecture."""
    from studio.engine.models import read_model_config

    config = read_model_config(model_dir)
    if problem := gguf_problem(config):
        raise BadModel(f"{model_dir}: {problem}", "Export the merged model (safetensors) instead of GGUF.")
    return config


def write_gguf(model_dir: Path, out_path: Path, outtype: str, *, progress=None, stop=None) -> dict:
    """Write `model_dir` as a GGUF file at `out_path`; see the module docstring."""
    import gguf
    import numpy as np
    import torch
    from safetensors import safe_open

    from studio.engine.export.gguf_vocab import add_vocab

    model_dir, out_path = Path(model_dir), Path(out_path)
    if problem := gguf_type_problem(outtype):
        raise BadConfig(problem, field="formats")
    config = supported_model_config(model_dir)
    permute_qk = ARCHITECTURES[config["architectures"][0]][1]
    plan = plan_tensors(model_dir, config, outtype)
    files = _weight_files(model_dir)

    name = out_path.stem.removesuffix(f"-{outtype}")
    tmp = out_path.with_name(out_path.name + ".partial")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(tmp, ARCHITECTURES[config["architectures"][0]][0])
    _add_model_metadata(writer, config, outtype, name)
    vocab = add_vocab(writer, model_dir, config)
    for tensor in plan:
        dtype = _dtype_of(tensor.qtype)
        shape = tensor.byte_shape() if dtype is np.uint8 else tensor.shape
        writer.add_tensor_info(tensor.name, shape, dtype, tensor.nbytes(), raw_dtype=tensor.qtype)
    handles = {}
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, tensor in enumerate(plan, start=1):
            if stop is not None and stop.is_set():
                raise StudioError(f"GGUF export to {out_path.name} was stopped; no file was written.")
            file = files[tensor.source]
            if file not in handles:
                handles[file] = safe_open(file, framework="pt")
            data = handles[file].get_tensor(tensor.source).to(torch.float32).numpy()
            writer.write_tensor_data(convert_tensor(data, tensor, config, permute_qk))
            if progress is not None:
                progress(done / len(plan))
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        handles.clear()
    return {"bytes": out_path.stat().st_size, "tensors": len(plan), "chat_template": vocab["chat_template"],
            "eos_token_ids": vocab["eos_token_ids"]}


def _dtype_of(qtype):
    import gguf
    import numpy as np

    q = gguf.GGMLQuantizationType
    # F32/F16 are written as typed arrays; BF16 and Q8_0 come from gguf.quants as raw bytes.
    return {q.F32: np.float32, q.F16: np.float16}.get(qtype, np.uint8)
