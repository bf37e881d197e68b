"""The configuration of a preference-tuning run (task "preference"). Light module (no torch); importing it
registers the task with `studio.engine.config`.

Three objectives, all through TRL: DPO on pairs (a prompt, a chosen and a rejected reply), ORPO on the same
pairs without a reference model, KTO on single replies marked desirable or undesirable (pairs count as one
of each). See `data.py` for the file formats.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.config import LoraKnobs, ModelKnobs, TrainingKnobs, knob, register_task
from studio.engine.errors import BadConfig

OBJECTIVES = ("dpo", "orpo", "kto")
OBJECTIVE_LABELS = {"dpo": "DPO: prefer the chosen reply of each pair",
                    "orpo": "ORPO: pairs, no reference model (less memory)",
                    "kto": "KTO: single replies marked good or bad"}
PAIRED = ("dpo", "orpo")


@dataclass
class PreferenceConfig(TrainingKnobs, ModelKnobs, LoraKnobs):
    """Tune a chat model toward the replies people preferred (learning from human feedback)."""

    task: str = knob("preference", "The kind of run.", choices=("preference",),
                     choice_labels={"preference": "Preference tuning"}, group="Run")
    name: str = knob("preference", "A name for the run; it becomes part of the run folder's name.", group="Run")
    dataset: str = knob("", "Preference data: pairs (prompt, chosen and rejected reply) or single replies marked "
                            "good/bad, as JSON, JSONL, CSV or Parquet; the playground's feedback file is one.",
                        group="Data")
    validation_file: str = knob("", "Optional separate validation file (else a fraction is held out).",
                                group="Data", advanced=True)
    column_mapping: dict = knob({}, "Rename columns to the names the reader expects, e.g. "
                                    "{question: prompt, good: chosen, bad: rejected}.", group="Data", advanced=True)
    objective: str = knob("dpo", "dpo learns from pairs against the starting model; orpo learns from pairs with no "
                                 "reference model (less memory, also learns the chosen replies); kto learns from "
                                 "single replies marked good or bad.", choices=OBJECTIVES,
                          choice_labels=OBJECTIVE_LABELS, group="Method")
    adapter: str = knob("", "Optional: a LoRA adapter of an earlier run (its adapter/ folder) to start from, e.g. the "
                            "supervised fine-tuning run whose replies were judged. It is trained further and, as it "
                            "was at the start, is the reference; empty = start from the model itself.", group="Method",
                        label="Start from adapter")
    beta: float = knob(0.1, "How far the model may move: DPO and KTO's beta (larger keeps it closer to the starting "
                            "model); ORPO's weight of the preference term against learning the chosen reply.",
                       min=0.001, max=10.0, group="Method")
    # Preference tuning moves a model that already answers well: smaller steps than supervised fine-tuning.
    learning_rate: float = knob(5e-5, "Peak learning rate of AdamW (preference tuning uses smaller steps than "
                                      "supervised fine-tuning; about 5e-6 for full fine-tuning).", min=1e-8, max=1.0)
    epochs: float = knob(2.0, "Passes over the training data (ignored when max steps is set).", min=0.01, max=1000.0)
    validation_fraction: float = knob(0.1, "Fraction of the data held out for validation when no validation file "
                                           "is given.", min=0.0, max=0.5, group="Data")

    def check(self) -> None:
        if self.adapter.strip() and self.method == "full":
            raise BadConfig("Field 'adapter' is set with method 'full'; an adapter is trained further with LoRA.",
                            "Choose method lora (or qlora), or clear 'adapter' and give a merged model folder.",
                            field="adapter")
        if self.objective == "kto" and self.batch_size < 2:
            raise BadConfig("Field 'batch_size' is 1; KTO compares each reply with others in its batch and needs at "
                            "least 2.", "Set the batch size to 2 or more (or choose DPO).", field="batch_size")


register_task("preference", PreferenceConfig)
