"""What a tab that trains shares: its RunPanel wired to the tab's start, resume and form, and the panel's
widgets under the names the tab's users (the main window, tests) read."""

from __future__ import annotations

from pathlib import Path

from studio.engine.errors import StudioError


CONFIG_FILTER = "Run config (*.yaml *.yml *.json);;All files (*)"


class RunTab:
    """Mixin for a QWidget tab holding `self.panel` (a RunPanel). The tab provides: TASK ("sft"), CONFIG_CLASS,
    RUN_WORDS, start(), config(), set_config(cfg), _set_running(bool) (enable/disable its form) and the signals
    run_started, run_ended."""

    TASK = ""
    CONFIG_CLASS: type = object
    RUN_WORDS = "a run"  # what the tab's config describes, in "… is not a fine-tuning run"
    CLI_COMMAND = "studio train"
    # Checks whose findings the tab shows in its own widgets (the dataset panel, the corpus summary).
    PREFLIGHT_SHOWN_ELSEWHERE: tuple[str, ...] = ("data",)

    def _connect_panel(self) -> None:
        p = self.panel
        for name in ("start_button", "stop_button", "progress", "status_label", "error_panel", "result_panel",
                     "loss_plot", "log_view"):
            setattr(self, name, getattr(p, name))
        self.result_label = p.result_panel.label
        p.start_requested.connect(self.start)
        p.resume_requested.connect(self.resume)
        p.run_started.connect(self.run_started)
        p.run_ended.connect(self.run_ended)
        p.running_changed.connect(self._set_running)

    def _config_buttons(self, save_tip: str):
        """Save config… and Load config… in a row (self.save_button, self.load_button)."""
        from PySide6.QtWidgets import QHBoxLayout, QPushButton

        self.save_button = QPushButton("Save config…")
        self.save_button.setToolTip(save_tip)
        self.save_button.clicked.connect(self.save_config_dialog)
        self.load_button = QPushButton("Load config…")
        self.load_button.clicked.connect(self.load_config_dialog)
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        row.addStretch(1)
        return row

    def _place_beside_panel(self, left) -> None:
        """The tab's layout: what to run on the left (two fifths), the run panel on the right; its shortcuts."""
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QSplitter, QVBoxLayout

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.panel.install_shortcuts(self)

    # -- config files ------------------------------------------------------------------------------
    def save_config_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from studio.engine.config import save_config
        from studio.ui import settings

        try:
            cfg = self.config()
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the config", str(
            Path(settings.last_dir("config")) / f"{cfg.name}.yaml"), CONFIG_FILTER)
        if path:
            settings.set_last_dir("config", path)
            save_config(cfg, path)
            self.panel.status_label.setText(f"Saved {path} — run it with: {self.CLI_COMMAND} {path}")

    def load_config_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from studio.ui import settings

        path, _ = QFileDialog.getOpenFileName(self, "Load a config", settings.last_dir("config"), CONFIG_FILTER)
        if path:
            settings.set_last_dir("config", path)
            self.load_config_file(path)

    def load_config_file(self, path) -> bool:
        from studio.engine.config import load_config

        try:
            cfg = load_config(path)
        except StudioError as err:
            self.error_panel.show_exception(err)
            return False
        if not isinstance(cfg, self.CONFIG_CLASS):
            self.error_panel.show_error("bad_config", f"{path} is a '{cfg.task}' run, not {self.RUN_WORDS}.",
                                        "Open it in the tab for that kind of run.")
            return False
        self.error_panel.clear()
        self.set_config(cfg)
        return True

    # -- the live pre-flight check -----------------------------------------------------------------
    def _init_preflight(self) -> None:
        from studio.ui.preflight_watch import PreflightWatch

        self.preflight_watch = PreflightWatch(self)
        self.preflight_watch.finished.connect(self._on_preflight)

    def _check_live(self) -> None:
        """Check the tab's config as it is now (debounced, off the GUI thread)."""
        from studio.ui import settings

        try:
            cfg = self.config()
        except StudioError:
            self.panel.checks_view.show_report(None)  # the form marks its own bad field
            return
        self.preflight_watch.request(cfg, settings.workspace())

    def preflight_problem(self) -> str | None:
        """The first error of the live check that keeps Start disabled (model code and pickle weights are
        asked about when Start is pressed instead)."""
        try:
            report = self.preflight_watch.report_for(self.config())
        except StudioError as err:
            return err.message
        blocking = report.blocking(will_ask_about_safety=True) if report is not None else []
        return blocking[0].message if blocking else None

    def _on_preflight(self, report) -> None:
        self.panel.checks_view.show_report(report, self.PREFLIGHT_SHOWN_ELSEWHERE)
        self._update_start()

    @property
    def engine(self):
        return self.panel.engine

    @property
    def run_dir(self) -> Path | None:
        return self.panel.run_dir

    @property
    def final_event(self) -> dict | None:
        return self.panel.final_event

    def is_running(self) -> bool:
        return self.panel.is_running()

    def stop(self) -> None:
        self.panel.stop()

    def kill(self) -> None:
        self.panel.kill()

    def resume(self, run_dir) -> bool:
        """Continue a stopped or crashed run from its last complete checkpoint, with its own settings."""
        from studio.engine.resume import resume_config

        if self.panel.is_running():
            return False
        try:
            cfg = resume_config(Path(run_dir))
        except StudioError as err:
            self.error_panel.show_exception(err)
            return False
        self.set_config(cfg)
        return self.panel.launch(cfg, check_model=bool(getattr(cfg, "model", ""))) is not None

    def attach(self, run_dir: Path) -> None:
        """Show a run whose worker outlived an earlier window, with its settings in the form."""
        from studio.engine.config import load_config

        if self.panel.is_running():
            return
        try:
            self.set_config(load_config(Path(run_dir) / "config.yaml"))
        except StudioError as err:
            self.error_panel.show_exception(err)
        self.panel.attach(Path(run_dir))
