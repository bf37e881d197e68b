"""QSettings helpers: one place for the organisation/application names, the workspace and recent lists.

Tests (or a portable install) point the settings at an INI file with the environment variable
ADAPT_STUDIO_SETTINGS, so the user's own settings are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "AdaptStudio"
APPLICATION = "Adapt Studio"
SETTINGS_ENV = "ADAPT_STUDIO_SETTINGS"
WORKSPACE_KEY = "workspace"


def settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def value(key: str, default=None, type=None):
    s = settings()
    if type is None:
        return s.value(key, default)
    try:
        return s.value(key, default, type=type)
    except (TypeError, ValueError):
        return default


def set_value(key: str, val) -> None:
    s = settings()
    s.setValue(key, val)
    s.sync()


def workspace() -> Path:
    """The workspace: the environment variable wins, then the settings, then the platform default."""
    from studio.engine.runs import WORKSPACE_ENV, default_workspace

    if os.environ.get(WORKSPACE_ENV):
        return default_workspace()
    stored = value(WORKSPACE_KEY, "", str)
    return Path(stored).expanduser() if stored else default_workspace()


def set_workspace(path: str | Path) -> None:
    set_value(WORKSPACE_KEY, str(path))


def recent(key: str) -> list[str]:
    items = value(f"recent/{key}", [])
    if isinstance(items, str):  # QSettings returns a lone string for a one-item list in INI files
        items = [items]
    return [str(i) for i in (items or []) if i]


def add_recent(key: str, item: str, limit: int = 10) -> list[str]:
    items = [item] + [i for i in recent(key) if i != item]
    items = items[:limit]
    set_value(f"recent/{key}", items)
    return items


def last_dir(key: str, default: str = "") -> str:
    return value(f"last_dir/{key}", default, str) or default or str(Path.home())


def set_last_dir(key: str, path: str | Path) -> None:
    p = Path(path)
    set_value(f"last_dir/{key}", str(p if p.is_dir() else p.parent))
