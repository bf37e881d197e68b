"""Reference helpers for the generation tests: a visibly non-zero adapter, and plain transformers generate."""


def make_random_adapter(model_dir, out_dir, seed=1):
    """A LoRA adapter with random (non-zero) weights, so that it visibly changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False,
                                            task_type="CAUSAL_LM"))
    peft.save_pretrained(out_dir)
    return out_dir


def plain_generate(model_dir, text, max_new_tokens, adapter=None, add_special_tokens=False):
    """Reference: plain transformers (and peft) generate, greedy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    enc = tok(text, return_tensors="pt", add_special_tokens=add_special_tokens)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
