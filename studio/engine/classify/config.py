"""The configuration of a classification run (task "classify"). Light module (no torch); importing it registers
the task with `studio.engine.config`.

The data is labelled text: a text column (and optionally a second text column for pair tasks such as
entailment) and a label column. Columns left empty are detected from their names (see `data.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.config import LoraKnobs, ModelKnobs, TrainingKnobs, knob, register_task
from studio.engine.errors import BadConfig

PROBLEMS = ("auto", "single_label", "multi_label", "regression")
PROBLEM_LABELS = {"auto": "Automatic (from the label column)", "single_label": "One label per text",
                  "multi_label": "Several labels per text", "regression": "A number per text (regression)"}
BEST_METRICS = ("auto", "loss", "accuracy", "macro_f1")
BEST_METRIC_LABELS = {"auto": "Automatic (macro-F1; loss for regression)", "loss": "Validation loss",
                      "accuracy": "Accuracy", "macro_f1": "Macro-F1 (every class counts the same)"}


@dataclass
class ClassifyConfig(TrainingKnobs, ModelKnobs, LoraKnobs):
    """Fine-tune a model to put a label on a text (sentiment, topic, intent, spam) or to predict a number."""

    task: str = knob("classify", "The kind of run.", choices=("classify",),
                     choice_labels={"classify": "Classification"}, group="Run")
    name: str = knob("classifier", "A name for the run; it becomes part of the run folder's name.", group="Run")
    dataset: str = knob("", "Training data: labelled text (a text column and a label column) as CSV, TSV, JSON, "
                            "JSONL or Parquet.", group="Data")
    validation_file: str = knob("", "Optional separate validation file with the same columns (else a fraction "
                                    "of the training file is held out, stratified by label).",
                                group="Data", advanced=True)
    text_column: str = knob("", "The column holding the text (empty = detect: text, sentence, review, …).",
                            group="Data")
    text_pair_column: str = knob("", "Optional second text column for pair tasks such as entailment or "
                                     "paraphrase (empty = single texts).", group="Data", advanced=True)
    label_column: str = knob("", "The column holding the label (empty = detect: label, category, intent, …).",
                             group="Data")
    problem: str = knob("auto", "single_label: one class per text; multi_label: a list of classes per text "
                                "(a JSON list, or classes separated by the label separator); regression: a "
                                "number per text (mean-squared error). Auto decides from the label column.",
                        choices=PROBLEMS, choice_labels=PROBLEM_LABELS, group="Data")
    label_separator: str = knob(";", "Multi-label only: the character between labels in a text cell "
                                     "(e.g. 'sports;politics').", group="Data", advanced=True)
    class_weights: bool = knob(False, "Weigh each class's loss by the inverse of its frequency, so rare classes "
                                      "count as much as common ones (for imbalanced labels).", group="Data")
    threshold: float = knob(0.5, "Multi-label only: the probability above which a label is predicted. Each "
                                 "label's threshold is then tuned on the validation data and saved with the model.",
                            min=0.01, max=0.99, group="Evaluation", advanced=True)
    best_metric: str = knob("auto", "The validation figure that picks the best checkpoint and drives early "
                                    "stopping.", choices=BEST_METRICS, choice_labels=BEST_METRIC_LABELS,
                            group="Evaluation")
    group_by_length: bool = knob(True, "Put texts of similar length in the same batch, so less padding is "
                                       "computed (the batches are still drawn in random order).",
                                 group="Data", advanced=True)
    # Classification texts are short and the usual models small: these defaults differ from chat fine-tuning.
    max_length: int = knob(256, "Longest text in tokens; longer texts are truncated.", min=8, max=131072)
    batch_size: int = knob(16, "Examples per device per step.", min=1, max=4096)
    eval_every: int = knob(50, "Evaluate on the validation data every this many steps (0 = only at the end).",
                           min=0, max=10_000_000, group="Evaluation")

    validation_fraction: float = knob(0.1, "Fraction of the data held out for validation when no validation file is "
                                           "given, the same fraction of each label.", min=0.0, max=0.5, group="Data")
    early_stopping_patience: int = knob(0, "Stop when the best metric (see 'best metric') has not improved for this "
                                           "many evaluations (0 = never).", min=0, max=1000, group="Evaluation")

    def check(self) -> None:
        if self.problem == "regression" and self.best_metric in ("accuracy", "macro_f1"):
            raise BadConfig(f"Field 'best_metric' is {self.best_metric!r}, which a regression has not; use loss "
                            "or auto.", field="best_metric")
        if self.problem == "multi_label" and not self.label_separator.strip():
            raise BadConfig("Field 'label_separator' is empty; multi-label text cells need a separator such as "
                            "';'.", field="label_separator")


register_task("classify", ClassifyConfig)
