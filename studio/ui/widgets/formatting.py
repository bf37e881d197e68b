"""Small text formats shared by the tabs."""

from __future__ import annotations

import math


def fmt_duration(seconds) -> str:
    """Seconds as m:ss or h:mm:ss; a dash when unknown (no ETA before the first steps)."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "—"
    s = int(max(0.0, float(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
