"""The garbage collector runs in the GUI thread only (studio/ui/gc_guard.py): never by itself, and never in the
playground's generation thread, not even when a library there calls gc.collect() (accelerate does after loading
a checkpoint)."""

import gc
import threading
import weakref

import pytest
from PySide6.QtCore import QTimer

from studio.ui.gc_guard import GuiThreadGarbageCollector
from studio.ui.generation_thread import GenerationThread

NEVER = (10**9, 10**9, 10**9)  # thresholds no count reaches: only an explicit request collects


@pytest.fixture
def collector():
    gc.enable()
    guard = GuiThreadGarbageCollector(interval_ms=10)
    yield guard
    guard.uninstall()
    gc.disable()  # as tests/ui/conftest.py keeps it for the UI tests


class Finalised:
    """Garbage in a reference cycle, holding a Qt object made in the GUI thread (as a widget's helper would);
    records the thread it is finalised in."""

    threads: list[int] = []

    def __init__(self):
        self.me = self
        self.timer = QTimer()

    def __del__(self):
        Finalised.threads.append(threading.get_ident())


def make_garbage(n: int = 3) -> None:
    for _ in range(n):
        Finalised()


class LibraryCollectingThread(GenerationThread):
    """The generation thread, with one more job: what a library does in it, gc.collect()."""

    collected_here: int | None = None
    gc_enabled_here: bool | None = None

    def _do_library_collect(self) -> None:
        self.gc_enabled_here = gc.isenabled()
        self.collected_here = gc.collect()


def test_garbage_is_collected_by_the_gui_thread_timer_only(collector, qtbot):
    assert not gc.isenabled()  # no thread can start a collection on its own any more

    class Node:
        pass

    node = Node()
    node.me = node  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(node)
    del node
    collector.threshold = (0, 0, 0)
    qtbot.waitUntil(lambda: gone() is None, timeout=5000)


def test_a_collection_asked_for_in_the_generation_thread_happens_in_the_gui_thread(collector, qtbot):
    collector.threshold = NEVER
    Finalised.threads = []
    make_garbage()
    thread = LibraryCollectingThread()
    try:
        with qtbot.waitSignal(thread.job_done, timeout=30000):
            thread.submit("library_collect")
        assert thread.gc_enabled_here is False  # allocating in the thread cannot start a collection either
        assert thread.collected_here == 0  # the call collected nothing there
        qtbot.waitUntil(lambda: len(Finalised.threads) == 3, timeout=5000)  # the GUI thread's timer did
        assert set(Finalised.threads) == {threading.get_ident()}
    finally:
        thread.shutdown()


def test_a_real_model_load_and_generation_leave_collection_to_the_gui_thread(collector, tiny_llama, qtbot):
    """The generation thread's own jobs (loading a model, generating) with garbage waiting: whatever the
    libraries do in that thread, every cycle is finalised in the GUI thread."""
    from studio.engine.prompting.presets import Preset

    collector.threshold = NEVER
    Finalised.threads = []
    make_garbage()
    thread = GenerationThread()
    replies = []
    thread.reply.connect(lambda side, result: replies.append(result))
    try:
        with qtbot.waitSignal(thread.job_done, timeout=60000):
            thread.submit("load", model=str(tiny_llama), tuned=None, options={})
        make_garbage()
        preset = Preset(mode="completion")
        preset.sampling.max_new_tokens = 4
        with qtbot.waitSignal(thread.job_done, timeout=60000):
            thread.submit("generate", model=str(tiny_llama), tuned=None, options={}, preset=preset,
                          conversation=None, prompt="The capital", sides=["base"])
        assert replies and replies[0]["new_tokens"] > 0
        gc.collect()  # in the GUI thread, as the timer does (it may have done so already, on a library's request)
        assert len(Finalised.threads) == 6 and set(Finalised.threads) == {threading.get_ident()}
    finally:
        thread.shutdown()
