"""Complex-valued MRI test images: a real magnitude times a smooth random phase.

An MR image is complex: coil sensitivities, off-resonance and the receiver add
a phase that varies slowly in space. Reconstruction methods that assume a real
image (or take ``abs`` too early) fail on such data, so test images here carry
a smooth random phase

.. math::
    x(p) = m(p)\\, e^{i \\varphi(p)}, \\qquad
    \\varphi(p) = \\varphi_{\\max}\\, \\frac{f(p)}{\\max_q |f(q)|},

where ``m`` is a magnitude in ``[0, 1]`` (modified Shepp-Logan, or a real
brain slice from :mod:`odl_learned.data.real`) and ``f`` is

- ``"smooth"``: a random trigonometric polynomial of degree 2 in each
  coordinate on ``[-1, 1]^2``, with coefficients decaying like
  ``1 / (1 + |k|^2)``;
- ``"linear"``: a random ramp ``a u + b v + c`` (a shift in k-space);
- ``"none"``: zero (a real image stored as complex).

The phase is a function of the continuous coordinates ``(u, v)`` of the cell
centres, so the same seed gives the same phase at every resolution (up to the
normalisation by the maximum over the grid). Arrays follow ODL's axis order
(axis 0 is ``x``), matching ``odl.uniform_discr([-1, -1], [1, 1], shape)``.
"""

from __future__ import annotations

import numpy as np
import odl

from odl_learned._checks import check_choice, check_finite, check_positive
from odl_learned.data.phantoms import shepp_logan
from odl_learned.data.real import brain_slices

__all__ = ("PHASES", "MAGNITUDES", "random_phase", "add_phase", "mri_phantom")

#: Accepted ``phase`` names.
PHASES = ("smooth", "linear", "none")
#: Accepted ``magnitude`` names of :func:`mri_phantom`.
MAGNITUDES = ("shepp_logan", "brain")

_DEGREE = 2


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"shape must have 2 entries, got {shape}")
    for n in shape:
        check_positive("shape entries", n, integer=True)
    return (int(shape[0]), int(shape[1]))


def _unit_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of ``uniform_discr([-1, -1], [1, 1], shape)`` as a meshgrid."""
    axes = [(np.arange(n) + 0.5) / n * 2 - 1 for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def _smooth_field(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    field = np.zeros_like(u)
    for kx in range(_DEGREE + 1):
        for ky in range(_DEGREE + 1):
            amplitude = rng.standard_normal() / (1.0 + kx**2 + ky**2)
            offset = rng.uniform(0, 2 * np.pi)
            field += amplitude * np.cos(np.pi / 2 * (kx * u + ky * v) + offset)
    return field


def _linear_field(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a, b, c = rng.uniform(-1.0, 1.0, 3)
    return a * u + b * v + c


def random_phase(shape: tuple[int, int], seed: int | np.random.SeedSequence = 0, *,
                 phase: str = "smooth", max_phase: float = np.pi) -> np.ndarray:
    """Return a random phase map in ``[-max_phase, max_phase]``.

    Parameters
    ----------
    shape : tuple of int
        Image shape.
    seed : int or numpy.random.SeedSequence, optional
        Seed of ``numpy.random.default_rng``.
    phase : {"smooth", "linear", "none"}, optional
        Kind of phase (see the module docstring).
    max_phase : float, optional
        Largest absolute phase in radians, reached somewhere on the grid.

    Returns
    -------
    phi : numpy.ndarray of float64, shape ``shape``

    Examples
    --------
    >>> phi = random_phase((32, 32), seed=3)
    >>> bool(np.isclose(np.abs(phi).max(), np.pi))
    True
    >>> float(np.abs(random_phase((4, 4), phase="none")).max())
    0.0
    """
    shape = _check_shape(shape)
    phase = check_choice("phase", phase, PHASES)
    check_positive("max_phase", max_phase)
    if phase == "none":
        return np.zeros(shape)
    u, v = _unit_grid(shape)
    rng = np.random.default_rng(seed)
    field = _smooth_field(u, v, rng) if phase == "smooth" else _linear_field(u, v, rng)
    peak = np.abs(field).max()
    return field * (max_phase / peak) if peak > 0 else field


def add_phase(magnitude, seed: int = 0, *, phase: str = "smooth",
              max_phase: float = np.pi) -> np.ndarray:
    """Return ``magnitude * exp(i phi)`` with a random phase per image.

    Parameters
    ----------
    magnitude : array-like or odl.DiscretizedSpaceElement, shape (H, W) or (..., H, W)
        Real, non-negative magnitudes. In a batch, image ``k`` (in C order
        over the leading axes) gets the phase of seed ``(seed, k)``, so
        every image has its own phase and subsets are stable.
    seed : int, optional
        Seed.
    phase, max_phase
        See :func:`random_phase`.

    Returns
    -------
    x : numpy.ndarray of complex128, the shape of ``magnitude``

    Examples
    --------
    >>> x = add_phase(np.ones((2, 8, 8)), seed=1)
    >>> x.dtype, bool(np.allclose(np.abs(x), 1.0))
    (dtype('complex128'), True)
    >>> bool(np.allclose(x[0], x[1]))
    False
    """
    if isinstance(magnitude, odl.DiscretizedSpaceElement):
        magnitude = magnitude.asarray()
    mag = np.asarray(magnitude)
    if np.iscomplexobj(mag) or mag.ndim < 2:
        raise ValueError(
            f"magnitude must be a real array (..., H, W), got dtype {mag.dtype} shape {mag.shape}"
        )
    check_finite("magnitude", mag)
    if np.any(mag < 0):
        raise ValueError("magnitude must be non-negative")
    flat = mag.reshape((-1,) + mag.shape[-2:]).astype(np.float64)
    seeds = [np.random.SeedSequence([seed, k]) for k in range(len(flat))] if mag.ndim > 2 else [seed]
    out = [img * np.exp(1j * random_phase(img.shape, s, phase=phase, max_phase=max_phase))
           for img, s in zip(flat, seeds)]
    return np.stack(out).reshape(mag.shape)


def _magnitude(shape: tuple[int, int], magnitude: str, seed: int) -> np.ndarray:
    if magnitude == "shepp_logan":
        space = odl.uniform_discr([-1, -1], [1, 1], shape)
        return shepp_logan(space, modified=True).asarray()
    test = brain_slices(shape, split="test", dtype=np.float64)
    return test[seed % len(test)]


def mri_phantom(shape: tuple[int, int] = (128, 128), seed: int = 0, *, phase: str = "smooth",
                magnitude: str = "shepp_logan", max_phase: float = np.pi) -> np.ndarray:
    """Return a complex MRI test image: a magnitude in ``[0, 1]`` times a random phase.

    Parameters
    ----------
    shape : tuple of int, optional
        Image shape.
    seed : int, optional
        Seed of the phase; with ``magnitude="brain"`` also picks the slice
        (``seed % 8`` of the test split of :func:`~odl_learned.data.real.brain_slices`).
    phase : {"smooth", "linear", "none"}, optional
        Kind of phase (see the module docstring).
    magnitude : {"shepp_logan", "brain"}, optional
        Modified Shepp-Logan phantom (:func:`~odl_learned.data.phantoms.shepp_logan`
        on ``[-1, 1]^2``) or a real T1 brain slice (held-out test split).
    max_phase : float, optional
        Largest absolute phase in radians.

    Returns
    -------
    x : numpy.ndarray of complex128, shape ``shape``
        ``abs(x)`` is the magnitude, ``angle(x)`` the phase where ``abs(x) > 0``.

    Examples
    --------
    >>> x = mri_phantom((64, 64), seed=0)
    >>> x.shape, x.dtype, round(float(np.abs(x).max()), 12)
    ((64, 64), dtype('complex128'), 1.0)
    >>> bool(np.abs(np.angle(x)).max() > 0.5)
    True
    >>> mri_phantom((32, 32), magnitude="brain").shape
    (32, 32)
    """
    shape = _check_shape(shape)
    magnitude = check_choice("magnitude", magnitude, MAGNITUDES)
    mag = _magnitude(shape, magnitude, seed)
    return mag * np.exp(1j * random_phase(shape, seed, phase=phase, max_phase=max_phase))
