"""The configuration of a pre-training run (task "pretrain"): from scratch or continued, causal or masked LM.

Light module (no torch). Importing it registers the task with `studio.engine.config`.

The corpus is given as text: one path, or several separated by ';' (a YAML list of paths is accepted
too and joined). Each path is a file (.txt/.md/.text: split into documents as `document_split` says;
JSON, JSONL, CSV, TSV, Parquet: each row's `text_column` is one document) or a folder, searched
recursively for such files. `max_length` from the shared training knobs is not used: the context length
is `block_size`.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.config import SAVE_EVERY_HELP, LoraKnobs, ModelKnobs, TrainingKnobs, knob, register_task
from studio.engine.errors import BadConfig
from studio.engine.presets import ARCHITECTURES, PRESETS
from studio.engine.scratch import MAX_VOCAB, MIN_VOCAB

# The words a form shows for each choice (see knob); files and the CLI keep the keys.
MODE_LABELS = {"scratch": "From scratch", "continue": "Continue pre-training a model"}
OBJECTIVE_LABELS = {"clm": "Causal LM (GPT-style, predicts the next token)",
                    "mlm": "Masked LM (BERT-style, fills in blanks)"}
PRETRAIN_METHOD_LABELS = {"full": "Full (every weight)", "lora": "LoRA adapters, merged when saved"}
FAMILY_WORDS = {"llama": "Llama-style decoder", "bert": "BERT-style encoder"}
ARCHITECTURE_LABELS = {name: f"{FAMILY_WORDS[a.family]}, {a.layers} layers × {a.hidden} wide ({name})"
                       for name, a in PRESETS.items()}
ARCHITECTURE_LABELS.update({f"custom-{family}": f"{words}, custom size" for family, words in FAMILY_WORDS.items()})
DOCUMENT_SPLIT_LABELS = {"blank_line": "Blank line between documents", "file": "One document per file",
                         "line": "One document per line"}
PROBE_SEPARATOR = " | "  # spaced, so chat markers such as <|user|> survive
CORPUS_SEPARATOR = ";"


@dataclass
class PretrainConfig(TrainingKnobs, ModelKnobs, LoraKnobs):
    """Pre-training of a language model on raw text, from scratch or continued from a model."""

    task: str = knob("pretrain", "The kind of run.", choices=("pretrain",), choice_labels={"pretrain": "Pre-training"},
                     group="Run")
    name: str = knob("pretrain", "A name for the run; it becomes part of the run folder's name.", group="Run")
    mode: str = knob("scratch", "scratch builds a new model and tokenizer from your text; continue goes on "
                                "training an existing model (the Model field) on your text.",
                     choices=("scratch", "continue"), choice_labels=MODE_LABELS, group="Model")
    objective: str = knob("clm", "clm: causal language modelling (predict the next token; decoders such as "
                                 "Llama). mlm: masked language modelling (fill in hidden tokens; encoders such "
                                 "as BERT).", choices=("clm", "mlm"), choice_labels=OBJECTIVE_LABELS, group="Model")
    architecture: str = knob("llama-5m", "From scratch: the architecture and size. llama-* are decoders (clm), "
                                         "bert-* encoders (mlm); custom-* use the dimensions below.",
                             choices=ARCHITECTURES, choice_labels=ARCHITECTURE_LABELS, group="Model")
    hidden_size: int = knob(256, "Custom architecture: width of each layer.", min=16, max=8192, group="Model",
                            advanced=True)
    num_layers: int = knob(4, "Custom architecture: number of transformer layers.", min=1, max=128,
                           group="Model", advanced=True)
    num_heads: int = knob(4, "Custom architecture: attention heads (must divide the hidden size).", min=1,
                          max=128, group="Model", advanced=True)
    intermediate_size: int = knob(0, "Custom architecture: width of the feed-forward layer (0 = the usual "
                                      "for the family).", min=0, max=65536, group="Model", advanced=True)
    vocab_size: int = knob(8000, "From scratch: size of the byte-level BPE vocabulary trained on your text.",
                           min=MIN_VOCAB, max=MAX_VOCAB, group="Model")
    corpus: str = knob("", "Training text: files or folders separated by ';'. Plain text (.txt, .md: split "
                           "into documents as Document split says) or JSON/JSONL/CSV/Parquet (one document per "
                           "row).", group="Data")
    text_column: str = knob("text", "For table files: the column that holds the text.", group="Data")
    document_split: str = knob("blank_line", "For plain text files: where one document ends and the next "
                                             "begins. Each document ends with an end-of-text token, so the "
                                             "model learns where texts stop. Blank line: paragraphs or articles "
                                             "separated by an empty line. One per file: the whole file is one "
                                             "text (a book). One per line: each line is a text of its own.",
                               choices=("blank_line", "file", "line"), choice_labels=DOCUMENT_SPLIT_LABELS,
                               group="Data")
    block_size: int = knob(256, "Context length: the text is joined with an end-of-text token and cut into "
                                "blocks of this many tokens (no padding).", min=8, max=131072, group="Data")
    dedupe: bool = knob(True, "Drop documents that are exact duplicates of an earlier one.", group="Data")
    mlm_probability: float = knob(0.15, "Masked LM: fraction of tokens hidden for the model to predict.",
                                  min=0.01, max=0.9, group="Masked LM")
    whole_word_masking: bool = knob(False, "Masked LM: hide all the pieces of a word together.",
                                    group="Masked LM")
    method: str = knob("full", "full trains every weight; lora (continued pre-training only) trains small "
                               "adapters that are merged into the saved model.", choices=("full", "lora"),
                       choice_labels=PRETRAIN_METHOD_LABELS, group="Method")
    probe_prompts: str = knob("", "Decoders: prompts completed at each evaluation so you see the model learn, "
                                  "separated by ' | ' (empty = the start of a few documents of your text).",
                              group="Evaluation")
    probe_tokens: int = knob(24, "Decoders: how many tokens each probe completion has.", min=1, max=512,
                             group="Evaluation", advanced=True)
    # Defaults that suit pre-training better than fine-tuning.
    learning_rate: float = knob(1e-3, "Peak learning rate of AdamW (from scratch ~1e-3; continued ~5e-5 full, "
                                      "~2e-4 LoRA).", min=1e-8, max=1.0)
    epochs: float = knob(1.0, "Passes over the training data (ignored when max steps is set).", min=0.01,
                         max=1000.0)
    batch_size: int = knob(8, "Blocks per device per step.", min=1, max=4096)
    warmup_ratio: float = knob(0.05, "Fraction of the steps spent ramping the learning rate up from zero.",
                               min=0.0, max=0.5, advanced=True)
    weight_decay: float = knob(0.01, "AdamW weight decay.", min=0.0, max=1.0, advanced=True)
    eval_every: int = knob(100, "Evaluate on the held-out blocks every this many steps (0 = only at the end).",
                           min=0, max=10_000_000, group="Evaluation")
    save_every: int = knob(500, SAVE_EVERY_HELP, min=0, max=10_000_000, group="Evaluation")

    def __post_init__(self):
        # A YAML list of paths / prompts is accepted and kept as the documented text form.
        if isinstance(self.corpus, (list, tuple)):
            self.corpus = CORPUS_SEPARATOR.join(str(p) for p in self.corpus)
        if isinstance(self.probe_prompts, (list, tuple)):
            self.probe_prompts = PROBE_SEPARATOR.join(str(p) for p in self.probe_prompts)

    def corpus_paths(self) -> list[str]:
        return split_corpus(self.corpus)

    def probes(self) -> list[str]:
        return [p.strip() for p in self.probe_prompts.split(PROBE_SEPARATOR) if p.strip()]

    def check(self) -> None:
        if not self.corpus_paths():
            raise BadConfig("Field 'corpus' is empty; choose one or more text files or a folder.", field="corpus")
        if self.mode == "continue":
            if not self.model.strip():
                raise BadConfig("Field 'model' is empty; continued pre-training needs a model folder to start "
                                "from.", field="model")
            return
        if self.method != "full":
            raise BadConfig(f"Field 'method' has the value {self.method!r}; a model built from scratch trains all "
                            f"its weights (method full). LoRA is for continued pre-training.", field="method")
        family = PRESETS[self.architecture].family if self.architecture in PRESETS else \
            self.architecture.split("-", 1)[1]
        wanted = "llama" if self.objective == "clm" else "bert"
        if family != wanted:
            raise BadConfig(f"Field 'architecture' has the value {self.architecture!r}, a "
                            f"{'decoder' if family == 'llama' else 'encoder'}; objective {self.objective} needs a "
                            f"{wanted}-* architecture.", field="architecture")
        if self.architecture.startswith("custom") and self.hidden_size % self.num_heads:
            raise BadConfig(f"Field 'num_heads' has the value {self.num_heads}; it must divide the hidden size "
                            f"({self.hidden_size}).", field="num_heads")


def split_corpus(spec) -> list[str]:
    if isinstance(spec, (list, tuple)):
        items = [str(s) for s in spec]
    else:
        items = str(spec or "").replace("\n", CORPUS_SEPARATOR).split(CORPUS_SEPARATOR)
    return [s.strip() for s in items if s.strip()]


register_task("pretrain", PretrainConfig)
