"""The plain-words verdict of an evaluation, written only from the figures in its results dict.

It names the best candidate, weighs the best fine-tuned model against the best prompt (score, prompt length,
training), says when a difference is within chance, where a k-shot sweep stops helping, and when generated
answers rarely named a label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_PRIMARY = {"classification": "accuracy", "generation": "token_f1", "perplexity": "perplexity",
                   "preference": "preference_accuracy"}
# Fractions from 0 to 1 (compared in points) and perplexity (compared as a ratio); nothing else is a primary.
METRIC_WORDS = {"accuracy": "accuracy", "macro_f1": "macro F1", "token_f1": "token F1",
                "exact_match": "exact match", "perplexity": "perplexity",
                "preference_accuracy": "preference accuracy"}
LOWER_IS_BETTER = {"perplexity"}
# Two standard errors: a difference smaller than this is what resampling the examples could produce.
NOISE_STANDARD_ERRORS = 2.0
# Perplexity has no simple standard error from the figures alone; closer than 5% counts as the same.
PERPLEXITY_NOISE = 0.05
# A prompt this many times longer (or more) makes the shorter one cheaper per request.
CHEAPER_RATIO = 1.5
UNPARSEABLE_LIMIT = 0.2


@dataclass
class _Candidate:
    label: str
    kind: str
    shots: int | None
    value: float | None
    scored: int | None
    prompt_tokens: float | None
    unparseable: float | None

    @property
    def name(self) -> str:
        """How the sentences refer to it: prompts by their k, fine-tuned models by their label."""
        if self.kind == "prompt" and self.shots is not None:
            return f"the {self.shots}-shot prompt"
        return self.label

    @property
    def opening(self) -> str:
        """The name at the start of a sentence (a label keeps its own case)."""
        return _capital(self.name) if self.kind == "prompt" and self.shots is not None else f"Prompt {self.label}"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _count(value) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number > 0 else None


def _percent(fraction: float) -> str:
    """A fraction as a percentage: whole when the tenths are 0, else one decimal."""
    text = f"{fraction * 100:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def _points(difference: float) -> str:
    text = _percent(abs(difference))[:-1]
    return f"{text} point" if text == "1" else f"{text} points"


def _times(ratio: float) -> str:
    return f"{round(ratio)}×" if ratio >= 10 or abs(ratio - round(ratio)) < 0.05 else f"{ratio:.1f}×"


def _cost_clause(ratio: float | None) -> str:
    """The prompt length of the sentence's subject against the other's; `ratio` is subject / other tokens."""
    if ratio is None:
        return ""
    if ratio >= CHEAPER_RATIO:
        return f", though it uses {_times(ratio)} more prompt tokens per request"
    if ratio <= 1 / CHEAPER_RATIO:
        return f" and uses {_times(1 / ratio)} fewer prompt tokens per request"
    return " at about the same cost per request"


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


class _Verdict:
    """The figures of one evaluation and the sentences drawn from them."""

    def __init__(self, results: dict):
        if not isinstance(results, dict):
            raise TypeError(f"recommend needs an evaluation's results dict, not {type(results).__name__}.")
        kind = results.get("kind")
        primary = results.get("primary") or {}
        self.metric = primary.get("metric") or DEFAULT_PRIMARY.get(kind)
        if not self.metric:
            raise ValueError(f"The results name no primary metric and their kind {kind!r} is not one of "
                             f"{', '.join(DEFAULT_PRIMARY)}.")
        if self.metric not in METRIC_WORDS:
            raise ValueError(f"The primary metric {self.metric!r} is not one of {', '.join(METRIC_WORDS)}.")
        self.higher_is_better = bool(primary.get("higher_is_better", self.metric not in LOWER_IS_BETTER))
        self.is_fraction = self.metric not in LOWER_IS_BETTER
        self.words = METRIC_WORDS[self.metric]
        examples = _count(results.get("examples"))
        self.candidates = []
        for i, raw in enumerate(results.get("candidates") or []):
            if not isinstance(raw, dict):
                raise TypeError(f"Candidate {i + 1} in the results is {type(raw).__name__}, not a dict.")
            metrics, cost = raw.get("metrics") or {}, raw.get("cost") or {}
            shots = raw.get("shots")
            self.candidates.append(_Candidate(
                label=str(raw.get("label") or raw.get("id") or f"candidate {i + 1}"), kind=raw.get("kind", ""),
                shots=shots if isinstance(shots, int) and not isinstance(shots, bool) else None,
                value=_number(metrics.get(self.metric)), scored=_count(raw.get("scored")) or examples,
                prompt_tokens=_number(cost.get("prompt_tokens")), unparseable=_number(metrics.get("unparseable"))))
        self.scored = [c for c in self.candidates if c.value is not None]

    # --- comparing two figures ---

    def better(self, a: _Candidate, b: _Candidate) -> bool:
        return a.value > b.value if self.higher_is_better else a.value < b.value

    def best(self, candidates: list[_Candidate]) -> _Candidate | None:
        chosen = None
        for candidate in candidates:  # the first of equals wins, so the order of the results decides ties
            if chosen is None or self.better(candidate, chosen):
                chosen = candidate
        return chosen

    def within_noise(self, a: _Candidate, b: _Candidate) -> bool:
        if not self.is_fraction:
            low, high = sorted((a.value, b.value))
            return low > 0 and high / low - 1 < PERPLEXITY_NOISE
        if a.scored is None or b.scored is None:
            return False  # without the example counts there is no way to size the noise
        variance = sum(min(max(c.value, 0.0), 1.0) * (1 - min(max(c.value, 0.0), 1.0)) / c.scored for c in (a, b))
        return abs(a.value - b.value) < NOISE_STANDARD_ERRORS * math.sqrt(variance)

    def figure(self, candidate: _Candidate) -> str:
        if self.is_fraction:
            return f"{_percent(candidate.value)} {self.words}"
        return f"{self.words} {candidate.value:.2f}"

    def difference(self, a: _Candidate, b: _Candidate) -> str:
        """How far apart two figures are: points for fractions, a ratio for perplexity."""
        if self.is_fraction:
            return _points(a.value - b.value)
        low, high = sorted((a.value, b.value))
        return f"{_times(high / low)}" if low > 0 else "far"

    def examples(self, *candidates: _Candidate) -> str:
        counts = sorted({c.scored for c in candidates if c.scored}, reverse=True)
        if not counts:
            return "these examples"
        return f"{counts[0]} examples" if len(counts) == 1 else f"{' and '.join(map(str, counts))} examples"

    @staticmethod
    def token_ratio(longer: _Candidate, shorter: _Candidate) -> float | None:
        """How many times more prompt tokens `longer` uses per request than `shorter` (None when unknown)."""
        if not longer.prompt_tokens or not shorter.prompt_tokens:
            return None
        return longer.prompt_tokens / shorter.prompt_tokens

    # --- sentences ---

    def headline(self, best: _Candidate) -> str:
        where = f" on {self.examples(best)}"
        if self.is_fraction:
            return f"Highest {self.words}: {best.label}, {_percent(best.value)}{where}."
        return f"Lowest {self.words}: {best.label}, {best.value:.2f}{where}."

    def tuned_against_prompt(self, tuned: _Candidate, prompt: _Candidate) -> str:
        ratio = self.token_ratio(prompt, tuned)
        if self.within_noise(tuned, prompt):
            if self.is_fraction:
                gap = (f"The difference ({_points(tuned.value - prompt.value)}) is within what chance explains "
                       f"on {self.examples(tuned, prompt)}")
            else:
                low, high = sorted((tuned.value, prompt.value))
                gap = (f"The perplexities ({tuned.value:.2f} fine-tuned, {prompt.value:.2f} prompting) are "
                       f"{_percent(high / low - 1)} apart, within the {_percent(PERPLEXITY_NOISE)} that counts as "
                       f"the same")
            if ratio is not None and ratio >= CHEAPER_RATIO:
                cheaper = f"the fine-tuned one needs a {_times(ratio)} shorter prompt"
            else:
                cheaper = "prompting needs no training"
            return f"{gap}; prefer the cheaper one: {cheaper}."

        if self.better(tuned, prompt):
            lead = (f"Fine-tuned {tuned.name} beats the best prompt ({prompt.name}) by "
                    f"{self.difference(tuned, prompt)}" if self.is_fraction else
                    f"Fine-tuned {tuned.name} has {self.difference(tuned, prompt)} lower perplexity than the best "
                    f"prompt ({prompt.name}, {prompt.value:.2f})")
            lead += _cost_clause(self.token_ratio(tuned, prompt))
            if self.is_fraction and tuned.value > 0:
                share = f"{round(100 * prompt.value / tuned.value)}%"
                return f"{lead}; {prompt.name} reaches {share} of its {self.words} with no training."
            return lead + "."
        lead = (f"{prompt.opening} beats the best fine-tuned model ({tuned.name}) by "
                f"{self.difference(prompt, tuned)} with no training" if self.is_fraction else
                f"{prompt.opening} has {self.difference(prompt, tuned)} lower perplexity than the best "
                f"fine-tuned model ({tuned.name}, {tuned.value:.2f}) with no training")
        return lead + _cost_clause(ratio) + "."

    def short_figure(self, candidate: _Candidate) -> str:
        return _percent(candidate.value) if self.is_fraction else f"{candidate.value:.2f}"

    def against_the_others(self, best: _Candidate) -> str:
        """Best against the rest when they are all prompts (or all fine-tuned): a lead, or a tie within chance."""
        others = [c for c in self.scored if c is not best]
        close = [c for c in others if self.within_noise(best, c)]
        if not close:
            runner_up = self.best(others)
            if self.is_fraction:
                return f"It leads the next best, {runner_up.name}, by {self.difference(best, runner_up)}."
            return (f"Its perplexity is {self.difference(best, runner_up)} lower than the next best, "
                    f"{runner_up.name} ({runner_up.value:.2f}).")
        if len(close) == 1:
            subject = f"The next best, {close[0].name} ({self.short_figure(close[0])}), is"
        else:
            weakest = close[0]
            for candidate in close:
                weakest = candidate if self.better(weakest, candidate) else weakest
            subject = f"{len(close)} others, down to {weakest.name} ({self.short_figure(weakest)}), are"
        within = (f"within what chance explains on {self.examples(best, *close)}" if self.is_fraction else
                  f"within {_percent(PERPLEXITY_NOISE)} of it")
        # Among results this close, the shortest prompt is the better buy.
        cheapest = min((c for c in close if c.prompt_tokens), key=lambda c: c.prompt_tokens, default=None)
        ratio = self.token_ratio(best, cheapest) if cheapest is not None else None
        if ratio is None or ratio < CHEAPER_RATIO:
            return f"{subject} {within}."
        which = "it" if len(close) == 1 else cheapest.name
        return f"{subject} {within}; prefer {which}, as its prompt is {_times(ratio)} shorter."

    def sweep(self) -> str | None:
        """Where adding examples to the prompt stops paying, when at least three k were tried."""
        by_shots: dict[int, _Candidate] = {}
        for candidate in self.scored:
            if candidate.kind == "prompt" and candidate.shots is not None:
                held = by_shots.get(candidate.shots)
                by_shots[candidate.shots] = candidate if held is None or self.better(candidate, held) else held
        if len(by_shots) < 3:
            return None
        steps = [by_shots[k] for k in sorted(by_shots)]

        def clearly_better(a: _Candidate, b: _Candidate) -> bool:
            return self.better(a, b) and not self.within_noise(a, b)

        # The first k that no larger k clearly beats.
        plateau = next(i for i, step in enumerate(steps)
                       if not any(clearly_better(later, step) for later in steps[i + 1:]))
        first, last = steps[0].shots, steps[-1].shots
        if plateau == len(steps) - 1:
            return f"More examples keep helping up to k = {last}, the largest tried."
        sentence = (f"Adding examples beyond k = {first} does not help" if plateau == 0 else
                    f"More examples stop helping after k = {steps[plateau].shots}")
        if clearly_better(steps[plateau], steps[-1]):
            sentence += f" (k = {last} does worse)"
        return sentence + "."

    def unparseable(self) -> str | None:
        rare = [c for c in self.candidates if c.unparseable is not None and c.unparseable > UNPARSEABLE_LIMIT]
        if not rare:
            return None
        if len(rare) > 2:
            worst = _percent(max(c.unparseable for c in rare))
            which = f"{len(rare)} of the {len(self.candidates)} candidates (up to {worst} of answers unparseable)"
        else:
            which = " and ".join(f"{c.name} ({_percent(c.unparseable)} unparseable)" for c in rare)
        return (f"Generation rarely produced a label for {which}, so the likelihood score ({self.words}) is the "
                f"fairer one.")


def recommend(results: dict) -> str:
    """A few sentences on which candidate to use, following from the figures in `results`."""
    verdict = _Verdict(results)
    if not verdict.scored:
        return f"Nothing could be scored: no candidate has a figure for {verdict.words}."
    best = verdict.best(verdict.scored)
    if len(verdict.scored) == 1:
        unscored = len(verdict.candidates) - 1
        others = "other candidate has" if unscored == 1 else f"other {unscored} have"
        sentences = [f"Only one candidate: {best.label}, with {verdict.figure(best)} on {verdict.examples(best)}; "
                     f"there is nothing to compare it with." if not unscored else
                     f"Only {best.label} could be scored ({verdict.figure(best)} on {verdict.examples(best)}); the "
                     f"{others} no figure for {verdict.words}, so there is nothing to compare it with."]
    else:
        sentences = [verdict.headline(best)]
        tuned = verdict.best([c for c in verdict.scored if c.kind == "tuned"])
        prompt = verdict.best([c for c in verdict.scored if c.kind == "prompt"])
        if tuned is not None and prompt is not None:
            sentences.append(verdict.tuned_against_prompt(tuned, prompt))
        else:
            sentences.append(verdict.against_the_others(best))
        sentences.append(verdict.sweep())
    sentences.append(verdict.unparseable())
    return " ".join(s for s in sentences if s)
