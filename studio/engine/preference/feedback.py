"""The playground's feedback file: people's marks on replies, kept as a preference dataset.

`WORKSPACE/feedback/feedback.jsonl` holds one JSON object a line, in TRL's conversational layouts:
- a pair: {"prompt": [messages], "chosen": [{"role": "assistant", "content": ...}],
  "rejected": [{"role": "assistant", "content": ...}], "source": {...}}
- a single mark: {"prompt": [messages], "completion": [{"role": "assistant", "content": ...}],
  "label": true | false, "source": {...}}
The prompt holds the system prompt (if any), then the conversation up to and including the user message that
was answered; a completion-mode prompt is one user turn holding the text that was continued. `source` says
where the replies came from: {"model", "adapter" (or null), "time" (ISO 8601), "sides", "edited"}; `sides`
names the side of the chosen reply first, then the rejected one's (a single mark: its one side).

Each mark is appended as it is made, and flushed to the disk before the call returns, so a crash loses at most
the line being written; that partial last line is ignored by the readers and cut off before the next append.
Light module: no torch, no Qt.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from studio.engine.errors import BadDataset
from studio.engine.prompting.sampling import SamplingSettings

FEEDBACK_FOLDER = "feedback"
FEEDBACK_FILE = "feedback.jsonl"
ROLES = ("system", "user", "assistant")
# Single marks outnumbering pairs by this much are worth more to KTO (which reads a pair as one good and one
# bad reply) than the few pairs are to DPO.
MARKS_PER_PAIR_FOR_KTO = 4


def feedback_path(workspace) -> Path:
    return Path(workspace) / FEEDBACK_FOLDER / FEEDBACK_FILE


def make_source(model: str, adapter: str | None, sides: list[str], edited: bool = False) -> dict:
    return {"model": str(model), "adapter": str(adapter) if adapter else None,
            "time": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
            "sides": list(sides), "edited": bool(edited)}


def _reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _check_prompt(prompt: list[dict]) -> list[dict]:
    if not isinstance(prompt, list) or not prompt:
        raise BadDataset("The feedback has no prompt: the message that was answered is missing.",
                         "Send a message (or the text to continue) and mark its reply.", field="prompt")
    for i, message in enumerate(prompt):
        if not (isinstance(message, dict) and message.get("role") in ROLES and isinstance(message.get("content"),
                                                                                           str)):
            raise BadDataset(f"Prompt message {i + 1} of the feedback is {message!r}; expected "
                             "{\"role\": system|user|assistant, \"content\": text}.", field="prompt")
    if prompt[-1]["role"] != "user":
        raise BadDataset(f"The feedback prompt's last message has the role {prompt[-1]['role']!r}; it must be the user "
                         "message that was answered.", field="prompt")
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def _check_reply(text, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadDataset(f"The {what} is empty; an empty reply is not recorded in {FEEDBACK_FILE}.",
                         "Wait for the reply to finish (or generate it again) before marking it.", field=what)
    return text


def _append(path: Path, record: dict) -> None:
    """One line, on the disk when this returns. A partial last line left by a crash is cut off first, so that
    it never ends up in the middle of the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            tail_start = _last_line_start(f, size)
            f.seek(tail_start)
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                if _parses(tail):  # a complete line that only lacks its newline (edited by hand)
                    f.write(b"\n")
                else:
                    f.truncate(tail_start)
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def _last_line_start(f, size: int, block: int = 4096) -> int:
    """The offset just after the last newline before the file's final byte (0 when there is none)."""
    end = size - 1  # a newline as the very last byte ends the last line; it does not start a new one
    while end > 0:
        start = max(0, end - block)
        f.seek(start)
        chunk = f.read(end - start)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _parses(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def record_pair(path, prompt: list[dict], chosen: str, rejected: str, source: dict) -> dict:
    """Append a pair: `chosen` was preferred to `rejected` as the reply to `prompt`. Returns the record."""
    prompt = _check_prompt(prompt)
    _check_reply(chosen, "chosen reply")
    _check_reply(rejected, "rejected reply")
    if chosen.strip() == rejected.strip():
        raise BadDataset("The two replies are the same text, so neither can be preferred; the pair is not recorded.",
                         "Regenerate for two different replies, or edit the better one before saving.",
                         field="chosen")
    record = {"prompt": prompt, "chosen": _reply(chosen), "rejected": _reply(rejected), "source": dict(source)}
    _append(path, record)
    return record


def record_mark(path, prompt: list[dict], reply: str, good: bool, source: dict) -> dict:
    """Append a single reply marked good (label true) or bad (label false). Returns the record."""
    record = {"prompt": _check_prompt(prompt), "completion": _reply(_check_reply(reply, "reply")),
              "label": bool(good), "source": dict(source)}
    _append(path, record)
    return record


def read_feedback(path) -> list[dict]:
    """The records of a feedback file (none when it does not exist yet); a partial last line is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if number == len(lines):  # no newline after it: the line being written when the app stopped
                continue
            raise BadDataset(f"{path}, line {number}: not a JSON object; expected a pair (prompt, chosen, rejected) "
                             "or a mark (prompt, completion, label).",
                             "Remove or fix that line (each line is one mark).", field="line")
        records.append(record)
    return records


@dataclass(frozen=True)
class FeedbackCounts:
    pairs: int = 0
    good: int = 0
    bad: int = 0

    @property
    def marks(self) -> int:
        return self.good + self.bad

    def __str__(self) -> str:
        return f"{self.pairs} pair{'' if self.pairs == 1 else 's'}, {self.good} good, {self.bad} bad"


def count_feedback(path) -> FeedbackCounts:
    pairs = good = bad = 0
    for number, record in enumerate(read_feedback(path), 1):
        if "chosen" in record and "rejected" in record:
            pairs += 1
        elif "label" in record:
            good, bad = (good + 1, bad) if record["label"] else (good, bad + 1)
        else:
            raise BadDataset(f"{path}, record {number}: has neither chosen/rejected nor label (keys: "
                             f"{', '.join(sorted(record)) or 'none'}).", field="line")
    return FeedbackCounts(pairs, good, bad)


@dataclass(frozen=True)
class Suggestion:
    objective: str | None  # "dpo" | "kto" | None: nothing to train on yet
    reason: str


def suggest(counts: FeedbackCounts) -> Suggestion:
    if counts.pairs and counts.marks > MARKS_PER_PAIR_FOR_KTO * counts.pairs:
        return Suggestion("kto", f"KTO: {counts.marks} single marks outnumber the {counts.pairs} pairs (it reads "
                                 "each pair as one good and one bad reply).")
    if counts.pairs:
        return Suggestion("dpo", f"DPO on {counts.pairs} pair{'' if counts.pairs == 1 else 's'} of replies.")
    if counts.good and counts.bad:
        return Suggestion("kto", f"KTO on {counts.marks} single replies marked good or bad.")
    if not counts.marks:
        return Suggestion(None, "No feedback yet: pick the better of two replies, or mark replies good or bad.")
    have, need = ("good", "bad") if counts.good else ("bad", "good")
    return Suggestion(None, f"Only replies marked {have} so far: KTO needs some marked {need} too (or pick the "
                            "better of two replies for DPO).")


def suggested_objective(counts: FeedbackCounts) -> str | None:
    return suggest(counts).objective


def two_samples(sampling: SamplingSettings) -> tuple[SamplingSettings, SamplingSettings]:
    """The settings of two replies of one model to compare: the preset's, then the same with the next seed.
    Greedy decoding gives the same reply every time, so the second is sampled (do_sample forced) at the preset's
    temperature, top-p and top-k: the first stays the reply the preset gives, the second is a real alternative."""
    seed = None if sampling.seed is None else (sampling.seed + 1) % 2**31
    return sampling, replace(sampling, greedy=False, seed=seed)


def describe_sample(sampling: SamplingSettings, forced: bool) -> str:
    """A pane title's note, e.g. "greedy" or "sampled (greedy is off for it), temperature 0.7, seed 1"."""
    if sampling.greedy:
        return "greedy"
    seed = "random seed" if sampling.seed is None else f"seed {sampling.seed}"
    return f"sampled{' (greedy is off for it)' if forced else ''}, temperature {sampling.temperature:g}, {seed}"
