"""Atomic checkpoint files.

A checkpoint is one ``torch.save`` file holding a ``dict``; :class:`Trainer`'s
holds the model, optimiser, learning-rate scheduler and ``GradScaler`` states,
the step, the data-sampler position, the random generator states, the loss
history and the config (see :meth:`Trainer.state_dict`). Next to ``NAME.pt``
goes ``NAME.json``, the config and step in plain text, so that a person (or a
script without torch) can tell what a checkpoint is.

Every file is written *atomically*: to a temporary file in the same directory,
flushed and ``fsync``-ed, then moved over the target with :func:`os.replace`
(atomic on POSIX and Windows), and the directory is ``fsync``-ed. A crash, a
full disk or a Ctrl-C during the write leaves the previous checkpoint intact and
no partial file behind.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``: only
tensors and plain Python containers are unpickled, never arbitrary objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from odl_learned._io import atomic_write, atomic_write_text

__all__ = ("save_checkpoint", "load_checkpoint", "atomic_torch_save", "checkpoint_json_path")

#: keys of a checkpoint copied into its JSON sidecar when present
_JSON_KEYS = ("format", "step", "config", "sampler", "best")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically (temporary file, ``fsync``, ``os.replace``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_torch_save({"w": torch.ones(2)}, Path(d) / "w.pt")
    ...     torch.load(p, weights_only=True)["w"].tolist(), sorted(os.listdir(d))
    ([1.0, 1.0], ['w.pt'])
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def checkpoint_json_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of the checkpoint ``path``: ``NAME.pt`` -> ``NAME.json``.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> checkpoint_json_path("runs/lpd/last.pt").as_posix()
    'runs/lpd/last.json'
    """
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write the checkpoint ``state`` to ``path`` atomically, with a JSON sidecar.

    Parameters
    ----------
    path : str or os.PathLike
        Target file (conventionally ``*.pt``); parent directories are made.
    state : mapping
        Tensors, numbers, strings and (nested) lists, tuples and dicts of
        them. Its JSON-able entries ``format``, ``step``, ``config``,
        ``sampler`` and ``best``, where present, are also written to
        :func:`checkpoint_json_path` ``(path)``, after the checkpoint itself.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_checkpoint(Path(d) / "last.pt", {"step": 3, "config": {"seed": 0},
    ...                                               "w": torch.zeros(2)})
    ...     state = load_checkpoint(p)
    ...     state["step"], sorted(os.listdir(d))
    (3, ['last.json', 'last.pt'])
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping, got {type(state).__name__}")
    state = dict(state)
    path = atomic_torch_save(state, path)
    sidecar = {key: state[key] for key in _JSON_KEYS if key in state}
    if sidecar:
        try:
            text = json.dumps(sidecar, indent=2, sort_keys=True, allow_nan=True) + "\n"
        except (TypeError, ValueError):
            text = None  # not JSON-able: the checkpoint itself is complete without it
        if text is not None:
            atomic_write_text(checkpoint_json_path(path), text)
    return path


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
    map_location : str or torch.device, optional
        Where tensors are loaded (default: the CPU; :class:`Trainer` moves
        them where they belong).

    Returns
    -------
    state : dict

    Raises
    ------
    FileNotFoundError
        No file at ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_checkpoint(Path(d) / "last.pt", {"step": 7, "w": torch.arange(3.0)})
    ...     state = load_checkpoint(p)
    >>> state["step"], state["w"].tolist(), state["w"].device.type
    (7, [0.0, 1.0, 2.0], 'cpu')
    >>> load_checkpoint("no/such/file.pt")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint at 'no/such/file.pt'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a checkpoint dict")
    return state
