"""Architecture size presets for pre-training from scratch, with parameter counts and rough memory and
time estimates. Pure Python (no torch), so the GUI can show the numbers before anything is loaded.

Counts are exact for the architectures built by `studio.engine.pretrain` (a Llama-style decoder with
tied embeddings, or a BERT encoder with its masked-LM head); estimates are rough and say so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    family: str  # llama | bert
    hidden: int
    layers: int
    heads: int
    intermediate: int
    kv_heads: int | None = None

    @property
    def objective(self) -> str:
        return "clm" if self.family == "llama" else "mlm"


PRESETS: dict[str, Arch] = {
    # Decoders (causal LM). Totals given for an 8k vocabulary; the embedding grows with the vocabulary.
    "llama-5m": Arch("llama", hidden=256, layers=4, heads=4, intermediate=688),
    "llama-30m": Arch("llama", hidden=512, layers=8, heads=8, intermediate=1376),
    "llama-125m": Arch("llama", hidden=768, layers=12, heads=12, intermediate=2048),
    # Encoders (masked LM).
    "bert-5m": Arch("bert", hidden=256, layers=4, heads=4, intermediate=1024),
    "bert-30m": Arch("bert", hidden=512, layers=6, heads=8, intermediate=2048),
    "bert-110m": Arch("bert", hidden=768, layers=12, heads=12, intermediate=3072),
}
ARCHITECTURES = tuple(PRESETS) + ("custom-llama", "custom-bert")
DEFAULT_INTERMEDIATE = {"llama": lambda h: int(8 * h / 3 / 8 + 0.999) * 8, "bert": lambda h: 4 * h}


def resolve_arch(name: str, hidden: int = 256, layers: int = 4, heads: int = 4, intermediate: int = 0) -> Arch:
    """The preset, or for custom-llama / custom-bert the given dimensions (intermediate 0 = the usual)."""
    if name in PRESETS:
        return PRESETS[name]
    if name not in ("custom-llama", "custom-bert"):
        raise KeyError(name)
    family = name.split("-", 1)[1]
    return Arch(family, hidden=hidden, layers=layers, heads=heads,
                intermediate=intermediate or DEFAULT_INTERMEDIATE[family](hidden))


def parameter_count(arch: Arch, vocab_size: int, context: int = 512) -> int:
    h, L, i = arch.hidden, arch.layers, arch.intermediate
    if arch.family == "llama":
        kv = (arch.kv_heads or arch.heads) * (h // arch.heads)
        per_layer = h * h * 2 + 2 * h * kv + 3 * h * i + 2 * h  # q,o + k,v + gate/up/down + 2 RMS norms
        return vocab_size * h + L * per_layer + h  # tied embeddings + final norm
    # BERT: embeddings (word, position, type, LayerNorm); layers; the masked-LM head (decoder tied).
    emb = vocab_size * h + context * h + 2 * h + 2 * h
    per_layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    head = h * h + h + 2 * h + vocab_size
    return emb + L * per_layer + head


def memory_estimate(arch: Arch, vocab_size: int, context: int, batch_size: int, *, trainable_fraction: float = 1.0,
                    bytes_per_value: int = 4) -> int:
    """Rough peak training memory in bytes: weights, gradients and AdamW state, plus activations."""
    params = parameter_count(arch, vocab_size, context)
    trainable = params * trainable_fraction
    states = params * bytes_per_value + trainable * (4 + 8)  # grads (fp32) + two AdamW moments
    tokens = batch_size * context
    activations = tokens * arch.layers * arch.hidden * 34 * bytes_per_value / 2  # Korthikanti et al., no attention
    activations += batch_size * arch.heads * context * context * arch.layers * bytes_per_value  # attention scores
    logits = tokens * vocab_size * bytes_per_value * 3  # logits, softmax and its gradient
    return int(states + activations + logits + 300 * 2**20)  # + the framework itself


# Rough sustained training throughput in FLOP/s: a laptop or desktop CPU in fp32, a GPU in bf16.
THROUGHPUT = {"cpu": 3e10, "cuda": 8e13, "mps": 3e12}


def flops_per_token(arch: Arch, vocab_size: int, context: int) -> float:
    """Forward + backward FLOPs per trained token (6 N plus attention)."""
    return 6 * parameter_count(arch, vocab_size, context) + 12 * arch.layers * arch.hidden * context


def human_count(n: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def human_seconds(s: float) -> str:
    s = max(0, int(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
