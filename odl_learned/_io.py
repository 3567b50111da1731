"""Atomic file writes: a file is either its old version or its complete new one.

Written here because the standard library has no atomic write: the content
goes to a temporary file in the target's folder, is flushed and ``fsync``-ed,
then moved over the target with :func:`os.replace` (atomic on POSIX and
Windows), and the folder is ``fsync``-ed. On any exception, Ctrl-C included,
the temporary file is removed and the old target stays as it was. Used for
checkpoints, weight files, reports, data caches and cached matrices.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ("atomic_write", "atomic_write_text", "atomic_write_json")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then move it to ``path``.

    Creates the folder if needed; returns ``path`` as a :class:`~pathlib.Path`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(Path(d) / "sub" / "a.bin", lambda f: f.write(b"abc"))
    ...     p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'abc', ['a.bin'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write_text(Path(d) / "a.txt", "hi").read_text()
    'hi'
    """
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any, **dump_options: Any) -> Path:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically.

    ``dump_options`` go to :func:`json.dumps` (e.g. ``default=str``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     json.loads(atomic_write_json(Path(d) / "r.json", {"psnr": 30.0}).read_text())
    {'psnr': 30.0}
    """
    return atomic_write_text(path, json.dumps(obj, indent=2, **dump_options) + "\n")
