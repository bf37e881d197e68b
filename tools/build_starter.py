"""Builds the starter model that ships in resources/: a tiny Llama-style decoder pre-trained by the app's own
pipeline on a corpus this script writes, so that a fresh install can fine-tune and chat with no download. It
also writes the sample data beside it (sample-instructions.json, topics-train.json, topics-heldout.jsonl).

Rebuild it (CPU only, a few minutes on two cores; the result is deterministic for a given seed)::

    python tools/build_starter.py                            # writes into resources/
    python tools/build_starter.py --steps 200 --out /tmp/res   # a quicker build elsewhere

The corpus is templated sentences about a small made-up world plus the sample instructions rendered as
chats with the fallback chat template (``<|user|>`` / ``<|assistant|>`` turns ended by the end-of-text
token), so the model continues prose and answers in chat format a little. It is a toy: it shows the
workflow, not quality.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # a checkout's studio package, installed or not

from studio.engine.data.render import FALLBACK_CHAT_TEMPLATE  # noqa: E402
from studio.engine.events import EventWriter  # noqa: E402

ANIMALS = ["cat", "dog", "fox", "owl", "horse", "rabbit", "bear", "duck", "goat", "mouse", "frog", "deer"]
COLOURS = ["red", "blue", "green", "yellow", "brown", "white", "black", "orange", "grey", "purple"]
PLACES = ["garden", "forest", "river", "village", "hill", "meadow", "barn", "lake", "market", "library"]
NAMES = ["Anna", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Leo"]
VERBS = ["walks to", "runs to", "looks at", "sleeps near", "plays in", "waits by", "sings in", "reads in"]
FOODS = ["bread", "apples", "soup", "rice", "cheese", "carrots", "berries", "fish", "honey", "tea"]
ADJS = ["small", "big", "quiet", "happy", "old", "young", "brave", "tired", "clever", "gentle"]
WEATHER = ["sunny", "rainy", "windy", "cold", "warm", "cloudy", "snowy", "foggy"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"),
             ("happy", "sad"), ("old", "new"), ("open", "closed"), ("light", "dark"), ("early", "late"),
             ("full", "empty"), ("loud", "quiet"), ("hard", "soft"), ("wet", "dry"), ("near", "far")]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty"]
FACTS = [
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("What colour is grass?", "Grass is green."),
    ("How many legs does a dog have?", "A dog has four legs."),
    ("How many legs does a bird have?", "A bird has two legs."),
    ("What do bees make?", "Bees make honey."),
    ("Where do fish live?", "Fish live in water."),
    ("What do cows drink?", "Cows drink water."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("What comes after Monday?", "Tuesday comes after Monday."),
    ("What is the first day of the weekend?", "Saturday is the first day of the weekend."),
    ("What do we use to write?", "We use a pen or a pencil to write."),
    ("What falls from clouds when it rains?", "Water falls from the clouds when it rains."),
    ("Is the sun hot or cold?", "The sun is very hot."),
    ("What animal says meow?", "A cat says meow."),
    ("What animal says woof?", "A dog says woof."),
    ("Which animal can fly, a duck or a goat?", "A duck can fly. A goat cannot."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("What do you call a baby dog?", "A baby dog is called a puppy."),
    ("What shape is a ball?", "A ball is round."),
    ("What is ice made of?", "Ice is frozen water."),
]
GREETINGS = [
    ("Hello!", "Hello! How can I help you today?"),
    ("Hi there.", "Hi! What would you like to know?"),
    ("Who are you?", "I am a tiny starter model. I can answer simple questions."),
    ("What can you do?", "I can answer simple questions about numbers, words and animals."),
    ("Thank you!", "You are welcome!"),
    ("Good morning.", "Good morning! I hope you have a nice day."),
    ("Goodbye.", "Goodbye! Have a nice day."),
    ("Are you a big model?", "No, I am a very small model made for trying things out."),
]


def sample_instructions(seed: int = 0) -> list[dict]:
    """The sample instruction dataset (alpaca format: instruction, input, output), ~150 rows."""
    rng = random.Random(seed)
    rows = [{"instruction": q, "input": "", "output": a} for q, a in FACTS + GREETINGS]
    for a, b in OPPOSITES:
        rows.append({"instruction": f"What is the opposite of {a}?", "input": "",
                     "output": f"The opposite of {a} is {b}."})
    for animal in ANIMALS:
        plural = "mice" if animal == "mouse" else "deer" if animal == "deer" else animal + "s"
        rows.append({"instruction": f"What is the plural of {animal}?", "input": "",
                     "output": f"The plural of {animal} is {plural}."})
    pairs = set()
    while len(pairs) < 40:
        pairs.add((rng.randint(0, 10), rng.randint(0, 10)))
    for x, y in sorted(pairs):
        rows.append({"instruction": f"What is {x} plus {y}?", "input": "", "output": f"{x} plus {y} is {x + y}."})
    for n in range(2, 9):
        rows.append({"instruction": f"Count from 1 to {n}.", "input": "",
                     "output": ", ".join(str(i) for i in range(1, n + 1)) + "."})
    for word in rng.sample(ANIMALS + FOODS, 12):
        rows.append({"instruction": "Write this word in capital letters.", "input": word, "output": word.upper()})
    for n in rng.sample(range(0, 21), 12):
        rows.append({"instruction": "Write this number as a word.", "input": str(n), "output": NUMBER_WORDS[n]})
    for name in rng.sample(NAMES, 6):
        rows.append({"instruction": "Say hello to this person.", "input": name, "output": f"Hello, {name}!"})
    return rows


TOPICS = ("animal", "food", "weather")
TOPIC_SYSTEM = "Answer with one of: animal, food, weather."


def topic_sentences(n: int, seed: int = 0) -> list[dict]:
    """Labelled text for the classification walkthrough: sentences about the small world, each about animals,
    food or the weather (labelled by the template that wrote it), some mentioning another topic in passing."""
    rng = random.Random(seed)
    c = rng.choice
    makers = {
        "animal": [lambda: f"The {c(ADJS)} {c(ANIMALS)} {c(VERBS)} the {c(PLACES)}.",
                   lambda: f"A {c(COLOURS)} {c(ANIMALS)} {c(VERBS)} the {c(PLACES)} on a {c(WEATHER)} day.",
                   lambda: f"{c(NAMES)} sees a {c(ADJS)} {c(ANIMALS)} near the {c(PLACES)}."],
        "food": [lambda: f"{c(NAMES)} eats {c(FOODS)} in the {c(PLACES)}.",
                 lambda: f"{c(NAMES)} buys {c(FOODS)} and {c(FOODS)} at the market on {c(DAYS)}.",
                 lambda: f"The {c(ANIMALS)} watches {c(NAMES)} cook {c(FOODS)} for dinner."],
        "weather": [lambda: f"It is {c(WEATHER)} in the {c(PLACES)} on {c(DAYS)}.",
                    lambda: f"{c(NAMES)} says {c(DAYS)} will be {c(WEATHER)} and {c(WEATHER)}.",
                    lambda: f"The sky over the {c(PLACES)} is {c(WEATHER)} today."],
    }
    rows, seen = [], set()
    while len(rows) < n:
        topic = TOPICS[len(rows) % len(TOPICS)]
        text = c(makers[topic])()
        if text not in seen:
            seen.add(text)
            rows.append({"text": text, "label": topic})
    rng.shuffle(rows)
    return rows


def write_topic_files(out: Path, seed: int = 0) -> None:
    """resources/topics-train.json (alpaca, the label list as the system prompt) and topics-heldout.jsonl
    (labelled text), disjoint."""
    rows = topic_sentences(450, seed)
    train = [{"system": TOPIC_SYSTEM, "instruction": r["text"], "output": r["label"]} for r in rows[:300]]
    (Path(out) / "topics-train.json").write_text(json.dumps(train, indent=1) + "\n", encoding="utf-8")
    (Path(out) / "topics-heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[300:]),
                                                    encoding="utf-8")


def prose_documents(n: int, seed: int = 0) -> list[str]:
    """Short stories made from templates: a small, regular world a tiny model can learn."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        name, animal, colour, place = rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(COLOURS), rng.choice(PLACES)
        adj, food, day, weather = rng.choice(ADJS), rng.choice(FOODS), rng.choice(DAYS), rng.choice(WEATHER)
        sentences = [
            f"On {day} the weather was {weather}.",
            f"{name} has a {adj} {colour} {animal}.",
            f"The {animal} {rng.choice(VERBS)} the {place}.",
            f"{name} eats {food} in the {place}.",
            f"The {animal} likes {food}, but {name} likes {rng.choice(FOODS)}.",
            f"In the {place} there are {rng.choice(NUMBER_WORDS[2:11])} {colour} flowers.",
            f"{name} and the {animal} go home when it is {rng.choice(['late', 'dark', 'cold'])}.",
            f"{rng.choice(NAMES)} says hello to {name}.",
        ]
        keep = [sentences[0], sentences[1]] + rng.sample(sentences[2:], rng.randint(2, 4))
        docs.append(" ".join(keep))
    return docs


def chat_documents(rows: list[dict], tokenizer_eos: str = "<|endoftext|>") -> list[str]:
    """The instructions rendered with the fallback chat template (without the final end-of-text,
    which the packer adds between documents)."""
    import jinja2

    from studio.engine.data.render import FALLBACK_CHAT_TEMPLATE

    template = jinja2.Environment().from_string(FALLBACK_CHAT_TEMPLATE)
    out = []
    for row in rows:
        user = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
        text = template.render(messages=messages, eos_token=tokenizer_eos, add_generation_prompt=False)
        out.append(text.removesuffix(tokenizer_eos))
    return out


class _Printer(EventWriter):
    """Writes events to the file and a short human line to stdout."""

    def emit(self, type: str, **fields):
        event = super().emit(type, **fields)
        if type == "log" and fields.get("step", 0) % 25 == 0:
            print(f"  step {fields['step']}/{fields.get('total_steps')}  loss {fields['loss']:.3f}", flush=True)
        elif type == "eval":
            print(f"  eval step {fields['step']}: held-out loss {fields['eval_loss']:.3f}, "
                  f"perplexity {fields['perplexity']:.1f}", flush=True)
        elif type == "sample":
            for s in fields["samples"][:2]:
                print(f"    {s['prompt']!r} -> {s['completion'][:70]!r}", flush=True)
        elif type in ("failed", "started"):
            print(f"  {type}: {fields.get('message', '')}", flush=True)
        return event


def build(out: Path, steps: int = 1500, seed: int = 0) -> Path:
    from studio.engine.config import validate
    from studio.engine.pretrain.recipe import run_pretrain
    from studio.engine.pretrain_config import PretrainConfig
    from studio.engine.runs import atomic_dir

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = sample_instructions(seed)
    (out / "sample-instructions.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    write_topic_files(out, seed)
    with tempfile.TemporaryDirectory(prefix="starter-") as tmp:
        tmp = Path(tmp)
        docs = prose_documents(3000, seed) + chat_documents(rows) * 4
        random.Random(seed).shuffle(docs)
        with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        cfg = PretrainConfig(
            name="starter-model", mode="scratch", objective="clm", architecture="custom-llama", hidden_size=128,
            num_layers=4, num_heads=4, intermediate_size=384, vocab_size=1536, corpus=str(tmp / "corpus.jsonl"),
            block_size=128, dedupe=False, batch_size=8, max_steps=steps, learning_rate=3e-3, warmup_ratio=0.05,
            weight_decay=0.01, eval_every=max(1, steps // 4), save_every=0, validation_fraction=0.02, seed=seed,
            log_every=5, device="cpu",
            probe_prompts="Anna has a | <|user|>\nWhat is the opposite of hot?<|endoftext|><|assistant|>\n")
        validate(cfg)
        run_dir = tmp / "run"
        run_dir.mkdir()
        events = _Printer(run_dir / "events.jsonl")
        run_pretrain(cfg, run_dir, events, threading.Event())
        events.close()
        from transformers import AutoTokenizer

        model_dir = out / "starter-model"
        with atomic_dir(model_dir) as target:
            for f in (run_dir / "model").iterdir():
                if f.is_file():
                    shutil.copy2(f, target / f.name)
            tok = AutoTokenizer.from_pretrained(target)
            tok.chat_template = FALLBACK_CHAT_TEMPLATE
            tok.save_pretrained(target)
            summary = json.loads((run_dir / "corpus_summary.json").read_text())
            final = [e for e in _read(run_dir / "events.jsonl") if e["type"] == "eval"]
            (target / "README.md").write_text(
                "# Adapt Studio starter model\n\n"
                "A tiny Llama-style decoder (about 1M parameters) pre-trained from scratch by Adapt Studio's own "
                "pipeline on a corpus the project generates (templated stories about a small made-up world and "
                "the sample instructions rendered as chats). It has a chat template (`<|user|>` / `<|assistant|>`"
                " turns ended by `<|endoftext|>`). It is a toy for trying the workflow offline.\n\n"
                "Rebuild: `python tools/build_starter.py` (CPU, a few minutes).\n\n"
                f"Corpus: {summary['documents']} documents, {summary['tokens']} tokens, {summary['blocks']} blocks "
                f"of {summary['block_size']}. Steps: {steps}. Final held-out perplexity: "
                f"{final[-1]['perplexity']:.2f}.\n" if final else "", encoding="utf-8")
    return out / "starter-model"


def _read(path):
    from studio.engine.events import read_events

    return read_events(path)


def main(argv: list[str] | None = None) -> int:
    from studio.resources import resources_dir

    parser = argparse.ArgumentParser(prog="python tools/build_starter.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=resources_dir(), help="resources folder to write into")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    folder = build(args.out, args.steps, args.seed)
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(f"Wrote {folder} ({size / 2**20:.1f} MiB) in {time.monotonic() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
