"""The README's walkthrough works on a fresh checkout: the commands under "The same in three commands" are
read from README.md (not copied here) and run as a newcomer would, from the repository root, with the
starter model and the sample instructions that ship in resources/, in an empty workspace and offline.

`studio` is the console script for `studio.launcher:main` (pyproject.toml), which hands sub-commands to
`studio.cli.main`; they are run here as `python -m studio.cli` with this interpreter, so the test does not depend on where the script was
installed from.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
HEADING = "The same in three commands"
PLACEHOLDER = "RUN_FOLDER"


def walkthrough_commands(text: str) -> list[list[str]]:
    """The commands of the first fenced block after the heading, one argv a line (comments dropped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == HEADING)
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return [shlex.split(line, comments=True) for line in lines[fence + 1:end] if shlex.split(line, comments=True)]


def run_studio(argv: list[str], workspace: Path) -> subprocess.CompletedProcess:
    assert argv[0] == "studio", argv
    env = dict(os.environ, ADAPT_STUDIO_WORKSPACE=str(workspace), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "studio.cli", *argv[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_the_studio_command_is_the_launcher():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["studio"] == "studio.launcher:main"
    assert 'studio = "studio.launcher:main"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_readme_walkthrough_block_is_found_and_uses_shipped_files():
    commands = walkthrough_commands(README.read_text(encoding="utf-8"))
    assert [c[:2] for c in commands] == [["studio", "train"], ["studio", "generate"], ["studio", "generate"]]
    config = ROOT / commands[0][2]
    assert config.is_file() and config.parent == ROOT / "resources"
    for argv in commands[1:]:
        assert (ROOT / argv[argv.index("--model") + 1] / "config.json").is_file()
    assert PLACEHOLDER not in " ".join(commands[1]) and PLACEHOLDER in " ".join(commands[2])
    assert "../shared" not in README.read_text(encoding="utf-8")  # no file from beside a development checkout


def test_readme_walkthrough_runs_as_written(tmp_path):
    commands = walkthrough_commands(README.read_text(encoding="utf-8"))
    workspace = tmp_path / "workspace"

    train = run_studio(commands[0], workspace)
    assert train.returncode == 0, train.stderr[-3000:]
    run_folder = Path(re.search(r"^run folder: (.+)$", train.stderr, re.M).group(1).strip())
    assert run_folder.parent == workspace / "runs"
    assert train.stdout.strip().splitlines()[-1] == f"completed: {run_folder / 'adapter'}"
    assert (run_folder / "adapter" / "adapter_model.safetensors").is_file()
    events = [json.loads(line) for line in (run_folder / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    evals = [e["eval_loss"] for e in events if e["type"] == "eval"]
    assert evals and evals[-1] < 0.8  # a real run: the README says the held-out loss ends near 0.4

    replies = []
    for argv in commands[1:]:
        argv = [a.replace(PLACEHOLDER, str(run_folder)) for a in argv]
        out = run_studio(argv, workspace)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip(), f"{shlex.join(argv)} printed nothing"
        replies.append(out.stdout.strip())

    # The fine-tuned model gives the sample set's answer to the README's question.
    prompt = commands[2][commands[2].index("--prompt") + 1]
    rows = json.loads((ROOT / "resources" / "sample-instructions.json").read_text(encoding="utf-8"))
    answer = next(r["output"] for r in rows if r["instruction"] == prompt and not r["input"])
    assert replies[1] == answer, replies


EVAL_HEADING = "Prompt or fine-tune? Measure it on held-out data"


def test_readme_fine_tune_then_evaluate_runs_as_written(tmp_path):
    """The README's second path: fine-tune on topics, then evaluate against k-shot prompting; the recommendation
    printed last follows from the table printed before it."""
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == EVAL_HEADING)
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    commands = [shlex.split(line, comments=True) for line in lines[fence + 1:end]]
    assert [c[:2] for c in commands] == [["studio", "train"], ["studio", "eval"]]
    workspace = tmp_path / "workspace"
    train = run_studio(commands[0], workspace)
    assert train.returncode == 0, train.stderr[-3000:]
    evaluation = run_studio(commands[1], workspace)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    table = evaluation.stdout.strip().splitlines()
    assert table[0].split()[:2] == ["candidate", "accuracy"]
    rows = {line.rsplit(",", 1)[-1].split()[0] if "shot" in line else "tuned": line for line in table[1:6]}
    assert set(rows) == {"0-shot", "1-shot", "3-shot", "5-shot", "tuned"}
    accuracy = {k: float(line.split("%")[0].split()[-1]) for k, line in rows.items()}
    assert accuracy["tuned"] > max(v for k, v in accuracy.items() if k != "tuned") + 20  # the fine-tune learned it
    assert table[-1].startswith("Highest accuracy: topics (LoRA adapter)")
