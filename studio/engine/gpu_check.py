"""Warn loudly when the app trains on the CPU on a computer that has an NVIDIA GPU.

The usual cause is a CPU-only build of torch (the default wheel on some platforms, or a desktop
build made on a machine with the CPU wheel); the other is a driver too old for torch's CUDA.
No Qt here, and torch is imported only when `cpu_fallback_warning()` is called, so importing this
module costs nothing at window construction.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NVIDIA_PROC = Path("/proc/driver/nvidia/version")


def nvidia_gpu_present() -> bool:
    """True when this computer shows signs of an NVIDIA GPU with a driver: the kernel module's
    /proc entry (Linux) or an `nvidia-smi` on PATH (Linux and Windows)."""
    if NVIDIA_PROC.exists():
        return True
    if shutil.which("nvidia-smi"):
        return True
    if os.name == "nt":
        system = Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvidia-smi.exe"
        return system.exists()
    return False


def _torch_facts() -> tuple[bool, str | None, str]:
    import torch

    return torch.cuda.is_available(), torch.version.cuda, torch.__version__


def cpu_fallback_warning(*, gpu_present: bool | None = None, torch_facts=None) -> str | None:
    """A warning a person can act on when an NVIDIA GPU is present but torch cannot use it; else None.

    `gpu_present` and `torch_facts` (a (cuda_available, cuda_version, torch_version) tuple) can be
    passed in to test without a GPU; by default they are found out on this computer.
    """
    if gpu_present is None:
        gpu_present = nvidia_gpu_present()
    if not gpu_present:
        return None
    cuda_available, cuda_version, torch_version = torch_facts if torch_facts is not None else _torch_facts()
    if cuda_available:
        return None
    if not cuda_version:
        return (f"This computer has an NVIDIA GPU, but this copy of Adapt Studio carries a CPU-only build of "
                f"torch ({torch_version}), so training will run on the CPU — many times slower. "
                "Install the CUDA build of Adapt Studio, or in a Python install run "
                "`pip install torch --index-url https://download.pytorch.org/whl/cu128`.")
    return (f"This computer has an NVIDIA GPU and torch {torch_version} was built for CUDA {cuda_version}, "
            "but CUDA is not available, so training will run on the CPU — many times slower. "
            f"The NVIDIA driver is probably older than CUDA {cuda_version} needs: update it (`nvidia-smi` "
            "shows the driver and the highest CUDA it supports), or check CUDA_VISIBLE_DEVICES.")


if __name__ == "__main__":
    print(cpu_fallback_warning() or "ok: no CPU fallback on a GPU machine")
