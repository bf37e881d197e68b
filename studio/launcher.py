"""`studio`, the command a person types: with no arguments (or only window options such as --smoke-test, or
`gui`) it opens the application; with a sub-command it runs the command line (studio.cli), which never imports
Qt, so `studio train` works on a machine without a display or without the GUI libraries."""

from __future__ import annotations

import sys

CLI_FLAGS = ("--help", "-h", "--version")


def opens_window(argv: list[str]) -> bool:
    return not argv or argv[0] == "gui" or argv[0].startswith("--") and argv[0] not in CLI_FLAGS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if opens_window(argv):
        from studio.ui.app import main as gui_main

        return gui_main(argv[1:] if argv and argv[0] == "gui" else argv)
    from studio.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
