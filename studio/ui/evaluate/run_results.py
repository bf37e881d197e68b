"""What the Evaluate tab does with an evaluation's results: a mixin of EvaluateTab (it uses the tab's run panel,
results view and examples view). The results are read from the run folder's results.json and examples.jsonl
(studio.engine.evaluate.results) after each `scored` event and at the end; an evaluation opened from the Runs
list shows its saved results, and one still going is followed live."""

from __future__ import annotations

from pathlib import Path

from studio.engine.config import load_config
from studio.engine.errors import StudioError

LOG, HELDOUT, RESULTS, EXAMPLES = 0, 1, 2, 3  # the pages of the tab's run panel


class RunResults:
    """Needs: panel (RunPanel), results_view, examples_view, error_panel, shown_run, results_shown (Signal),
    set_config(cfg) and attach(run_dir) (RunTab)."""

    def _on_run_started(self, run_dir) -> None:
        self.shown_run = Path(run_dir)
        self.results_view.clear("<b>Scoring…</b> Each candidate's row appears here as soon as it is scored.")
        self.examples_view.clear()

    def _on_event(self, ev: dict) -> None:
        if ev.get("type") == "scored" and self.panel.run_dir is not None:
            first = not self.results_view.results
            self.show_run_results(self.panel.run_dir)
            if first and self.panel.tabs.currentIndex() == LOG:
                self.panel.tabs.setCurrentIndex(RESULTS)

    def _on_run_ended(self, final: dict) -> None:
        if self.panel.run_dir is not None and self.show_run_results(self.panel.run_dir):
            self.panel.tabs.setCurrentIndex(RESULTS)

    def show_run_results(self, run_dir: Path) -> bool:
        """Show an evaluation folder's results.json and examples.jsonl; False when it has none yet. While its
        own run goes on, the figures of the `scored` events stand in for a results.json not written yet."""
        from studio.engine.evaluate.results import load_examples, load_results
        from studio.engine.runs import read_run_config

        run_dir = Path(run_dir)
        try:
            results = load_results(run_dir)
        except StudioError:
            scored = self.panel.state.scored if run_dir == self.panel.run_dir else []
            if not scored:
                return False
            results = {"complete": False, "candidates": list(scored)}
        self.shown_run = run_dir
        name = read_run_config(run_dir).get("name") or run_dir.name
        self.results_view.show_results(results, f"{name} — {run_dir}")
        self.examples_view.set_examples(load_examples(run_dir), results.get("candidates", []))
        self.results_shown.emit()
        return True

    def open_run(self, run_dir) -> None:
        """An evaluation chosen in the Runs list: its settings in the form and its saved results (a run still
        going is followed live)."""
        from studio.engine.runs import worker_alive

        run_dir = Path(run_dir)
        if worker_alive(run_dir) and not self.panel.is_running():
            self.attach(run_dir)
            return
        if not self.panel.is_running():
            try:
                self.set_config(load_config(run_dir / "config.yaml"))
            except StudioError as err:
                self.error_panel.show_exception(err)
        if self.show_run_results(run_dir):
            self.panel.tabs.setCurrentIndex(RESULTS)
            self.panel.set_hint("")
            if not self.panel.is_running():  # the bar shows this saved evaluation, not an empty run
                self.panel.progress.setRange(0, 1)
                self.panel.progress.setValue(1)
                self.panel.progress.setFormat(f"saved results: {run_dir.name}")
        else:
            self.results_view.clear(f"<b>{run_dir.name} has no results:</b> it ended before the first candidate "
                                    "was scored (the Runs list shows its status, and why it failed).")
            self.examples_view.clear()
            self.panel.tabs.setCurrentIndex(RESULTS)

