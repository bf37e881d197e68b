"""Fast checks of the packaging files (no build): the .desktop entry, the icons, the frozen entry
script's dispatch, and the CPU-fallback warning."""

from __future__ import annotations

import configparser
import importlib.util
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_entry():
    spec = importlib.util.spec_from_file_location("adapt_studio_entry", PACKAGING / "entry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_desktop_entry_parses_and_names_icon_and_exec():
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "linux" / "adapt-studio.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Adapt Studio"
    assert entry["Exec"].split()[0] == "adapt-studio"  # the binary name the spec builds
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    icon = entry["Icon"]
    for n in SIZES:
        assert (ICONS / f"{n}x{n}" / f"{icon}.png").is_file()
    spec_text = (PACKAGING / "adapt-studio.spec").read_text()
    assert 'APP_NAME = "adapt-studio"' in spec_text


@pytest.mark.parametrize("size", SIZES)
def test_icons_exist_in_every_size(size):
    assert png_size(ICONS / f"{size}x{size}" / "adapt-studio.png") == (size, size)


def test_ico_and_icns_hold_pngs():
    ico = (ICONS / "adapt-studio.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 5
    for i in range(count):
        w, h, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i: 22 + 16 * i])
        assert ico[offset:offset + 8] == PNG_MAGIC and offset + length <= len(ico)
    icns = (ICONS / "adapt-studio.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


def test_entry_dispatches_worker(monkeypatch):
    entry = load_entry()
    calls = []
    import studio.engine.worker
    import studio.launcher

    monkeypatch.setattr(studio.engine.worker, "main", lambda argv: calls.append(("worker", argv)) or 0)
    monkeypatch.setattr(studio.launcher, "main", lambda argv: calls.append(("cli", argv)) or 0)
    monkeypatch.setattr(sys, "argv", ["adapt-studio"])

    assert entry.dispatch(["-m", "studio.engine.worker", "/tmp/run"]) == 0
    assert calls[-1] == ("worker", ["/tmp/run"])
    assert sys.argv == ["studio.engine.worker", "/tmp/run"]
    assert entry.dispatch(["-mstudio.engine.worker", "/tmp/run2"]) == 0
    assert calls[-1] == ("worker", ["/tmp/run2"])
    assert entry.dispatch([]) == 0
    assert calls[-1] == ("cli", [])
    assert entry.dispatch(["--smoke-test"]) == 0
    assert calls[-1] == ("cli", ["--smoke-test"])
    assert entry.dispatch(["train", "cfg.yaml"]) == 0
    assert calls[-1] == ("cli", ["train", "cfg.yaml"])


def test_entry_passes_exit_status_and_rejects_unknown_modules(monkeypatch, capsys):
    entry = load_entry()
    import studio.engine.worker

    monkeypatch.setattr(studio.engine.worker, "main", lambda argv: 1)
    monkeypatch.setattr(sys, "argv", ["adapt-studio"])
    assert entry.dispatch(["-m", "studio.engine.worker", "/tmp/run"]) == 1
    assert entry.dispatch(["-m", "os"]) == 2
    assert "not a module this build can run" in capsys.readouterr().err
    assert entry.dispatch(["-m"]) == 2


def test_gpu_check_warns_only_on_cpu_fallback():
    from studio.engine.gpu_check import cpu_fallback_warning

    assert cpu_fallback_warning(gpu_present=False, torch_facts=(False, None, "2.13.0+cpu")) is None
    assert cpu_fallback_warning(gpu_present=True, torch_facts=(True, "12.8", "2.13.0+cu128")) is None
    cpu = cpu_fallback_warning(gpu_present=True, torch_facts=(False, None, "2.13.0+cpu"))
    assert "CPU-only build of torch" in cpu and "download.pytorch.org/whl/cu" in cpu
    driver = cpu_fallback_warning(gpu_present=True, torch_facts=(False, "12.8", "2.13.0+cu128"))
    assert "driver" in driver and "12.8" in driver


def test_gpu_check_imports_no_torch_or_qt():
    import subprocess

    code = ("import sys, studio.engine.gpu_check; "
            "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
