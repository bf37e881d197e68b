"""Which pre-training settings apply to the choices made so far (the form hides the others). No Qt."""

from __future__ import annotations

SCRATCH_ONLY = ("architecture", "hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size")
CUSTOM_ONLY = ("hidden_size", "num_layers", "num_heads", "intermediate_size")
CONTINUE_ONLY = ("model", "allow_download", "trust_remote_code", "allow_pickle", "method")
LORA_ONLY = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")
MLM_ONLY = ("mlm_probability", "whole_word_masking")
CLM_ONLY = ("probe_prompts", "probe_tokens")


def visible_fields(mode: str, objective: str, architecture: str, method: str) -> dict[str, bool]:
    """Each mode-, objective- or method-specific field and whether it applies (later rules win)."""
    return {
        **{n: mode == "scratch" for n in SCRATCH_ONLY},
        **{n: mode == "continue" for n in CONTINUE_ONLY},
        **{n: mode == "scratch" and str(architecture).startswith("custom") for n in CUSTOM_ONLY},
        **{n: mode == "continue" and method == "lora" for n in LORA_ONLY},
        **{n: objective == "mlm" for n in MLM_ONLY},
        **{n: objective == "clm" for n in CLM_ONLY},
    }
