"""The configuration of an evaluation (task "eval"). Light module (no torch); importing it registers the task.

Lists are written as text so one form field and one CLI `--set` edit them: `shots` is comma-separated numbers
("0, 1, 3, 5"), `tuned` is folders separated by ';' or new lines. A YAML list is accepted for both and joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.engine.config import (DEVICE_LABELS, DEVICES, FORMAT_LABELS, FORMATS, PRECISION_LABELS, PRECISIONS,
                                  ModelKnobs, knob, register_task)
from studio.engine.errors import BadConfig

EVAL_FORMATS = FORMATS + ("labelled", "text")
EVAL_FORMAT_LABELS = {**FORMAT_LABELS, "labelled": "Labelled text (text + label)", "text": "Raw text (perplexity)"}
KINDS = ("auto", "classification", "generation", "perplexity", "preference")
KIND_LABELS = {"auto": "Automatic (from the file)", "classification": "Classification (labelled text)",
               "generation": "Answers (instruction / output pairs)", "perplexity": "Perplexity (raw text)",
               "preference": "Preference (chosen / rejected pairs)"}
SELECTIONS = ("fixed", "random", "similar")
SELECTION_LABELS = {"fixed": "The first k of the pool", "random": "k drawn at random (seeded)",
                    "similar": "The k most similar to each example"}
MODES = ("chat", "completion")
MODE_LABELS = {"chat": "Chat (the model's chat template)", "completion": "Completion (a text template)"}
TUNED_SEPARATOR = ";"
MAX_SHOTS = 64


@dataclass
class EvalConfig(ModelKnobs):
    """Score candidates (the base model, k-shot prompts, fine-tuned models) on a held-out file."""

    task: str = knob("eval", "The kind of run.", choices=("eval",), choice_labels={"eval": "Evaluation"}, group="Run")
    name: str = knob("evaluate", "A name for the evaluation; it becomes part of its folder's name.", group="Run")
    dataset: str = knob("", "The held-out file: instruction/output pairs, labelled text (text + label), preference "
                            "pairs (chosen + rejected) or raw text, as JSON, JSONL, CSV or Parquet (raw text also "
                            ".txt). Never the training file.",
                        group="Data")
    format: str = knob("auto", "Data format; auto detects it from the columns.", choices=EVAL_FORMATS,
                       choice_labels=EVAL_FORMAT_LABELS, group="Data")
    column_mapping: dict = knob({}, "Rename columns to the names the format expects, e.g. {review: text, "
                                    "stars: label} or {question: instruction, answer: output}.", group="Data",
                                advanced=True)
    kind: str = knob("auto", "What is measured: classification (accuracy, F1, confusion matrix), answers (exact "
                             "match, token F1, chrF, the reference's loss), perplexity, or preference accuracy (the "
                             "share of pairs whose chosen reply the model finds likelier per token than the "
                             "rejected one).", choices=KINDS,
                     choice_labels=KIND_LABELS, group="Data")
    max_examples: int = knob(0, "Score at most this many held-out examples, drawn at random with the seed "
                                "(0 = all).", min=0, max=10_000_000, group="Data")
    shots: str = knob("0", "In-context candidates: the base model with k examples in its prompt, one candidate "
                           "per k, comma-separated (e.g. 0, 1, 3, 5, 8). Empty = no prompting candidates.",
                      group="Candidates", label="Shots (k)")
    shot_pool: str = knob("", "Where the k examples come from: a training file (any fine-tuning format or "
                              "labelled text) or a playground preset (.json). Needed when a k is above 0.",
                          group="Candidates")
    shot_selection: str = knob("fixed", "How the k examples are chosen from the pool.", choices=SELECTIONS,
                               choice_labels=SELECTION_LABELS, group="Candidates")
    tuned: str = knob("", "Fine-tuned candidates: adapter folders, fine-tuned or continued-pre-trained model "
                          "folders, or run folders (their output), separated by ';'.", group="Candidates")
    mode: str = knob("chat", "How prompts are written: through the model's chat template, or as plain text "
                             "through the completion template (as in the playground).", choices=MODES,
                     choice_labels=MODE_LABELS, group="Prompt")
    system: str = knob("", "System prompt for every candidate (empty = none).", group="Prompt")
    label_instruction: bool = knob(True, "For labelled text, add 'Answer with one of: …' and the label names to "
                                         "the system prompt.", group="Prompt")
    completion_template: str = knob("Input: {input}\nOutput: {output}", "Completion mode: how an example is "
                                     "written ({input} and {output}).", group="Prompt", advanced=True)
    generate: bool = knob(True, "For labelled text, also generate an answer and match it to a label (besides "
                                "scoring each label's likelihood).", group="Scoring")
    max_new_tokens: int = knob(64, "Longest generated answer in tokens (never more than the longest reference "
                                   "needs).", min=1, max=4096, group="Scoring")
    batch_size: int = knob(8, "Sequences per forward pass.", min=1, max=1024, group="Scoring")
    max_length: int = knob(0, "Longest prompt in tokens (0 = the model's context window). Longer prompts are "
                              "reported, and shots are dropped to fit before anything is cut.", min=0,
                           max=1_000_000, group="Scoring", advanced=True)
    window: int = knob(0, "Perplexity: tokens per window over long documents (0 = the context window, at most "
                          "1,024).", min=0, max=131072, group="Scoring", advanced=True)
    stride: int = knob(0, "Perplexity: tokens the window moves each time (0 = half the window).", min=0,
                       max=131072, group="Scoring", advanced=True)
    seed: int = knob(42, "Random seed for the sample of examples and for random shots.", min=0, max=2**31 - 1,
                     group="Scoring", advanced=True)
    device: str = knob("auto", "Where to run: auto picks CUDA, then Apple MPS, then the CPU.", choices=DEVICES,
                       choice_labels=DEVICE_LABELS, group="Hardware", advanced=True)
    precision: str = knob("auto", "Number format (auto: bf16 on GPUs that support it, fp32 on the CPU).",
                          choices=PRECISIONS, choice_labels=PRECISION_LABELS, group="Hardware", advanced=True)

    def __post_init__(self):
        if isinstance(self.shots, (list, tuple)):
            self.shots = ", ".join(str(k) for k in self.shots)
        elif isinstance(self.shots, int) and not isinstance(self.shots, bool):
            self.shots = str(self.shots)
        if isinstance(self.tuned, (list, tuple)):
            self.tuned = TUNED_SEPARATOR.join(str(p) for p in self.tuned)

    def shot_counts(self) -> list[int]:
        """The k of each prompting candidate, in the order given, without repeats."""
        counts: list[int] = []
        for part in re.split(r"[,\s]+", str(self.shots).strip()):
            if not part:
                continue
            if not part.isdigit() or int(part) > MAX_SHOTS:
                raise BadConfig(f"Field 'shots' has {part!r}; expected whole numbers from 0 to {MAX_SHOTS} separated "
                                f"by commas, e.g. 0, 1, 3, 5.", field="shots")
            if int(part) not in counts:
                counts.append(int(part))
        return counts

    def tuned_paths(self) -> list[str]:
        items = str(self.tuned or "").replace("\n", TUNED_SEPARATOR).split(TUNED_SEPARATOR)
        return [p.strip() for p in items if p.strip()]

    def check(self) -> None:
        counts = self.shot_counts()
        if not counts and not self.tuned_paths():
            raise BadConfig("There is nothing to evaluate: no shots and no fine-tuned candidates.",
                            "Set shots (0 scores the base model as it is) or add a fine-tuned model.", field="shots")
        # Preference pairs are judged without shots (the recipe leaves k > 0 out), so they need no pool.
        if any(counts) and not self.shot_pool.strip() and self.kind != "preference":
            raise BadConfig("Shots above 0 need examples: the shot pool is empty.",
                            "Choose a training file or a playground preset as the shot pool, or use shots 0.",
                            field="shot_pool")
        if self.mode == "completion" and ("{input}" not in self.completion_template
                                          or "{output}" not in self.completion_template):
            raise BadConfig(f"Field 'completion_template' is {self.completion_template!r}; it needs both {{input}} "
                            "and {output}.", field="completion_template")


register_task("eval", EvalConfig)
