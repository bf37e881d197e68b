"""Where the shipped resources (starter model, sample data, icons) are, in a checkout or a frozen build."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("ADAPT_STUDIO_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def starter_model_dir() -> Path:
    return resources_dir() / "starter-model"


def sample_dataset() -> Path:
    return resources_dir() / "sample-instructions.json"
