import gc
import weakref


def test_garbage_is_collected_by_the_gui_thread_timer_only(qtbot):
    from studio.ui.gc_guard import GuiThreadGarbageCollector

    gc.enable()
    collector = GuiThreadGarbageCollector(interval_ms=10)
    assert not gc.isenabled()  # no thread can start a collection on its own any more

    class Node:
        pass

    node = Node()
    node.me = node  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(node)
    del node
    collector.threshold = (0, 0, 0)
    qtbot.waitUntil(lambda: gone() is None, timeout=5000)
    collector.timer.stop()
