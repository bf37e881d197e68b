"""The facts a bug report needs: versions of Python and the libraries, the torch build, the GPUs torch
sees with their memory, the workspace and its free disk, the operating system.

`studio --version` prints the versions, `studio doctor` the whole report, and Help › About / System report
in the app shows the same text (it runs `studio doctor` in a child process, so the window never imports
torch or holds a CUDA context for it). No Qt here. Nothing in this module may raise: a fact that cannot be
found out reads as a word ("not installed", "unknown", "unavailable: …").
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

APP_DISTRIBUTION = "adapt-studio"
NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"
# (the name shown, its module, the distributions that may provide it: the first one installed wins)
LIBRARIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("torch", "torch", ("torch",)),
    ("transformers", "transformers", ("transformers",)),
    ("peft", "peft", ("peft",)),
    ("bitsandbytes", "bitsandbytes", ("bitsandbytes",)),
    ("accelerate", "accelerate", ("accelerate",)),
    ("datasets", "datasets", ("datasets",)),
    ("tokenizers", "tokenizers", ("tokenizers",)),
    ("trl", "trl", ("trl",)),
    ("PySide6", "PySide6", ("PySide6", "PySide6-Essentials")),
)
VERSION_UNKNOWN = "installed, version unknown"


@dataclass
class GpuInfo:
    index: int
    name: str
    total_bytes: int | None = None
    free_bytes: int | None = None

    def describe(self) -> str:
        if self.total_bytes is None:
            return f"{self.name} (memory {UNKNOWN})"
        free = f"{gib(self.free_bytes)} free" if self.free_bytes is not None else f"free {UNKNOWN}"
        return f"{self.name}: {gib(self.total_bytes)} total, {free}"


@dataclass
class SystemReport:
    app_version: str = UNKNOWN
    python: str = UNKNOWN
    os: str = UNKNOWN
    cpu: str = UNKNOWN
    memory_bytes: int | None = None
    packages: dict[str, str] = field(default_factory=dict)  # shown name -> version or "not installed"
    torch_build: str = UNKNOWN  # "CPU-only build", "CUDA 12.8 build", "ROCm 6.2 build", or why not known
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_note: str = ""  # what stands instead of the list: no GPU, Apple MPS, why it is not known
    workspace: str = ""
    workspace_free_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def text(self) -> str:
        return render(self)


def gib(n: int | None) -> str:
    return UNKNOWN if n is None else f"{n / 2**30:.1f} GiB"


def _safe(probe, default: str = UNKNOWN):
    """The probe's answer, or `default` with the reason when it raises: a report never crashes."""
    try:
        return probe()
    except Exception as exc:  # any failure of one fact degrades that fact only
        return f"{default} ({type(exc).__name__}: {exc})" if default == UNKNOWN else default


def package_version(*distributions: str) -> str:
    """The installed version of the first of `distributions` found, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    for name in distributions:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
        except Exception:  # a broken install's metadata
            return UNKNOWN
    return NOT_INSTALLED


def library_version(module: str, *distributions: str) -> str:
    """The version from the package metadata; where that is missing (a frozen build may leave it out), the
    loaded module's own `__version__`, else whether the module can be found at all. Nothing is imported."""
    found = package_version(*distributions)
    if found != NOT_INSTALLED:
        return found
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    return VERSION_UNKNOWN if spec is not None else NOT_INSTALLED


def app_version() -> str:
    found = package_version(APP_DISTRIBUTION)
    return found if found != NOT_INSTALLED else UNKNOWN


def _python() -> str:
    return f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"


def _os() -> str:
    return f"{platform.platform()} ({platform.machine() or UNKNOWN})"


def _cpu() -> str:
    cores = os.cpu_count()
    name = platform.processor() or ""
    return f"{cores or UNKNOWN} logical cores" + (f", {name}" if name else "")


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def existing_parent(path: Path) -> Path | None:
    """`path` itself or the nearest folder above it that exists (a new workspace is made on first use)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def free_disk(path: Path) -> int | None:
    try:
        where = existing_parent(Path(path).expanduser().absolute())
        return shutil.disk_usage(where).free if where is not None else None
    except OSError:
        return None


def _torch_facts(report: SystemReport, probe_gpus: bool) -> None:
    """The torch build and, when asked, the GPUs it sees with their memory (this starts CUDA)."""
    if report.packages.get("torch") == NOT_INSTALLED:
        report.torch_build = NOT_INSTALLED
        report.gpu_note = "none: torch is not installed"
        return
    try:
        import torch
    except Exception as exc:
        report.torch_build = f"unavailable: torch does not import ({type(exc).__name__}: {exc})"
        report.gpu_note = UNKNOWN
        return
    report.packages["torch"] = str(getattr(torch, "__version__", report.packages["torch"]))
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    report.torch_build = f"ROCm {hip} build" if hip else f"CUDA {cuda} build" if cuda else "CPU-only build"
    if not probe_gpus:
        return
    try:
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
    except Exception as exc:
        report.gpu_note = f"{UNKNOWN} (CUDA check failed: {type(exc).__name__}: {exc})"
        return
    for i in range(count):
        gpu = GpuInfo(i, _safe(lambda i=i: torch.cuda.get_device_name(i)))
        try:
            gpu.free_bytes, gpu.total_bytes = (int(n) for n in torch.cuda.mem_get_info(i))
        except Exception:
            try:
                gpu.total_bytes = int(torch.cuda.get_device_properties(i).total_memory)
            except Exception:
                pass
        report.gpus.append(gpu)
    if not count:
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and _safe(mps.is_available, default=False) is True:
            limit = _safe(lambda: int(torch.mps.recommended_max_memory()), default=None)
            report.gpu_note = "Apple GPU (MPS)" + (f", up to {gib(limit)} for tensors" if limit else "")
        else:
            report.gpu_note = "none that torch can use (training runs on the CPU)"
    try:
        from studio.engine.gpu_check import cpu_fallback_warning

        warning = cpu_fallback_warning(torch_facts=(bool(count), cuda, torch.__version__))
        if warning:
            report.warnings.append(warning)
    except Exception:
        pass


def collect(workspace: str | Path | None = None, *, probe_gpus: bool = True, probe_workspace: bool = True,
            import_torch: bool = True) -> SystemReport:
    """The report for this computer. `workspace` defaults to the one runs go to (the environment variable,
    else the platform's user data folder). `import_torch=False` gives only what needs no import."""
    report = SystemReport(app_version=app_version(), python=_safe(_python), os=_safe(_os), cpu=_safe(_cpu),
                          memory_bytes=_memory())
    report.packages = {shown: library_version(module, *dists) for shown, module, dists in LIBRARIES}
    if import_torch:
        _torch_facts(report, probe_gpus)
    elif report.packages["torch"] == NOT_INSTALLED:
        report.torch_build = NOT_INSTALLED
    if probe_workspace:
        if workspace is None:
            try:
                from studio.engine.runs import default_workspace

                workspace = default_workspace()
            except Exception as exc:
                report.workspace = f"{UNKNOWN} ({type(exc).__name__}: {exc})"
        if workspace is not None:
            report.workspace = str(Path(workspace).expanduser())
            report.workspace_free_bytes = free_disk(Path(workspace))
    return report


def _versions_lines(report: SystemReport) -> list[tuple[str, str]]:
    rows = [("Python", report.python)]
    for shown, version in report.packages.items():
        if shown == "torch" and version != NOT_INSTALLED and report.torch_build != UNKNOWN:
            version = f"{version} ({report.torch_build})"
        rows.append((shown, version))
    return rows


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]


def version_text(report: SystemReport | None = None) -> str:
    """`studio --version`: the app and library versions (and the torch build)."""
    report = report or collect(probe_gpus=False, probe_workspace=False)
    return "\n".join([f"Adapt Studio {report.app_version}", *_rows(_versions_lines(report))])


def render(report: SystemReport) -> str:
    """The report as plain text, one fact a line, ready to paste into a bug report."""
    rows = _versions_lines(report)
    rows += [("OS", report.os), ("CPU", report.cpu), ("Memory", gib(report.memory_bytes))]
    if report.gpus:
        rows += [(f"GPU {g.index}", g.describe()) for g in report.gpus]
    elif report.gpu_note:
        rows.append(("GPU", report.gpu_note))
    if report.workspace:
        free = report.workspace_free_bytes
        where = report.workspace
        if free is not None:
            exists = Path(where).exists()
            where += f" ({gib(free)} free{'' if exists else ' on its disk; the folder is made on first use'})"
        rows.append(("Workspace", where))
    lines = [f"Adapt Studio {report.app_version}", *_rows(rows)]
    lines += [f"Warning: {w}" for w in report.warnings]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(collect()))
