"""GGUF export: file size and seconds of each GGUF type for two models.

    python -m bench.export_speed [--types f16,bf16,q8_0]

Models: the starter model (resources/starter-model, about 1M parameters) and a ~114M-parameter Llama (hidden 768,
12 layers, 12 heads, the starter model's 1k vocabulary) built from a config with fresh weights, saved once under
bench/.cache. The time covers the whole `write_gguf` call (reading safetensors, q/k permutation, conversion or
quantisation, writing the file); the file goes to a temporary folder on the same disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import CACHE, ROOT, machine

STARTER = ROOT / "resources" / "starter-model"


def llama_100m_folder() -> Path:
    from transformers import AutoTokenizer

    from studio.engine.scratch import build_model, count_parameters, llama_config

    folder = CACHE / "export-llama-h768-l12"
    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    config = llama_config(len(tokenizer), hidden=768, layers=12, heads=12, context=2048, tokenizer=tokenizer)
    model = build_model(config, seed=0)
    print(f"built a Llama of {count_parameters(model) / 1e6:.1f}M parameters in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def parameters(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", framework="pt") as f:
        total = 0
        for name in f.keys():
            shape = f.get_slice(name).get_shape()
            count = 1
            for n in shape:
                count *= n
            total += count
    return total


def main(argv: list[str] | None = None) -> None:
    from studio.engine.export.gguf import GGUF_TYPES, estimate_gguf_bytes, write_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default=",".join(GGUF_TYPES))
    args = parser.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]

    models = (("starter", STARTER), ("llama-114M", llama_100m_folder()))
    print(f"Machine: {machine()}\n")
    print("| model | parameters | type | size (MB) | estimate (MB) | seconds |")
    print("|---|---|---|---|---|---|")
    for label, folder in models:
        n_params = parameters(folder)
        with tempfile.TemporaryDirectory() as tmp:
            for outtype in types:
                out = Path(tmp) / f"{label}-{outtype}.gguf"
                start = time.perf_counter()
                report = write_gguf(folder, out, outtype)
                seconds = time.perf_counter() - start
                print(f"| {label} | {n_params / 1e6:.1f}M | {outtype} | {report['bytes'] / 1e6:.1f} | "
                      f"{estimate_gguf_bytes(n_params, outtype) / 1e6:.1f} | {seconds:.2f} |", flush=True)
                out.unlink()


if __name__ == "__main__":
    main()
