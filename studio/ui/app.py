"""`studio` (no arguments) opens the application; `studio --smoke-test` opens the window offscreen,
checks the tabs exist, prints OK and exits."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    smoke = "--smoke-test" in argv
    if smoke:
        argv.remove("--smoke-test")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from studio.ui import settings

    app = QApplication.instance() or QApplication(["adapt-studio", *argv])
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationName(settings.APPLICATION)
    app.setApplicationDisplayName("Adapt Studio")
    from PySide6.QtGui import QIcon

    from studio.resources import resources_dir

    icon = resources_dir() / "icons" / "256x256" / "adapt-studio.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))

    from studio.ui.gc_guard import GuiThreadGarbageCollector
    from studio.ui.main_window import TAB_TITLES, MainWindow

    GuiThreadGarbageCollector(app)  # parented to the app: lives as long as it

    window = MainWindow()
    window.show()
    if smoke:
        from studio.resources import starter_model_dir

        titles = tuple(window.tabs.tabText(i) for i in range(window.tabs.count()))
        starter = starter_model_dir()
        has_starter = (starter / "config.json").is_file() and any(starter.glob("*.safetensors"))
        ok = titles == TAB_TITLES and has_starter
        print("OK" if ok else "FAIL")
        print(f"tabs: {', '.join(titles)}" + ("" if titles == TAB_TITLES else f" (expected {TAB_TITLES})"))
        print(f"starter model: {starter} ({'found' if has_starter else 'MISSING'})")
        print(f"torch imported: {'torch' in sys.modules}")
        window.close()
        return 0 if ok else 1
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
