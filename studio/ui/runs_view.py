"""Kept for the modules that import the Runs list from here; it lives in the package studio.ui.runs."""

from studio.ui.runs import RunsView

__all__ = ["RunsView"]
