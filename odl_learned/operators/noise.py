"""Seeded noise models for simulated measurement data.

Every function takes the noise-free data ``y`` as an ODL element, a NumPy array
or a torch tensor (possibly a batch) and returns noisy data of the same kind,
shape and dtype (an element of the same space for ODL input). Noise is drawn
from ``numpy.random.default_rng(seed)`` for NumPy data and NumPy-backed ODL
elements and from a ``torch.Generator`` seeded with ``seed`` (on the tensor's
device) for torch data, so the same seed gives the same noise. NumPy and torch
draws differ from each other.

* :func:`gaussian_noise`: white Gaussian noise with standard deviation
  ``relative_level * mean(|y|)`` (the CT convention "5 % of mean ``|A x|``").
* :func:`complex_gaussian_noise`: circularly symmetric complex Gaussian noise
  for MRI k-space.
* :func:`poisson_noise`: CT photon-counting noise on the pre-log data,
  returned as post-log line integrals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from odl_learned._checks import check_finite, check_positive

__all__ = ("gaussian_noise", "complex_gaussian_noise", "poisson_noise")

Data = TypeVar("Data")


# --- helpers ------------------------------------------------------------------------------


def _is_element(y: Any) -> bool:
    return hasattr(y, "space") and hasattr(y, "data")


def _apply(y: Data, noisy: Callable[[np.ndarray | torch.Tensor], np.ndarray | torch.Tensor]) -> Data:
    """Apply ``noisy`` to the array behind ``y`` and return the result as ``y``'s kind."""
    if _is_element(y):
        return y.space.element(noisy(y.data))
    if isinstance(y, torch.Tensor):
        return noisy(y)
    return noisy(np.asarray(y))


def _check_nonneg_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_level(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a non-negative number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def _check_batch_ndim(y: Any, batch_ndim: Any) -> int:
    if isinstance(batch_ndim, bool) or not isinstance(batch_ndim, (int, np.integer)) or batch_ndim < 0:
        raise TypeError(f"batch_ndim must be a non-negative integer, got {batch_ndim!r}")
    if batch_ndim and _is_element(y):
        raise ValueError("batch_ndim must be 0 for an ODL element (it has no batch axes)")
    ndim = y.ndim if isinstance(y, torch.Tensor) else np.ndim(y.data if _is_element(y) else y)
    if batch_ndim >= max(ndim, 1):
        raise ValueError(f"batch_ndim={batch_ndim} leaves no data axes of an array with {ndim} axes")
    return int(batch_ndim)


def _is_complex(data: np.ndarray | torch.Tensor) -> bool:
    return data.is_complex() if isinstance(data, torch.Tensor) else np.iscomplexobj(data)


def _as_float(data: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Integer data become float64; floating and complex data are kept."""
    if isinstance(data, torch.Tensor):
        return data if data.is_floating_point() or data.is_complex() else data.to(torch.float64)
    return data if np.issubdtype(data.dtype, np.inexact) else data.astype(np.float64)


def _mean_abs(data: np.ndarray | torch.Tensor, batch_ndim: int) -> np.ndarray | torch.Tensor:
    """``mean(|data|)`` over the non-batch axes, kept for broadcasting (no autograd)."""
    axes = tuple(range(batch_ndim, data.ndim))
    if isinstance(data, torch.Tensor):
        return data.detach().abs().mean(dim=axes, keepdim=True) if axes else data.detach().abs()
    return np.abs(data).mean(axis=axes, keepdims=True)


def _standard_normal(like: np.ndarray | torch.Tensor, seed: int) -> np.ndarray | torch.Tensor:
    """Real standard normal noise with ``like``'s shape, real dtype and device."""
    if isinstance(like, torch.Tensor):
        real_dtype = like.real.dtype if like.is_complex() else like.dtype
        generator = torch.Generator(device=like.device).manual_seed(seed)
        return torch.randn(like.shape, generator=generator, dtype=real_dtype, device=like.device)
    real_dtype = np.empty(0, dtype=like.dtype).real.dtype
    return np.random.default_rng(seed).standard_normal(like.shape).astype(real_dtype)


def _std(data: np.ndarray | torch.Tensor, relative_level: float, batch_ndim: int) -> Any:
    return relative_level * _mean_abs(data, batch_ndim)


# --- noise models -------------------------------------------------------------------------


def gaussian_noise(y: Data, relative_level: float, seed: int = 0, *, batch_ndim: int = 0) -> Data:
    """Return ``y + sigma * n`` with white noise ``n ~ N(0, 1)`` and ``sigma = relative_level * mean|y|``.

    Parameters
    ----------
    y : odl element, numpy.ndarray or torch.Tensor
        Real noise-free data.
    relative_level : float
        Noise level relative to the mean absolute value of ``y``, e.g. 0.05
        for "5 % noise". Zero returns a copy of ``y``.
    seed : int, optional
        Seed of the random generator.
    batch_ndim : int, optional
        Number of leading batch axes of an array or tensor. The mean of
        ``|y|`` is taken per batch item over the remaining axes; with the
        default 0 it is taken over the whole array.

    Returns
    -------
    noisy : same kind as ``y``
        Noisy data of the same shape and dtype (element of the same space).

    Raises
    ------
    TypeError
        For complex data (use :func:`complex_gaussian_noise`).
    ValueError
        For a negative level or non-finite data.

    Examples
    --------
    >>> y = np.full(100_000, 2.0)
    >>> noisy = gaussian_noise(y, 0.05, seed=1)
    >>> round(float(noisy.std()), 2)  # 5 % of mean |y| = 2
    0.1
    >>> bool((gaussian_noise(y, 0.05, seed=1) == noisy).all())
    True
    >>> gaussian_noise(torch.ones(2, 3), 0.1).shape  # torch in, torch out
    torch.Size([2, 3])
    """
    relative_level = _check_level("relative_level", relative_level)
    seed = _check_nonneg_int("seed", seed)
    batch_ndim = _check_batch_ndim(y, batch_ndim)
    check_finite("y", y)

    def noisy(data):
        data = _as_float(data)
        if _is_complex(data):
            raise TypeError("gaussian_noise needs real data; use complex_gaussian_noise for complex data")
        return data + _std(data, relative_level, batch_ndim) * _standard_normal(data, seed)

    return _apply(y, noisy)


def complex_gaussian_noise(
    y: Data,
    relative_level: float | None = None,
    seed: int = 0,
    *,
    sigma: float | None = None,
    batch_ndim: int = 0,
) -> Data:
    """Return ``y + n`` with circularly symmetric complex Gaussian noise ``n ~ CN(0, sigma^2)``.

    Convention: real and imaginary parts of ``n`` are independent
    ``N(0, sigma^2 / 2)``, so ``E|n|^2 = sigma^2`` per entry (``sigma`` is the
    standard deviation of the complex noise). Give exactly one of
    ``relative_level`` (then ``sigma = relative_level * mean|y|``) or
    ``sigma`` (absolute).

    Parameters
    ----------
    y : odl element, numpy.ndarray or torch.Tensor
        Complex noise-free data, e.g. k-space.
    relative_level : float, optional
        Noise level relative to the mean of ``|y|``.
    seed : int, optional
        Seed of the random generator.
    sigma : float, optional
        Absolute standard deviation of the complex noise.
    batch_ndim : int, optional
        Leading batch axes of an array or tensor; ``mean|y|`` is taken per
        item (only used with ``relative_level``).

    Returns
    -------
    noisy : same kind as ``y``
        Noisy data of the same shape and dtype.

    Raises
    ------
    TypeError
        For real data.
    ValueError
        For a negative level, both or none of ``relative_level`` and
        ``sigma``, or non-finite data.

    Examples
    --------
    >>> y = np.zeros(100_000, dtype=complex)
    >>> n = complex_gaussian_noise(y, sigma=0.2, seed=3)
    >>> round(float(np.sqrt(np.mean(abs(n) ** 2))), 2)
    0.2
    >>> round(float(n.real.std()), 3)  # sigma / sqrt(2) per part
    0.141
    """
    if (relative_level is None) == (sigma is None):
        raise ValueError("give exactly one of relative_level and sigma")
    if sigma is not None:
        sigma = _check_level("sigma", sigma)
    else:
        relative_level = _check_level("relative_level", relative_level)
    seed = _check_nonneg_int("seed", seed)
    batch_ndim = _check_batch_ndim(y, batch_ndim)
    check_finite("y", y)

    def noisy(data):
        if not _is_complex(data):
            raise TypeError("complex_gaussian_noise needs complex data; use gaussian_noise for real data")
        std = sigma if sigma is not None else _std(data, relative_level, batch_ndim)
        real = _standard_normal(data, seed)
        imag = _standard_normal(data, seed + 1)  # an independent stream
        return data + std * (real + 1j * imag) * math.sqrt(0.5)

    return _apply(y, noisy)


def poisson_noise(y: Data, photons: float, seed: int = 0, *, mu: float = 1.0) -> Data:
    """Return post-log CT data with Poisson noise on the photon counts.

    The counts follow Beer-Lambert's law,
    ``counts ~ Poisson(photons * exp(-mu * y))``, and the returned data are
    ``-log(max(counts, 1) / photons) / mu``. Zero counts are clipped to one
    count before the logarithm, so the data are bounded by
    ``log(photons) / mu`` instead of being infinite. As ``photons`` grows the
    result approaches ``y``.

    Parameters
    ----------
    y : odl element, numpy.ndarray or torch.Tensor
        Real noise-free line integrals (e.g. a sinogram ``A x``).
    photons : float
        Mean number of photons per detector pixel without object (blank scan).
    seed : int, optional
        Seed of the random generator.
    mu : float, optional
        Attenuation scale: ``y`` is multiplied by ``mu`` in the exponent, for
        ``y`` in units other than inverse pixel lengths.

    Returns
    -------
    noisy : same kind as ``y``
        Noisy post-log data, same shape and dtype.

    Raises
    ------
    ValueError
        For zero or negative ``photons`` or ``mu`` and non-finite data.
    TypeError
        For complex data.

    Examples
    --------
    >>> y = np.full(10_000, 0.5)
    >>> noisy = poisson_noise(y, photons=1e4, seed=0)
    >>> bool(abs(noisy.mean() - 0.5) < 1e-2)
    True
    >>> bool(poisson_noise(np.full(3, 50.0), photons=100).max() <= np.log(100))  # clipped
    True
    """
    check_positive("photons", photons)
    check_positive("mu", mu)
    seed = _check_nonneg_int("seed", seed)
    check_finite("y", y)

    def noisy(data):
        data = _as_float(data)
        if _is_complex(data):
            raise TypeError("poisson_noise needs real data (line integrals)")
        if isinstance(data, torch.Tensor):
            rates = photons * torch.exp(-mu * data.detach().to(torch.float64))
            generator = torch.Generator(device=data.device).manual_seed(seed)
            counts = torch.poisson(rates, generator=generator).clamp_min(1)
            return (-torch.log(counts / photons) / mu).to(data.dtype)
        counts = np.random.default_rng(seed).poisson(photons * np.exp(-mu * data.astype(np.float64)))
        return (-np.log(np.maximum(counts, 1) / photons) / mu).astype(data.dtype)

    return _apply(y, noisy)
