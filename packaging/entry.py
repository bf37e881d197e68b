"""Frozen entry point for the PyInstaller build of Adapt Studio.

In a frozen build ``sys.executable`` is the app binary itself, so when the app starts a training
worker as ``sys.executable -m studio.engine.worker RUN_DIR`` (studio/engine/supervisor.py) the
binary is called with ``-m studio.engine.worker RUN_DIR``. This script sends such calls to the
worker's ``main`` and everything else to ``studio.launcher.main`` (no arguments: the GUI; a sub-command: the
CLI).

It also calls ``multiprocessing.freeze_support()`` so that child processes that a library
starts through ``multiprocessing`` (datasets' ``num_proc``, torch DataLoader workers with the
spawn method) run their bootstrap code instead of opening a second window.

Run from a checkout it behaves the same: ``python packaging/entry.py -m studio.engine.worker RUN``.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

# `-m MODULE` targets the frozen binary accepts, as "module:function". Each function takes argv
# (the arguments after the module name) and returns an exit status.
MODULES: dict[str, str] = {
    "studio.engine.worker": "studio.engine.worker:main",
    "studio.cli": "studio.cli:main",
    "studio": "studio.launcher:main",
}
DEFAULT = "studio.launcher:main"


def _resolve(target: str) -> Callable[[list[str]], int]:
    import importlib

    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def dispatch(argv: Sequence[str]) -> int:
    """Run what ``argv`` (without the program name) asks for and return the exit status.

    ``-m studio.engine.worker RUN_DIR`` → ``studio.engine.worker.main([RUN_DIR])``;
    ``-m NAME`` for a name not in MODULES → exit status 2 with a message;
    anything else → ``studio.launcher.main(argv)`` (the window, or the CLI for a sub-command).
    """
    argv = list(argv)
    if argv and argv[0].startswith("-m"):
        if argv[0] == "-m":
            if len(argv) < 2:
                print("usage: adapt-studio -m MODULE [ARGS...]", file=sys.stderr)
                return 2
            module, rest = argv[1], argv[2:]
        else:  # "-mstudio.engine.worker", as python accepts it
            module, rest = argv[0][2:], argv[1:]
        target = MODULES.get(module)
        if target is None:
            print(f"adapt-studio: -m {module}: not a module this build can run "
                  f"(it runs: {', '.join(sorted(MODULES))})", file=sys.stderr)
            return 2
        # What `python -m` would show the module as its argv.
        sys.argv = [module, *rest]
        result = _resolve(target)(rest)
        return int(result or 0)
    result = _resolve(DEFAULT)(argv)
    return int(result or 0)


def main() -> None:
    import multiprocessing

    multiprocessing.freeze_support()
    sys.exit(dispatch(sys.argv[1:]))


if __name__ == "__main__":
    main()
