"""Probe prompts: a decoder completes a few fixed prompts greedily at each evaluation (a `sample` event), so a
person sees the model learn."""

from __future__ import annotations

from studio.engine.data.corpus import Corpus


def default_probes(corpus: Corpus, n: int = 3, words: int = 4) -> list[str]:
    """The first words of a few documents spread over the corpus."""
    probes = []
    step = max(1, len(corpus.documents) // n)
    for doc in corpus.documents[::step]:
        start = " ".join(doc.split()[:words])
        if start and start not in probes:
            probes.append(start)
        if len(probes) == n:
            break
    return probes


def complete_probes(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[dict]:
    """Greedy completions of each prompt (the model's mode is restored afterwards)."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        with torch.no_grad():
            for prompt in prompts:
                ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
                if ids.shape[1] == 0:
                    ids = torch.tensor([[tokenizer.eos_token_id]], device=device)
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                     do_sample=False, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
                text = tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
                out.append({"prompt": prompt, "completion": text})
    finally:
        model.train(was_training)
    return out
