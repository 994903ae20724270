"""py3langid's model, memory-mapped from a cache on disk instead of loaded into each process.

Loaded the usual way, the model is 76 MB of memory in every process that
detects a language: its transition table (37 MB) and feature weights (27 MB)
unpacked from a compressed file, plus lists of Python ints. Language
detection reads a sliver of it: the table rows of the states a text walks
through and the weights of the features it holds. Here the arrays are written
once, unpacked, to a cache directory and mapped read-only: the kernel loads
the pages that detection reads, shares them between the workers through the
page cache, and can drop them again under memory pressure.

The cache is `$MONITOR_CACHE_DIR`, else `$XDG_CACHE_HOME/statement-monitor`,
else `~/.cache/statement-monitor`, in a directory named after py3langid's
version and the model file's size and time. It is written atomically (a
temporary directory renamed into place) and checked once, when written: the
mapped model must classify sample texts exactly as the loaded one does. When
the cache cannot be written (a read-only home, for one) or fails that check,
the model is loaded in memory as py3langid does it; detection is the same
either way.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

__all__ = ["cache_dir", "load_identifier"]

_SAMPLES: Final = (  # the check of a newly written cache: one text per script, and mixed
    "The ministry announced today that the talks will resume next week in Geneva.",
    "Le ministère a annoncé aujourd'hui la reprise des négociations à Genève.",
    "Das Ministerium teilte heute mit, dass die Gespräche nächste Woche fortgesetzt werden.",
    "Министерство сообщило сегодня, что переговоры возобновятся на следующей неделе.",
    "وزارة الخارجية أعلنت اليوم استئناف المحادثات الأسبوع المقبل",
    "外交部今天宣布，谈判将于下周在日内瓦恢复。",
    "The statement, in English and en français, said: « nous condamnons ».",
)
_FILES: Final = ("nextmove.u32", "rowbase.u32", "output.i32", "ptc.npy", "pc.npy", "classes.txt")


def cache_dir() -> Path:
    """Where the unpacked model lives (see the module's docstring)."""
    configured = os.environ.get("MONITOR_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "statement-monitor"


def load_identifier() -> Any:
    """py3langid's `LanguageIdentifier` with normalised probabilities, mapped when it can be."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    model = MODEL_DIR / MODEL_FILE
    folder = cache_dir() / _model_key(model)
    if not folder.is_dir():
        with contextlib.suppress(OSError):
            _write_cache(LanguageIdentifier.from_model_file(model, norm_probs=True), folder)
    if folder.is_dir():
        with contextlib.suppress(OSError, ValueError):
            return _mapped(folder)
    return LanguageIdentifier.from_model_file(model, norm_probs=True)


def _model_key(model: Path) -> str:
    import py3langid

    stat = model.stat()
    return f"py3langid-{py3langid.__version__}-{stat.st_size}-{int(stat.st_mtime)}"


def _write_cache(loaded: Any, folder: Path) -> None:
    """Unpack `loaded`'s arrays into `folder`, if the mapped result classifies as it does."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".model-", dir=folder.parent))
    try:
        _write_array(scratch / "nextmove.u32", array("I", loaded.tk_nextmove))
        _write_array(scratch / "rowbase.u32", array("I", loaded._rowbase))
        _write_array(scratch / "output.i32", array("i", loaded.tk_output))
        np.save(scratch / "ptc.npy", np.ascontiguousarray(loaded.nb_ptc))
        np.save(scratch / "pc.npy", loaded.nb_pc)
        (scratch / "classes.txt").write_text("\n".join(loaded.nb_classes), encoding="utf-8")
        mapped = _mapped(scratch)
        if any(mapped.classify(text) != loaded.classify(text) for text in _SAMPLES):
            raise ValueError("the mapped model does not classify as the loaded one")
        scratch.chmod(0o755)  # mkdtemp's 0700 would hide it from a service run as another user
        scratch.rename(folder)  # atomic: another process sees all of it or none
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_array(path: Path, values: array[int]) -> None:
    with path.open("wb") as file:
        values.tofile(file)


def _mapped(folder: Path) -> Any:
    """A `LanguageIdentifier` over the arrays in `folder`, mapped read-only."""
    from py3langid.langid import LanguageIdentifier

    if not all((folder / name).is_file() for name in _FILES):
        raise ValueError(f"{folder} is not a complete model")
    classes = (folder / "classes.txt").read_text(encoding="utf-8").split("\n")
    for name in _FILES:
        _drop_from_page_cache(folder / name)
    weights = np.load(folder / "ptc.npy", mmap_mode="r")
    _reads_at_random(weights._mmap)
    identifier = LanguageIdentifier(
        weights,
        np.load(folder / "pc.npy"),
        classes,
        _view(folder / "nextmove.u32", "I"),
        _view(folder / "output.i32", "i"),
        norm_probs=True,
        tk_row=array("H"),  # the row offsets are mapped below instead
    )
    # py3langid walks the table with `nextmove[rowbase[state] + byte]` and reads
    # `output[state]`: a memoryview indexes like the list or array it replaces.
    identifier._rowbase = _view(folder / "rowbase.u32", "I")
    return identifier


def _view(path: Path, typecode: Literal["I", "i"]) -> memoryview[int]:
    with path.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    _reads_at_random(mapped)
    return memoryview(mapped).cast(typecode)


def _drop_from_page_cache(path: Path) -> None:
    """Evict the file's pages that no process maps (left by our own write or an earlier run).

    The kernel maps a faulting page's cached neighbours along with it: with the
    whole file cached, a few hundred classifications map most of the table. From
    a cold file, detection maps what it reads (6 MB for 50 texts, 34 MB for 339
    in 30 languages).
    """
    with contextlib.suppress(AttributeError, OSError):  # posix_fadvise: not everywhere
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def _reads_at_random(mapped: mmap.mmap) -> None:
    """No read-ahead: detection reads a row here and a row there, never a run of them."""
    with contextlib.suppress(AttributeError, OSError):  # madvise: Linux, Python >= 3.8
        mapped.madvise(mmap.MADV_RANDOM)
