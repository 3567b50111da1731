"""Input checks shared by the whole package.

Every public function checks its input once, at the top, with these helpers, so
that bad input raises the same kind of clear error everywhere: a ``ValueError``
or ``TypeError`` naming what was expected and what was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = (
    "check_choice",
    "check_finite",
    "check_positive",
    "check_shape_suffix",
    "check_in_space",
)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``, else raise.

    Examples
    --------
    >>> check_choice("geometry", "Parallel", ("parallel", "fan"))
    'parallel'
    >>> check_choice("geometry", "cone", ("parallel", "fan"))
    Traceback (most recent call last):
    ...
    ValueError: unknown geometry 'cone'; expected one of 'parallel', 'fan'
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; expected one of {expected}")
    return value.lower()


def check_positive(name: str, value: Any, *, integer: bool = False) -> Any:
    """Return ``value`` if it is a positive (integer) number, else raise.

    Examples
    --------
    >>> check_positive("num_angles", 30, integer=True)
    30
    >>> check_positive("num_angles", 0, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: num_angles must be a positive integer, got 0
    """
    kind = "integer" if integer else "number"
    bad_type = not isinstance(value, (int, np.integer) if integer else (int, float, np.number))
    if bad_type or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive {kind}, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}")
    return value


def _as_array(data: Any) -> np.ndarray | torch.Tensor:
    if hasattr(data, "space") and hasattr(data.space, "is_power_space"):  # product-space element
        return torch.stack([torch.as_tensor(_as_array(part)) for part in data])
    if isinstance(data, torch.Tensor):
        return data.detach()
    if hasattr(data, "asarray") and hasattr(data, "space"):
        data = data.data
        return data.detach() if isinstance(data, torch.Tensor) else np.asarray(data)
    return np.asarray(data)


def check_finite(name: str, data: Any) -> None:
    """Raise ``ValueError`` if ``data`` holds NaN or Inf.

    ``data`` may be a NumPy array, a torch tensor or an ODL element.

    Examples
    --------
    >>> check_finite("y", np.array([1.0, np.nan]))
    Traceback (most recent call last):
    ...
    ValueError: y contains NaN or Inf values; expected finite data
    """
    arr = _as_array(data)
    finite = torch.isfinite(arr).all().item() if isinstance(arr, torch.Tensor) else np.isfinite(arr).all()
    if not finite:
        raise ValueError(f"{name} contains NaN or Inf values; expected finite data")


def check_shape_suffix(name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``shape`` ends with ``expected``.

    Used for batched tensors ``(B, C, *expected)``.

    Examples
    --------
    >>> check_shape_suffix("x", (4, 1, 8, 8), (8, 8))
    >>> check_shape_suffix("x", (4, 1, 8, 9), (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: x has shape (4, 1, 8, 9); expected (..., 8, 8)
    """
    shape = tuple(shape)
    expected = tuple(expected)
    n = len(expected)
    if len(shape) < n or shape[len(shape) - n:] != expected:
        suffix = ", ".join(str(s) for s in expected)
        raise ValueError(f"{name} has shape {shape}; expected (..., {suffix})")


def check_in_space(name: str, x: Any, space: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is an element of the ODL ``space``.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [1, 1], (4, 4))
    >>> check_in_space("x", space.zero(), space)
    >>> check_in_space("x", np.zeros((4, 4)), space)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: x must be an element of uniform_discr(...); got ndarray. Use `space.element(array)` ...
    """
    if x not in space:
        raise TypeError(
            f"{name} must be an element of {space!r}; got {type(x).__name__}. "
            "Use `space.element(array)` to make one from an array."
        )
