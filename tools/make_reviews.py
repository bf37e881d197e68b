"""Writes the sample sentiment data: resources/reviews-train.csv and resources/reviews-heldout.csv.

Made-up product reviews built from templates (seeded, so the files are the same on every run), labelled positive or
negative. Lengths and wording vary, and many reviews mix praise and complaint ("looks great, but it broke after a
week"), so no single word gives the label away.

    python tools/make_reviews.py [--train 600] [--heldout 150] [--seed 7] [--max-chars 140]

The shipped files keep reviews to 140 characters, so a review and the question about it fit in the starter model's
128-token context when the README compares the classifier with prompting; `--max-chars 0` writes the longer
reviews (3 to 77 words) that bench/classify_speed.py trains on, where lengths vary more.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRODUCTS = ["kettle", "pair of headphones", "backpack", "desk lamp", "blender", "phone case", "rain jacket",
            "office chair", "coffee grinder", "bike light", "water bottle", "keyboard", "toaster", "yoga mat",
            "travel mug", "umbrella", "wireless mouse", "frying pan", "alarm clock", "pair of running shoes"]

# Each aspect: (what is praised, what is criticised); {p} is the product.
ASPECTS = [
    ("it feels solid and well made", "it feels flimsy and cheaply made"),
    ("the battery lasts for days", "the battery barely lasts an afternoon"),
    ("setting it up took two minutes", "setting it up was a frustrating hour of guesswork"),
    ("it arrived a day early and well packed", "it arrived late with the box crushed"),
    ("for the price it is a bargain", "it is far too expensive for what you get"),
    ("it does exactly what the description promises", "it does not do half of what the description promises"),
    ("customer service answered within the hour", "customer service never replied to my emails"),
    ("it is comfortable even after a long day", "it becomes uncomfortable after ten minutes"),
    ("it is quiet enough to use at night", "it is so loud that the neighbours complained"),
    ("the instructions are clear", "the instructions are useless"),
    ("it still works perfectly after months of daily use", "it stopped working after a week"),
    ("the colour is just like the photos", "the colour looks nothing like the photos"),
    ("it is light and easy to carry", "it is heavy and awkward to carry"),
    ("cleaning it takes seconds", "cleaning it is a nightmare"),
]
# Small things that do not decide a review: mentioned in reviews of either label.
ASIDES = ["the box was a bit bigger than needed", "the cable could be longer", "it only comes in three colours",
          "the logo is a little large", "it smelled new for a day", "the manual is printed very small",
          "delivery took the usual three days", "I bought it on sale", "my partner picked the colour",
          "it replaced an older model"]

POSITIVE_OPEN = ["Really happy with this {p}.", "Great {p}.", "I would buy this {p} again.", "Five stars.",
                 "Better than I expected.", "Honestly, not bad at all.", "This {p} is a keeper.",
                 "I was doubtful at first, but this {p} won me over.", "Does the job well.",
                 "No complaints so far.", "Exactly what I needed.", "Worth every penny."]
NEGATIVE_OPEN = ["Disappointed with this {p}.", "I would not buy this {p} again.", "One star.",
                 "Worse than I expected.", "Not worth the money.", "I wanted to love this {p}.",
                 "Sending this {p} back.", "Save your money.", "Looked promising, but no.",
                 "I regret buying this {p}.", "Not what I hoped for.", "Avoid."]
POSITIVE_CLOSE = ["Recommended.", "I have already ordered a second one.", "Would recommend to a friend.",
                  "Very pleased overall.", "Happy customer.", "It has made my mornings easier.", ""]
NEGATIVE_CLOSE = ["Not recommended.", "I have asked for a refund.", "Look elsewhere.", "Very disappointed overall.",
                  "Never again.", "It went straight back in the box.", ""]
BUT_POSITIVE = ["{bad}, but {good}, so I am happy overall.", "Yes, {bad}; still, {good} and that matters more.",
                "At first I thought {bad}, but I was wrong: {good}."]
BUT_NEGATIVE = ["{good}, but {bad}, which ruins it.", "Sure, {good}; however, {bad} and that is a deal breaker.",
                "I hoped {good}, but in fact {bad}."]


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def review(rng: random.Random, positive: bool) -> str:
    product = rng.choice(PRODUCTS)
    aspects = rng.sample(ASPECTS, k=min(len(ASPECTS), rng.choice([0, 1, 1, 2, 2, 3, 4, 5])))
    parts = [rng.choice(POSITIVE_OPEN if positive else NEGATIVE_OPEN)] if rng.random() < 0.8 or not aspects else []
    for good, bad in aspects:
        parts.append(_sentence(good if positive else bad))
    if rng.random() < 0.45:  # a mixed review: the deciding point comes with its opposite
        (good, _), (_, bad) = rng.sample(ASPECTS, 2)  # two different aspects: praise one, fault the other
        parts.append(_sentence(rng.choice(BUT_POSITIVE if positive else BUT_NEGATIVE).format(good=good, bad=bad)))
    if rng.random() < 0.35:
        parts.insert(rng.randrange(len(parts) + 1), _sentence(rng.choice(ASIDES)))
    if rng.random() < 0.6:
        parts.append(rng.choice(POSITIVE_CLOSE if positive else NEGATIVE_CLOSE))
    if len(parts) == 1 and rng.random() < 0.5:  # some one-liners lose their opener's label words
        parts = [_sentence(f"{'Glad' if positive else 'Sorry'} I got the {product}")]
    return " ".join(p for p in parts if p).replace("{p}", product)


def make(rows: int, rng: random.Random, avoid: set[str], max_chars: int = 0) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    tries = 0
    while len(out) < rows:
        tries += 1
        if tries > rows * 50:
            raise RuntimeError(f"could not make {rows} distinct reviews")
        positive = len(out) % 2 == 0 if rng.random() < 0.9 else rng.random() < 0.5
        text = review(rng, positive)
        if text in avoid or max_chars and len(text) > max_chars:
            continue
        avoid.add(text)
        out.append((text, "positive" if positive else "negative"))
    rng.shuffle(out)
    return out


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--heldout", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-chars", type=int, default=140, help="longest review in characters (0 = no limit)")
    parser.add_argument("--out", type=Path, default=ROOT / "resources")
    args = parser.parse_args(argv)
    seen: set[str] = set()
    train = make(args.train, random.Random(args.seed), seen, args.max_chars)
    heldout = make(args.heldout, random.Random(args.seed + 1), seen, args.max_chars)  # never a training review
    write(args.out / "reviews-train.csv", train)
    write(args.out / "reviews-heldout.csv", heldout)
    print(f"wrote {len(train)} + {len(heldout)} reviews to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
