"""Seeding, saving and restoring the random generators a training run uses.

Three global generators can feed a training step: torch's (CPU and each CUDA
device; dropout, random augmentation in the main process), NumPy's legacy
global generator and Python's :mod:`random`. :func:`get_rng_state` captures all
of them in a form :func:`torch.load` accepts with ``weights_only=True``
(tensors, ints, floats, tuples, dicts), :func:`set_rng_state` puts them back,
and :func:`seed_everything` seeds them. :func:`derive_seed` makes independent
seeds for separate purposes (sample order, per-process generators) from one
user seed.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ("derive_seed", "seed_everything", "get_rng_state", "set_rng_state")


def derive_seed(seed: int, *keys: int) -> int:
    """Return a 63-bit seed derived from ``seed`` and the integer ``keys``.

    Different ``keys`` give statistically independent streams
    (:class:`numpy.random.SeedSequence`), the same ones the same seed.

    Examples
    --------
    >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    True
    >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 3)
    False
    """
    words = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2 ** 63 - 1)


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), NumPy's global generator and Python's :mod:`random`.

    Examples
    --------
    >>> seed_everything(3); a = torch.rand(2)
    >>> seed_everything(3); torch.equal(a, torch.rand(2))
    True
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Return the states of the torch, CUDA, NumPy and Python global generators.

    The CUDA states are included only where CUDA has been initialised (so a
    CPU run never initialises CUDA).

    Examples
    --------
    >>> state = get_rng_state()
    >>> a = torch.rand(3)
    >>> set_rng_state(state)
    >>> torch.equal(a, torch.rand(3))
    True
    """
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": (version, tuple(internal), gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states captured by :func:`get_rng_state`.

    CUDA states are restored for as many devices as both the state and this
    machine have.

    Parameters
    ----------
    state : dict
        The output of :func:`get_rng_state` (possibly after a round trip
        through ``torch.save`` and ``torch.load(..., weights_only=True)``).

    Examples
    --------
    >>> import io
    >>> buffer = io.BytesIO()
    >>> torch.save(get_rng_state(), buffer)
    >>> first = torch.rand(2), np.random.rand(), random.random()
    >>> _ = buffer.seek(0)
    >>> set_rng_state(torch.load(buffer, weights_only=True))
    >>> again = torch.rand(2), np.random.rand(), random.random()
    >>> torch.equal(first[0], again[0]), first[1:] == again[1:]
    (True, True)
    """
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np_state["key"].cpu().numpy().astype(np.uint32),
                  "pos": int(np_state["pos"])},
        "has_gauss": int(np_state["has_gauss"]),
        "gauss": float(np_state["gauss"]),
    })
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        for device, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)
