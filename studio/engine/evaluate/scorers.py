"""Scoring one loaded candidate on the held-out examples, for each kind of file: classification (each label's
likelihood, and a generated answer matched to a label), answers (generation against the reference, and the
reference's own loss) and perplexity. Each returns the candidate's figures and its per-example answers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from studio.engine.evaluate import metrics
from studio.engine.evaluate.prompts import FitCounts, Prompt, PromptStyle, answer_ids, fit_prompt
from studio.engine.evaluate.generating import generate_batch
from studio.engine.evaluate.scoring import perplexity, score_continuations
from studio.engine.evaluate.shots import Shot, select_shots


@dataclass
class Job:
    """What every scorer needs: the loaded candidate, the data, the prompt style and the progress reporter."""

    loaded: object  # generation.LoadedModel
    heldout: object  # heldout.HeldOut
    style: PromptStyle
    shots: int
    pool: list[Shot]
    selection: str
    seed: int
    context: int
    batch_size: int
    max_new_tokens: int
    generate: bool
    window: int
    stride: int
    progress: object  # recipe.Progress: .advance(units)
    stop: object  # threading.Event


@dataclass
class Outcome:
    metrics: dict
    answers: list[dict | None]  # per held-out example (None: not scored)
    prompt_tokens: list[int] = field(default_factory=list)
    generation_seconds: list[float] = field(default_factory=list)  # the wall time of each request's batch
    generated_tokens: int = 0
    fit: FitCounts = field(default_factory=FitCounts)
    per_class: dict | None = None
    confusion: dict | None = None
    shots_seen: list[str] = field(default_factory=list)  # the answers of the shots shown (for unseen labels)


def _prompts(job: Job, room_of) -> tuple[list[Prompt | None], FitCounts, set[str]]:
    """Each example's prompt, fitted; `room_of(i)` is the answer room example i needs."""
    tok = job.loaded.tokenizer
    fit, seen = FitCounts(), set()
    index = None
    if job.selection == "similar" and job.shots:
        from studio.engine.evaluate.shots import SimilarityIndex

        index = SimilarityIndex(job.pool)
    prompts = []
    for i, example in enumerate(job.heldout.examples):
        shots = select_shots(job.pool, job.shots, job.selection, seed=job.seed, query=example.input,
                             exclude=example.input, index=index) if job.shots else []
        seen.update(s.output.strip() for s in shots)
        prompt = fit_prompt(tok, job.style, shots, example.prompt, job.context, room_of(i))
        if prompt is None:
            fit.skipped += 1
            fit.skipped_where.append(example.where)
        elif prompt.shots_used < len(shots):
            fit.shots_dropped += 1
        prompts.append(prompt)
    return prompts, fit, seen


def _score_grouped(job: Job, items: list[tuple], per_unit: float) -> dict:
    """score_continuations over (key, shots used, context, continuation) items, one call per number of shots:
    prompts with the same k-shot prefix are scored together, so the scorer can reuse the prefix's cache (an
    example whose shots were dropped to fit would otherwise break the shared prefix for all)."""
    groups: dict[int, list[tuple]] = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    out = {}
    for group in groups.values():
        scored = score_continuations(job.loaded.model, job.loaded.tokenizer, [(c, a) for _, _, c, a in group],
                                     device=job.loaded.choice.device, batch_size=job.batch_size,
                                     on_batch=lambda n: job.progress.advance(n * per_unit), stop_event=job.stop)
        for (key, _, _, _), s in zip(group, scored):
            out[key] = s
    return out


def _generate(job: Job, prompts: list[Prompt | None], limits: list[int], per_unit: float):
    live = [i for i, p in enumerate(prompts) if p is not None]
    made = generate_batch(job.loaded.model, job.loaded.tokenizer, [prompts[i].ids for i in live],
                          device=job.loaded.choice.device, max_new_tokens=[limits[i] for i in live],
                          batch_size=job.batch_size, on_batch=lambda n: job.progress.advance(n * per_unit),
                          stop_event=job.stop)
    return dict(zip(live, made))


def classify(job: Job) -> Outcome:
    tok, labels = job.loaded.tokenizer, job.heldout.labels
    longest = max(len(tok(label, add_special_tokens=False)["input_ids"]) for label in labels) + 8
    prompts, fit, seen = _prompts(job, lambda i: longest)
    phases = 2 if job.generate else 1
    items = []
    for i, prompt in enumerate(prompts):
        if prompt is not None:
            items += [((i, j), prompt.shots_used, prompt.ids, answer_ids(tok, job.style, prompt, label))
                      for j, label in enumerate(labels)]
    scores = _score_grouped(job, items, 1 / (len(labels) * phases))
    generated = _generate(job, prompts, [min(job.max_new_tokens, longest)] * len(prompts), 1 / phases) \
        if job.generate else {}
    out = Outcome(metrics={}, answers=[None] * len(prompts), fit=fit, shots_seen=sorted(seen))
    true, predicted, gen_true, gen_predicted = [], [], [], []
    for i, prompt in enumerate(prompts):
        if prompt is None:
            continue
        logprobs = [scores[(i, j)].logprob for j in range(len(labels))]
        best = labels[max(range(len(labels)), key=lambda j: logprobs[j])]
        reference = job.heldout.examples[i].reference
        true.append(reference)
        predicted.append(best)
        out.prompt_tokens.append(len(prompt.ids))
        answer = {"answer": best, "correct": best == reference, "score": max(logprobs)}
        if i in generated:
            g = generated[i]
            label = metrics.match_label(g.text, labels)
            gen_true.append(reference)
            gen_predicted.append(label)
            answer["generated"] = g.text
            out.generation_seconds.append(g.seconds)
            out.generated_tokens += g.tokens
        out.answers[i] = answer
    if true:
        report = metrics.classification_report(true, predicted, labels)
        out.metrics = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        out.per_class, out.confusion = report["per_class"], report["confusion"]
    if gen_true:
        gen = metrics.classification_report(gen_true, gen_predicted, labels)
        out.metrics.update(gen_accuracy=gen["accuracy"], gen_macro_f1=gen["macro_f1"], unparseable=gen["unparseable"])
    return out


def answer(job: Job) -> Outcome:
    tok = job.loaded.tokenizer
    examples = job.heldout.examples
    ref_tokens = [len(tok(e.reference, add_special_tokens=False)["input_ids"]) for e in examples]
    # Generation stops at the end token; the cap only bounds a model that rambles on.
    limits = [max(1, min(job.max_new_tokens, 2 * n + 8)) for n in ref_tokens]
    prompts, fit, _ = _prompts(job, lambda i: max(limits[i], ref_tokens[i] + 4))
    items = [(i, p.shots_used, p.ids, answer_ids(tok, job.style, p, examples[i].reference))
             for i, p in enumerate(prompts) if p is not None]
    scores = _score_grouped(job, items, 0.5)
    generated = _generate(job, prompts, limits, 0.5)
    out = Outcome(metrics={}, answers=[None] * len(prompts), fit=fit)
    ems, f1s, preds, refs, nll, counted = [], [], [], [], 0.0, 0
    for i, prompt in enumerate(prompts):
        if prompt is None:
            continue
        g, ref = generated[i], examples[i].reference
        em, f1 = metrics.exact_match(g.text, ref), metrics.token_f1(g.text, ref)
        ems.append(em)
        f1s.append(f1)
        preds.append(g.text)
        refs.append(ref)
        nll -= scores[i].logprob
        counted += scores[i].tokens
        out.prompt_tokens.append(len(prompt.ids))
        out.generation_seconds.append(g.seconds)
        out.generated_tokens += g.tokens
        out.answers[i] = {"answer": g.text, "correct": bool(em), "score": f1}
    if preds:
        loss = nll / max(counted, 1)
        out.metrics = {"exact_match": metrics.mean_or_none(ems), "token_f1": metrics.mean_or_none(f1s),
                       "chrf": metrics.corpus_chrf(preds, refs), "reference_loss": loss,
                       "reference_perplexity": math.exp(min(loss, 700.0))}
    return out


def document_perplexity(job: Job) -> Outcome:
    docs = [e.reference for e in job.heldout.examples]
    window = job.window or min(job.context, 1024)
    window = min(window, job.context)
    stride = min(job.stride or max(1, window // 2), window)
    started = time.perf_counter()
    result = perplexity(job.loaded.model, job.loaded.tokenizer, docs, device=job.loaded.choice.device, window=window,
                        stride=stride, batch_size=job.batch_size, on_batch=None, stop_event=job.stop)
    job.progress.advance(len(docs))
    out = Outcome(metrics={}, answers=[None] * len(docs))
    for i, (nll, tokens) in enumerate(result.per_document):
        if tokens:
            out.answers[i] = {"answer": "", "correct": None, "score": math.exp(min(nll / tokens, 700.0))}
    if result.tokens:
        out.metrics = {"perplexity": result.perplexity, "loss": result.nll / result.tokens, "tokens": result.tokens}
    out.generation_seconds = [time.perf_counter() - started]
    return out


def head_classify(classifier, heldout, batch_size: int, progress, stop) -> Outcome:
    """A classifier with its own head on labelled text: each example's most probable class, matched to the
    held-out labels by name (case and spaces aside); a class the held-out file lacks counts as no answer."""
    by_name = {label.strip().lower(): label for label in heldout.labels}
    examples = heldout.examples
    out = Outcome(metrics={}, answers=[None] * len(examples))
    true, predicted = [], []
    for start in range(0, len(examples), batch_size):
        if stop.is_set():
            break  # the figures of what was scored are still written; the recipe reports the stop
        chunk = examples[start:start + batch_size]
        began = time.perf_counter()
        scores = classifier.predict([e.input for e in chunk], batch_size=batch_size)
        out.generation_seconds.append(time.perf_counter() - began)
        for i, (example, probs) in enumerate(zip(chunk, scores), start=start):
            best = classifier.decide(probs)[0]
            answer = by_name.get(best.strip().lower())
            true.append(example.reference)
            predicted.append(answer)
            out.answers[i] = {"answer": best, "correct": answer == example.reference, "score": probs[best]}
        progress.advance(len(chunk))
    if true:
        report = metrics.classification_report(true, predicted, heldout.labels)
        out.metrics = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        out.per_class, out.confusion = report["per_class"], report["confusion"]
    return out


SCORERS = {"classification": classify, "generation": answer, "perplexity": document_perplexity}
