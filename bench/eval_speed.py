"""Evaluator speed: examples/s of the evaluator's batched scoring against the plain loops a person writes.

    python -m bench.eval_speed [--examples 1000] [--trials 2] [--batch-size 16] [--new-tokens 4] [--chunk 250]

Model: the starter model (resources/starter-model: Llama, 1,003-token vocabulary, 128-token context, chat
template), fp32 on the CPU (or CUDA when present, see bench.common.device). Data: labelled texts made from
alpaca_en_demo.json (see `labelled_examples`), 3 label options each, prompts through the chat template with
the system prompt "Answer with one of: question, writing, other.", at k = 0 and k = 3 fixed shots.

Arms, each against its own baseline measured in the same run on the same prompts:

* loglik: `scoring.score_continuations` over every (example, option) pair, against one forward per pair
  (full sequence, log_softmax, gather). The continuation is the label followed by the template's end of turn.
  "no prefix reuse" is ours with the shared-prefix cache turned off, to show what that part brings.
* generate: `generating.generate_batch` against `model.generate` per example (greedy, --new-tokens).

Both sides of an arm must give the same answers (checked: same predicted label, same generated text). The
machines are shared and noisy: arms take turns within each trial, each arm's best trial counts, every trial
is printed. Arms take turns on chunks of --chunk examples within a trial (each chunk is one call of ours).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALPACA, ROOT, device, machine  # noqa: E402

STARTER = ROOT / "resources" / "starter-model"
SYSTEM = "Answer with one of: question, writing, other."
LABELS = ("question", "writing", "other")
WRITING_VERBS = {"write", "compose", "create", "generate", "draft", "rewrite", "summarize", "describe", "design",
                 "construct", "edit", "paraphrase", "translate"}


def label_of(text: str) -> str:
    if text.rstrip().endswith("?"):
        return "question"
    first = text.split()[0].lower().strip(".,:;") if text.split() else ""
    return "writing" if first in WRITING_VERBS else "other"


def labelled_examples(count: int) -> tuple[list[dict], list[dict]]:
    """`count` examples: the instruction of row i % rows (alpaca_en_demo, 999 rows) as the text, labelled by
    a rule (ends with '?' -> question, starts with a writing verb -> writing, else other). The 3 shots are the
    shortest instruction of each label."""
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    texts = [" ".join(r["instruction"].split()) for r in rows if r["instruction"].strip()]
    examples = [{"text": texts[i % len(texts)], "label": label_of(texts[i % len(texts)])} for i in range(count)]
    shots = [min(({"text": t, "label": label_of(t)} for t in texts if label_of(t) == label),
                 key=lambda e: len(e["text"])) for label in LABELS]
    return examples, shots


def render(tokenizer, text: str, shots: list[dict]) -> list[int]:
    messages = [{"role": "system", "content": SYSTEM}]
    for shot in shots:
        messages += [{"role": "user", "content": shot["text"]}, {"role": "assistant", "content": shot["label"]}]
    messages.append({"role": "user", "content": text})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(rendered, add_special_tokens=False, verbose=False)["input_ids"]


def fitted_prompts(tokenizer, examples, shots, window: int, room: int) -> list[list[int]]:
    """Prompts that leave `room` tokens of the window free: the text loses words from its end until the
    prompt fits (the starter model's window is 128 tokens; 3 shots and the system prompt take about 100)."""
    prompts = []
    for example in examples:
        words = example["text"].split()
        while True:
            ids = render(tokenizer, " ".join(words), shots)
            if len(ids) + room <= window or len(words) <= 1:
                break
            words = words[:-1]
        if len(ids) + room > window:
            raise ValueError(f"A {len(shots)}-shot prompt does not fit the {window}-token window.")
        prompts.append(ids)
    return prompts


# ---- the baselines: what a person writes -------------------------------------------------------------------

def plain_loglik(model, prompts, options, dev):
    import torch

    predictions = []
    with torch.no_grad():
        for prompt in prompts:
            scores = []
            for option in options:
                ids = torch.tensor([prompt + option], device=dev)
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
                positions = torch.arange(len(prompt) - 1, ids.shape[1] - 1, device=dev)
                scores.append(logprobs[positions, ids[0, len(prompt):]].sum().item())
            predictions.append(scores)
    return predictions


def plain_generate(model, tokenizer, prompts, new_tokens, dev):
    import torch

    texts = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([prompt], device=dev)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            texts.append(tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True).strip())
    return texts


# ---- ours ------------------------------------------------------------------------------------------------

def our_loglik(model, tokenizer, prompts, options, dev, batch_size, reuse_prefix=True):
    from studio.engine.evaluate import scoring

    pairs = [(prompt, option) for prompt in prompts for option in options]
    saved = scoring.MIN_SHARED_PREFIX
    scoring.MIN_SHARED_PREFIX = saved if reuse_prefix else 10**9
    try:
        scored = scoring.score_continuations(model, tokenizer, pairs, device=dev, batch_size=batch_size)
    finally:
        scoring.MIN_SHARED_PREFIX = saved
    k = len(options)
    return [[s.logprob for s in scored[i:i + k]] for i in range(0, len(scored), k)]


def our_generate(model, tokenizer, prompts, new_tokens, dev, batch_size):
    from studio.engine.evaluate.generating import generate_batch

    return [g.text for g in generate_batch(model, tokenizer, prompts, device=dev, max_new_tokens=new_tokens,
                                           batch_size=batch_size)]


def run(examples: int = 1000, trials: int = 2, batch_size: int = 16, new_tokens: int = 4,
        chunk: int = 250) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.evaluate.scoring import common_prefix_length

    load_before = os.getloadavg()[0]
    dev = device()
    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    model = AutoModelForCausalLM.from_pretrained(STARTER).to(dev).eval()
    window = model.config.max_position_embeddings
    data, shots = labelled_examples(examples)
    options = [tokenizer(label + tokenizer.eos_token, add_special_tokens=False)["input_ids"] for label in LABELS]
    longest_option = max(len(o) for o in options)
    prompts = {k: fitted_prompts(tokenizer, data, shots[:k], window, max(longest_option, new_tokens))
               for k in (0, 3)}
    arms = {}
    for k in (0, 3):
        p = prompts[k]
        arms[f"loglik k={k}: plain loop"] = lambda part, p=p: plain_loglik(model, p[part], options, dev)
        arms[f"loglik k={k}: ours"] = lambda part, p=p: our_loglik(model, tokenizer, p[part], options, dev,
                                                                    batch_size)
        arms[f"loglik k={k}: ours, no prefix reuse"] = lambda part, p=p: our_loglik(
            model, tokenizer, p[part], options, dev, batch_size, reuse_prefix=False)
        arms[f"generate k={k}: plain loop"] = lambda part, p=p: plain_generate(model, tokenizer, p[part],
                                                                                new_tokens, dev)
        arms[f"generate k={k}: ours"] = lambda part, p=p: our_generate(model, tokenizer, p[part], new_tokens, dev,
                                                                        batch_size)
    # Warm-up: first-call costs (allocator, kernel selection) count for neither side.
    our_loglik(model, tokenizer, prompts[3][:32], options, dev, batch_size)
    plain_loglik(model, prompts[3][:4], options, dev)
    # Arms take turns on chunks of examples, so a burst of load from other jobs hits every arm alike.
    times = {name: [] for name in arms}
    outputs = {name: [] for name in arms}
    names = list(arms)
    for trial in range(trials):
        spent = dict.fromkeys(names, 0.0)
        for number, start in enumerate(range(0, examples, chunk)):
            turn = (trial + number) % len(names)
            for name in names[turn:] + names[:turn]:
                began = time.perf_counter()
                result = arms[name](slice(start, start + chunk))
                spent[name] += time.perf_counter() - began
                if trial == 0:
                    outputs[name] += result
        for name in names:
            times[name].append(spent[name])
            print(f"[bench] trial {trial + 1} {name}: {spent[name]:.2f} s", file=sys.stderr, flush=True)
    checks = {}
    for k in (0, 3):
        plain = outputs[f"loglik k={k}: plain loop"]
        for variant in ("ours", "ours, no prefix reuse"):
            ours = outputs[f"loglik k={k}: {variant}"]
            worst = max(abs(a - b) for x, y in zip(plain, ours) for a, b in zip(x, y))
            same = sum(x.index(max(x)) == y.index(max(y)) for x, y in zip(plain, ours))
            checks[f"loglik k={k}: {variant}"] = f"same prediction {same}/{len(plain)}, max |dlogprob| {worst:.1e}"
        same = sum(a == b for a, b in zip(outputs[f"generate k={k}: plain loop"], outputs[f"generate k={k}: ours"]))
        checks[f"generate k={k}: ours"] = f"same text {same}/{len(prompts[k])}"
    lengths = {k: sum(len(p) for p in prompts[k]) / len(prompts[k]) for k in (0, 3)}
    shared = {k: common_prefix_length(prompts[k]) for k in (0, 3)}
    return {"examples": examples, "trials": trials, "batch_size": batch_size, "new_tokens": new_tokens, "chunk": chunk,
            "machine": machine(), "load": (load_before, os.getloadavg()[0]), "torch_threads": torch.get_num_threads(),
            "times": times, "checks": checks,
            "prompt_tokens": lengths, "shared_prefix": shared, "labels": {lab: sum(e["label"] == lab for e in data)
                                                                          for lab in LABELS}}


def render_table(r: dict) -> str:
    header = (f"Evaluator speed on {r['machine']}: {r['examples']} examples, best of {r['trials']} trial(s), "
              f"batch {r['batch_size']}, {r['new_tokens']} new tokens when generating; arms take turns on chunks "
              f"of {r['chunk']} examples (one call of ours per chunk). Load average (other jobs on the machine): "
              f"{r['load'][0]:.1f} at the start, {r['load'][1]:.1f} at the end.")
    data = (f"Labels (rule on alpaca_en_demo instructions: ends with '?' -> question, starts with a writing verb "
            f"-> writing, else other): {r['labels']}. Texts lose words from the end until the 3-shot prompt fits "
            f"the starter model's 128-token window; the same texts are used at k = 0.")
    prompts = (f"Mean prompt tokens: k=0 {r['prompt_tokens'][0]:.0f}, k=3 {r['prompt_tokens'][3]:.0f}; tokens "
               f"every prompt shares: k=0 {r['shared_prefix'][0]}, k=3 {r['shared_prefix'][3]}.")
    lines = [header, data, prompts, "", "| arm | examples/s | vs its plain loop | trials (s) | same output |",
             "|---|---|---|---|---|"]
    for name, seconds in r["times"].items():
        base = name.split(":")[0] + ": plain loop"
        speed = r["examples"] / min(seconds)
        ratio = min(r["times"][base]) / min(seconds)
        trials = ", ".join(f"{s:.2f}" for s in seconds)
        lines.append(f"| {name} | {speed:,.1f} | {ratio:.2f}x | {trials} | {r['checks'].get(name, '')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=250, help="examples per turn (each call of ours gets this many)")
    a = ap.parse_args(argv)
    started = time.perf_counter()
    result = run(a.examples, a.trials, a.batch_size, a.new_tokens, a.chunk)
    print(render_table(result))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
