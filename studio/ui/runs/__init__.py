"""The Runs list: every run of the workspace, its curves and config, and what can be done with it."""

from studio.ui.runs.view import RunsView

__all__ = ["RunsView"]
