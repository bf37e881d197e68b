"""Scoring one loaded candidate on held-out preference pairs: which of the two replies it finds likelier.

Preference accuracy is the share of pairs where the candidate gives the chosen reply a higher mean log-probability
per token than the rejected one (`pair_accuracy(scores, per_token=True)`, the figure preference tuning reports).
No reference model enters it, so every candidate (the base model and each tuned one) is scored the same way, and
per token, so that a longer reply is not penalised for its length. The second figure is the mean margin per token
(chosen − rejected), which shows how far a candidate leans even where the accuracies are equal.

Each candidate renders the pair's prompt with its own chat template (the fallback template for models that ship
none), as preference tuning renders it; the evaluation's system prompt, if any, goes first. Examples in the prompt
make no sense for judging a given reply, so the recipe scores only 0-shot prompting candidates on this kind.

Imports torch (through the preference scoring) only when a candidate is scored: the worker only.
"""

from __future__ import annotations

import time

from studio.engine.evaluate.metrics import mean_or_none
from studio.engine.evaluate.scorers import Job, Outcome
from studio.engine.evaluate.scoring import Stopped


def with_system(prompt: list[dict], system: str) -> list[dict]:
    """The prompt with the evaluation's system prompt first, merged with the pair's own (one system turn: many
    chat templates take only one, at the start)."""
    if not system.strip():
        return prompt
    own = [m["content"] for m in prompt if m["role"] == "system"]
    merged = "\n\n".join(s for s in [system.strip()] + own if s.strip())
    return [{"role": "system", "content": merged}] + [m for m in prompt if m["role"] != "system"]


def preferred(margin: float) -> str:
    return "chosen" if margin > 0 else "rejected" if margin < 0 else "tie"


def prefer(job: Job) -> Outcome:
    """Each pair's chosen and rejected reply scored after its prompt, in chunks of about `batch_size` sequences
    (progress after each, a stop request honoured between them)."""
    from studio.engine.preference.scoring import encode, pair_accuracy, pair_scores

    model, tok = job.loaded.model, job.loaded.tokenizer
    examples = job.heldout.examples
    pairs = [{**e.pair, "prompt": with_system(e.pair["prompt"], job.style.system)} for e in examples]
    out = Outcome(metrics={}, answers=[None] * len(examples))
    # Each pair is two sequences (prompt + chosen, prompt + rejected).
    chunk = max(1, job.batch_size // 2)
    scored, margins = [], []
    for start in range(0, len(pairs), chunk):
        if job.stop.is_set():
            raise Stopped("Stopped.")
        part = pairs[start:start + chunk]
        began = time.perf_counter()
        results = pair_scores(model, tok, part, max_length=job.context)
        out.generation_seconds.append(time.perf_counter() - began)
        for i, pair, (chosen, rejected) in zip(range(start, start + len(part)), part, results):
            if not chosen.tokens or not rejected.tokens:
                # The prompt alone fills the context window: no reply token is left to score.
                out.fit.skipped += 1
                out.fit.skipped_where.append(examples[i].where)
                continue
            margin = chosen.mean - rejected.mean
            scored.append((chosen, rejected))
            margins.append(margin)
            out.prompt_tokens.append(encode(tok, pair["prompt"], pair["chosen"], job.context)[1])
            out.answers[i] = {"answer": preferred(margin), "correct": margin > 0, "score": margin,
                              "chosen_logprob": chosen.mean, "rejected_logprob": rejected.mean}
        job.progress.advance(len(part))
    if scored:
        out.metrics = {"preference_accuracy": pair_accuracy(scored, per_token=True),
                       "logprob_margin": mean_or_none(margins)}
    return out
