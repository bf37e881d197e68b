"""What the pre-flight check keeps between calls: the last tokenizers and parsed datasets, keyed by the
files' identity (path, size, modification time), so a check repeated as the person edits the form does not
read the same files again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

KEEP = 4  # entries of each kind; a few models and files are compared at a time, not more
_lock = threading.Lock()
_tokenizers: OrderedDict = OrderedDict()
_datasets: OrderedDict = OrderedDict()


def file_identity(path: Path) -> tuple:
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return (str(path), None, None)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _folder_identity(folder: Path) -> tuple:
    folder = Path(folder)
    try:
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in (".json", ".model", ".txt"))
    except OSError:
        files = []
    return (str(folder.resolve()),) + tuple(file_identity(f) for f in files)


def _remember(cache: OrderedDict, key, make):
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()  # outside the lock: loading may take seconds and must not block other checks
    with _lock:
        cache[key] = value
        while len(cache) > KEEP:
            cache.popitem(last=False)
    return value


def cached_tokenizer(path: Path, trust_remote_code: bool = False):
    from studio.engine.models import load_tokenizer

    def load():
        tokenizer = load_tokenizer(Path(path), trust_remote_code)
        # The check measures lengths on purpose; transformers' "longer than the maximum" warning is noise here.
        tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True
        return tokenizer

    return _remember(_tokenizers, (_folder_identity(path), trust_remote_code), load)


def cached_conversations(path: str, fmt: str = "auto", mapping: dict | None = None, **options):
    """The conversations of a data file as a run would read them (formats.to_conversations)."""
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import to_conversations

    key = (file_identity(Path(path)), fmt, tuple(sorted((mapping or {}).items())),
           tuple(sorted((k, repr(v)) for k, v in options.items())))
    return _remember(_datasets, key, lambda: to_conversations(read_records(path), fmt, mapping or {}, **options))


def cached_heldout(path: str, fmt: str = "auto", mapping: dict | None = None, kind: str = "auto"):
    """An evaluation's held-out file as the evaluation reads it (evaluate.heldout.read_heldout)."""
    from studio.engine.evaluate.heldout import read_heldout

    key = ("heldout", file_identity(Path(path)), fmt, tuple(sorted((mapping or {}).items())), kind)
    return _remember(_datasets, key, lambda: read_heldout(path, fmt, mapping or {}, kind))


def cached_pool(path: str, kind: str):
    """An evaluation's in-context examples as the evaluation reads them (evaluate.recipe.read_pool)."""
    from studio.engine.evaluate.recipe import read_pool

    return _remember(_datasets, ("pool", file_identity(Path(path)), kind), lambda: read_pool(path, kind))
