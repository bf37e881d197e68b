"""The system report (`studio doctor`, `studio --version`, Help › About / System report): real facts of this
computer, and a word wherever a fact cannot be found out."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from studio.engine.system_report import (NOT_INSTALLED, UNKNOWN, VERSION_UNKNOWN, SystemReport, collect,
                                         library_version, package_version, render, version_text)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return collect(tmp_path_factory.mktemp("workspace"))


def test_versions_are_the_installed_ones(report):
    import peft
    import torch
    import transformers

    assert report.packages["torch"] == torch.__version__
    assert report.packages["transformers"] == transformers.__version__
    assert report.packages["peft"] == peft.__version__
    for name in ("accelerate", "datasets"):
        assert report.packages[name] == version(name)
    assert report.packages["PySide6"] == package_version("PySide6", "PySide6-Essentials") != NOT_INSTALLED
    assert report.python.startswith(platform.python_version())
    assert report.app_version == version("adapt-studio")


def test_bitsandbytes_is_a_version_or_not_installed(report):
    import importlib.util

    found = importlib.util.find_spec("bitsandbytes") is not None
    assert (report.packages["bitsandbytes"] != NOT_INSTALLED) == found
    assert package_version("adapt-studio-no-such-distribution") == NOT_INSTALLED


def test_a_library_without_metadata_is_still_found():
    """A frozen build may carry a module without its package metadata: it is not reported missing."""
    assert library_version("pytest", "adapt-studio-no-such-distribution") == pytest.__version__  # loaded
    assert "this" not in sys.modules  # the standard library's Zen of Python: found, never imported here
    assert library_version("this", "adapt-studio-no-such-distribution") == VERSION_UNKNOWN
    assert library_version("adapt_studio_no_such_module", "adapt-studio-no-such-distribution") == NOT_INSTALLED


def test_torch_build_and_gpus_are_what_torch_sees(report):
    import torch

    if torch.version.hip:
        assert report.torch_build == f"ROCm {torch.version.hip} build"
    elif torch.version.cuda:
        assert report.torch_build == f"CUDA {torch.version.cuda} build"
    else:
        assert report.torch_build == "CPU-only build"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert len(report.gpus) == count
    for i, gpu in enumerate(report.gpus):
        assert gpu.name == torch.cuda.get_device_name(i)
        free, total = torch.cuda.mem_get_info(i)
        assert gpu.total_bytes == total and 0 < gpu.free_bytes <= gpu.total_bytes
    if not count:
        assert report.gpu_note  # says what stands instead: no GPU, or Apple MPS


def test_workspace_and_its_free_disk(report, tmp_path):
    assert Path(report.workspace).is_dir()
    assert report.workspace_free_bytes > 0
    later = collect(tmp_path / "not" / "made" / "yet", probe_gpus=False)
    assert later.workspace == str(tmp_path / "not" / "made" / "yet")
    assert 0 < later.workspace_free_bytes <= shutil.disk_usage(tmp_path).total
    assert "made on first use" in later.text()


def test_text_has_every_fact(report):
    text = render(report)
    lines = text.splitlines()
    assert lines[0] == f"Adapt Studio {report.app_version}"
    for name, value in report.packages.items():
        assert any(line.startswith(name) and value in line for line in lines), name
    assert report.torch_build in text
    for label in ("Python", "OS", "CPU", "Memory", "GPU", "Workspace"):
        assert any(line.startswith(label) for line in lines), label
    assert report.workspace in text and "GiB free" in text
    assert json.loads(json.dumps(report.to_dict()))["packages"] == report.packages


def test_a_report_with_nothing_known_still_renders():
    text = SystemReport().text()  # every fact at its default word
    assert text.startswith(f"Adapt Studio {UNKNOWN}")
    assert "Memory" in text and UNKNOWN in text
    partial = collect(import_torch=False, probe_workspace=False)  # the versions, without importing torch
    assert partial.torch_build == UNKNOWN and not partial.gpus and not partial.workspace
    assert "Workspace" not in partial.text()


def test_version_text_is_the_versions_only():
    text = version_text()
    assert text.splitlines()[0] == f"Adapt Studio {version('adapt-studio')}"
    assert "torch" in text and "transformers" in text and "bitsandbytes" in text
    assert "Workspace" not in text and "GPU" not in text


def test_the_module_imports_no_qt():
    code = ("import sys; from studio.engine.system_report import collect; collect(import_torch=False); "
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _studio(*args, workspace: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ADAPT_STUDIO_WORKSPACE=str(workspace))
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def test_studio_doctor_prints_the_report(tmp_path):
    import torch

    out = _studio("doctor", workspace=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Adapt Studio ")
    assert torch.__version__ in out.stdout
    assert re.search(rf"^Workspace +{re.escape(str(tmp_path))} \(\d+\.\d GiB free\)$", out.stdout, re.M)
    other = tmp_path / "elsewhere"
    as_json = _studio("doctor", "--json", "--workspace", str(other), workspace=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["workspace"] == str(other) and data["workspace_free_bytes"] > 0
    assert data["packages"]["torch"] == torch.__version__


def test_studio_version(tmp_path, capsys):
    from studio.cli import main

    assert main(["--version"]) == 0  # not taken for a GUI option
    text = capsys.readouterr().out
    assert text.startswith(f"Adapt Studio {version('adapt-studio')}\n")
    assert version("transformers") in text and version("torch") in text
    out = _studio("--version", workspace=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == text
