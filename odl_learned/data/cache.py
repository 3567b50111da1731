"""A small on-disk cache of NumPy arrays keyed by the settings that made them.

Layout: ``root/<name>-<key>/`` holds one ``<array>.npy`` per array and a
``settings.json`` with the settings, where ``key`` is a hash of the settings
(:func:`settings_key`). Different settings therefore never share a folder, and
a folder is trusted only if its ``settings.json`` equals the settings asked
for. Writing is atomic: arrays are filled in temporary files (memory-mapped,
so they need not fit in memory) that are renamed with :func:`os.replace` once
complete, and ``settings.json`` is written last, so an interrupted run leaves
no folder that looks complete. Reading memory-maps the arrays
(``np.load(mmap_mode='r')``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from odl_learned._io import atomic_write_text

__all__ = ("jsonable", "settings_key", "cache_folder", "load_arrays", "writing_arrays")

SETTINGS_FILE = "settings.json"


def jsonable(value: Any, name: str = "settings") -> Any:
    """Return ``value`` with tuples as lists and NumPy scalars as Python numbers.

    Raises ``TypeError`` naming the offending entry for anything JSON cannot
    hold exactly (arrays, functions, objects).

    Examples
    --------
    >>> jsonable({"shape": (2, 3), "level": np.float32(0.5)})
    {'shape': [2, 3], 'level': 0.5}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{name} must hold only JSON values (dict, list, str, number, bool, None), "
                    f"got {type(value).__name__}")


def _canonical(settings: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(settings), sort_keys=True, separators=(",", ":"))


def settings_key(settings: Mapping[str, Any]) -> str:
    """Return a 16-character hash of ``settings`` (order of keys does not matter).

    Examples
    --------
    >>> settings_key({"a": 1, "b": 2}) == settings_key({"b": 2, "a": 1})
    True
    >>> len(settings_key({"a": 1}))
    16
    """
    return hashlib.sha256(_canonical(settings).encode()).hexdigest()[:16]


def cache_folder(root: str | os.PathLike, settings: Mapping[str, Any], name: str = "arrays") -> Path:
    """Return the folder ``root/<name>-<settings_key(settings)>`` (not created).

    Examples
    --------
    >>> cache_folder("/tmp/cache", {"n": 3}, "pairs").name.startswith("pairs-")
    True
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "arrays"
    return Path(root) / f"{safe}-{settings_key(settings)}"


def load_arrays(folder: str | os.PathLike, settings: Mapping[str, Any],
                names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Memory-map the arrays ``names`` of ``folder`` if it was written with ``settings``.

    Returns ``None`` if ``settings.json`` is missing or differs, or if an
    array is missing or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with writing_arrays(folder, {"x": ((2, 3), "float32")}, {"n": 2}) as out:
    ...     out["x"][:] = 1.0
    >>> float(load_arrays(folder, {"n": 2}, ("x",))["x"].sum())
    6.0
    >>> load_arrays(folder, {"n": 3}, ("x",)) is None
    True
    """
    folder = Path(folder)
    try:
        stored = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if stored != json.loads(_canonical(settings)):
        return None
    arrays = {}
    for name in names:
        try:
            arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r")
        except (OSError, ValueError):
            return None
    return arrays


@contextmanager
def writing_arrays(folder: str | os.PathLike, specs: Mapping[str, tuple[tuple[int, ...], Any]],
                   settings: Mapping[str, Any]) -> Iterator[dict[str, np.ndarray]]:
    """Yield writable memory-mapped arrays; on success publish them atomically.

    Parameters
    ----------
    folder : path
        Destination folder (created if needed).
    specs : dict
        ``name -> (shape, dtype)`` of each array.
    settings : dict
        Written to ``settings.json`` after all arrays are in place.

    Notes
    -----
    The arrays live in temporary files in ``folder`` while the block runs;
    they are flushed and renamed to ``<name>.npy`` with :func:`os.replace`
    when it ends normally, and deleted if it raises (including
    ``KeyboardInterrupt``).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with writing_arrays(folder, {"y": ((4,), "complex64")}, {"k": "v"}) as out:
    ...     out["y"][:] = 1j
    >>> sorted(p.name for p in folder.iterdir())
    ['settings.json', 'y.npy']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = _canonical(settings)
    (folder / SETTINGS_FILE).unlink(missing_ok=True)  # the folder is incomplete until the end
    temps: dict[str, Path] = {}
    arrays: dict[str, np.ndarray] = {}
    try:
        for name, (shape, dtype) in specs.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".npy.tmp")
            os.close(fd)
            temps[name] = Path(tmp)
            arrays[name] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype),
                                                     shape=tuple(shape))
        yield arrays
        for name, arr in arrays.items():
            arr.flush()
        arrays.clear()  # close the memory maps before renaming (needed on Windows)
        for name, tmp in temps.items():
            os.replace(tmp, folder / f"{name}.npy")
        temps.clear()
        atomic_write_text(folder / SETTINGS_FILE, text)
    finally:
        arrays.clear()
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
