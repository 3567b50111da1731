"""Magnetic resonance imaging: subsampled (multi-coil) Fourier operators.

The forward model of (parallel) MRI is

.. math::
    A x = \\big(M \\, F (S_c \\, x)\\big)_{c = 1, \\dots, C},

with :math:`S_c` the coil sensitivity maps (:math:`C = 1`, :math:`S_1 = 1`
for a single coil), :math:`F` the centred orthonormal 2D DFT and :math:`M`
the sampling mask (a diagonal 0/1 matrix).

Conventions
-----------
* **Centred k-space.** Masks and k-space data have the DC coefficient at the
  centre of the array (index ``(H // 2, W // 2)``), i.e. they are
  ``fftshift``-ed: :math:`F = \\mathrm{fftshift} \\circ \\mathrm{fft2}_{ortho}
  \\circ \\mathrm{ifftshift}` (:func:`centred_fft2`).
* **Zero-filled range.** Unsampled k-space entries are set to zero instead of
  being removed, so the range of :class:`SubsampledFourier` is the full complex
  tensor space of shape ``(H, W)`` (single coil) or ``(C, H, W)`` (multi-coil),
  and the operator maps into the subspace of data that vanish off the mask.
  The adjoint applies the mask again, so it is exact on the whole range.
* **Weights.** The range carries the same constant weight as the image space
  (the cell volume of a ``uniform_discr``), so with full sampling and coil maps
  normalised as :func:`coil_sensitivities` does, ``A`` is an isometry:
  ``A.adjoint * A`` is the identity and ``||A x|| = ||x||``.
* **Batches.** :meth:`SubsampledFourier.torch_call` maps tensors
  ``(..., H, W) -> (..., H, W)`` (single coil) or ``(..., H, W) ->
  (..., C, H, W)`` (multi-coil); e.g. a batch ``(B, 1, H, W)`` gives
  ``(B, 1, H, W)`` or ``(B, 1, C, H, W)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import odl
import torch

from odl_learned._checks import check_choice, check_in_space, check_positive, check_shape_suffix
from odl_learned.bridge.convert import element_to_tensor, is_torch_space, tensor_to_element, torch_dtype
from odl_learned.bridge.native import TorchNativeOperator
from odl_learned.bridge.weighting import space_weight

__all__ = (
    "MASK_PATTERNS",
    "cartesian_mask",
    "coil_sensitivities",
    "centred_fft2",
    "centred_ifft2",
    "SubsampledFourier",
    "subsampled_fourier",
    "zero_filled",
    "sum_of_squares",
)

MASK_PATTERNS = ("random", "equispaced", "radial")

_IMAGE_DIMS = (-2, -1)


# --- sampling masks -------------------------------------------------------------------------


def cartesian_mask(
    shape: tuple[int, int],
    acceleration: float,
    center_fraction: float = 0.08,
    pattern: str = "random",
    seed: int = 0,
) -> np.ndarray:
    """Return a k-space sampling mask of boolean type and shape ``(H, W)``.

    The mask is in **centred** k-space convention: the DC coefficient sits at
    index ``(H // 2, W // 2)`` (the ``fftshift``-ed layout used by
    :class:`SubsampledFourier`).

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)``; axis 0 is the read-out (frequency-encode) axis, axis 1 the
        phase-encode axis whose ``W`` entries are the k-space *lines*.
    acceleration : float
        Undersampling factor ``R``; about ``1 / R`` of k-space is sampled.
        Must satisfy ``1 < R < W``.
    center_fraction : float, optional
        Fraction of the ``W`` lines around DC that are always sampled, in
        ``(0, 1 / R]``; ``round(center_fraction * W)`` lines, at least the DC
        line. For ``pattern='radial'`` a centred disc (ellipse) of
        this relative diameter is fully sampled instead.
    pattern : {'random', 'equispaced', 'radial'}, optional
        ``'random'``: variable-density line mask; besides the centre,
        ``round(W / R) - n_centre`` further lines are drawn without replacement
        with probability proportional to ``(1 - d / (W / 2 + 1))**2`` (``d``
        the distance from DC), so exactly ``round(W / R)`` full lines are
        sampled. ``'equispaced'`` (fastMRI style): the centre plus every
        ``k``-th of the remaining lines, ``k = (W - n_centre) / (round(W / R)
        - n_centre)`` (rounded down per line), from a seeded random offset;
        again ``round(W / R)`` lines in all.
        ``'radial'``: a Cartesian approximation of radial sampling, i.e. the
        pixels on ``num_spokes`` lines through the k-space centre at evenly
        spaced angles in ``[0, pi)``, with ``num_spokes`` chosen so that the
        sampled fraction is as close as possible to ``1 / R``. This is not a
        line mask.
    seed : int, optional
        Seed of the ``numpy.random.Generator`` that draws the lines
        (``'random'``) or the offset (``'equispaced'``); ``'radial'`` is
        deterministic.

    Returns
    -------
    mask : numpy.ndarray
        Boolean array of shape ``(H, W)``, ``True`` where k-space is sampled.

    Raises
    ------
    ValueError
        For an impossible acceleration factor, a ``center_fraction`` outside
        ``(0, 1 / R]`` or an unknown pattern.

    Examples
    --------
    >>> mask = cartesian_mask((32, 32), acceleration=4, center_fraction=0.125)
    >>> mask.shape, mask.dtype
    ((32, 32), dtype('bool'))
    >>> float(mask.mean())
    0.25
    >>> bool(mask[:, 15:17].all())  # the centre lines around DC (index 16)
    True
    >>> bool((mask == mask[0]).all())  # full lines: every row is the same
    True
    """
    height, width = _check_image_shape(shape)
    check_positive("acceleration", acceleration)
    if not 1 < acceleration < width:
        raise ValueError(
            f"impossible acceleration factor {acceleration} for {width} phase-encode lines; "
            f"expected 1 < acceleration < {width}"
        )
    check_positive("center_fraction", center_fraction)
    if center_fraction > 1 / acceleration:
        raise ValueError(
            f"center_fraction must lie in (0, 1 / acceleration] = (0, {1 / acceleration:.6g}], "
            f"got {center_fraction}"
        )
    pattern = check_choice("pattern", pattern, MASK_PATTERNS)
    if pattern == "radial":
        return _radial_mask(height, width, 1 / acceleration, center_fraction)
    rng = np.random.default_rng(seed)
    num_lines = round(width / acceleration)
    centre = _centre_lines(width, min(max(1, round(width * center_fraction)), num_lines))
    outer = np.setdiff1d(np.arange(width), centre)
    num_outer = num_lines - centre.size
    if pattern == "random":
        chosen = _variable_density_lines(outer, num_outer, width, rng)
    else:
        chosen = _equispaced_lines(outer, num_outer, rng)
    lines = np.zeros(width, dtype=bool)
    lines[centre] = True
    lines[chosen] = True
    return np.broadcast_to(lines, (height, width)).copy()


def _check_image_shape(shape: Any) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    for n in shape:
        check_positive("each entry of shape", n, integer=True)
    return int(shape[0]), int(shape[1])


def _centre_lines(width: int, num_centre: int) -> np.ndarray:
    """Indices of ``num_centre`` adjacent lines that contain DC (index ``width // 2``)."""
    start = (width - num_centre + 1) // 2
    return np.arange(start, start + num_centre)


def _variable_density_lines(
    outer: np.ndarray, num_outer: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    distance = np.abs(outer - width // 2)
    density = (1 - distance / (width / 2 + 1)) ** 2
    return rng.choice(outer, size=num_outer, replace=False, p=density / density.sum())


def _equispaced_lines(outer: np.ndarray, num_outer: int, rng: np.random.Generator) -> np.ndarray:
    if num_outer == 0:
        return outer[:0]
    spacing = outer.size / num_outer
    offset = rng.integers(0, max(1, int(spacing)))
    return outer[np.floor(offset + spacing * np.arange(num_outer)).astype(int)]


def _radial_mask(height: int, width: int, fraction: float, center_fraction: float) -> np.ndarray:
    """Spoke mask whose sampled fraction is closest to ``fraction``."""
    low, high = 1, 4 * (height + width)
    if _spokes(height, width, high, center_fraction).mean() < fraction:
        return _spokes(height, width, high, center_fraction)
    while low < high:  # smallest number of spokes reaching the fraction
        mid = (low + high) // 2
        if _spokes(height, width, mid, center_fraction).mean() >= fraction:
            high = mid
        else:
            low = mid + 1
    candidates = [_spokes(height, width, n, center_fraction) for n in (max(1, low - 1), low)]
    return min(candidates, key=lambda mask: abs(mask.mean() - fraction))


def _spokes(height: int, width: int, num_spokes: int, center_fraction: float) -> np.ndarray:
    """Pixels on ``num_spokes`` lines through the centre, plus a centred ellipse."""
    centre_row, centre_col = height // 2, width // 2
    rows, cols = np.mgrid[:height, :width]
    semi_axes = (max(center_fraction * height / 2, 0.5), max(center_fraction * width / 2, 0.5))
    mask = ((rows - centre_row) / semi_axes[0]) ** 2 + ((cols - centre_col) / semi_axes[1]) ** 2 <= 1
    angles = np.pi * np.arange(num_spokes) / num_spokes
    radius = np.hypot(height, width) / 2 + 1
    t = np.arange(-radius, radius + 0.5, 0.5)
    spoke_rows = np.rint(centre_row + np.outer(np.sin(angles), t)).astype(int).ravel()
    spoke_cols = np.rint(centre_col + np.outer(np.cos(angles), t)).astype(int).ravel()
    inside = (spoke_rows >= 0) & (spoke_rows < height) & (spoke_cols >= 0) & (spoke_cols < width)
    mask[spoke_rows[inside], spoke_cols[inside]] = True
    return mask


# --- coil sensitivities ---------------------------------------------------------------------


def coil_sensitivities(
    shape: tuple[int, int],
    num_coils: int,
    seed: int = 0,
    dtype: str | np.dtype = "complex64",
) -> np.ndarray:
    """Return synthetic smooth complex coil sensitivity maps of shape ``(C, H, W)``.

    The coils sit on a circle of radius 1.5 (in units of the half field of
    view, at evenly spaced angles with a small seeded jitter) around the
    image; coil ``c`` has the Gaussian magnitude
    ``exp(-|r - p_c|^2 / 2)`` and a smooth phase (its angle plus a seeded
    random linear phase). The maps are then **normalised** so that

    .. math::
        \\sum_{c=1}^{C} |S_c(r)|^2 = 1 \\quad \\text{at every pixel } r,

    which makes ``A.adjoint`` a left inverse of the fully sampled SENSE
    operator ``A`` of :func:`subsampled_fourier` and the sum of squares of the
    coil images equal to ``|x|``. A single coil (``num_coils=1``) is a pure
    smooth phase, ``|S_1| = 1``.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    num_coils : int
        Number of coils ``C``.
    seed : int, optional
        Seed of the jitter of positions and phases.
    dtype : {'complex64', 'complex128'}, optional
        Dtype of the returned array; the normalisation holds to the precision
        of this dtype, so use ``'complex128'`` with double precision spaces.

    Returns
    -------
    maps : numpy.ndarray
        Complex array of shape ``(C, H, W)``.

    Examples
    --------
    >>> maps = coil_sensitivities((16, 16), num_coils=4)
    >>> maps.shape, maps.dtype
    ((4, 16, 16), dtype('complex64'))
    >>> bool(np.allclose((abs(maps) ** 2).sum(axis=0), 1))
    True
    """
    height, width = _check_image_shape(shape)
    check_positive("num_coils", num_coils, integer=True)
    dtype = check_choice("dtype", str(np.dtype(dtype)), ("complex64", "complex128"))
    rng = np.random.default_rng(seed)
    row = (np.arange(height) + 0.5) / height * 2 - 1
    col = (np.arange(width) + 0.5) / width * 2 - 1
    y, x = np.meshgrid(row, col, indexing="ij")
    angles = 2 * np.pi * (np.arange(num_coils) + rng.uniform(-0.1, 0.1, num_coils)) / num_coils
    centres_x, centres_y = 1.5 * np.cos(angles), 1.5 * np.sin(angles)
    distance2 = (x - centres_x[:, None, None]) ** 2 + (y - centres_y[:, None, None]) ** 2
    slopes = rng.uniform(-np.pi / 2, np.pi / 2, (num_coils, 2))
    phase = angles[:, None, None] + slopes[:, :1, None] * x + slopes[:, 1:, None] * y
    maps = np.exp(-distance2 / 2) * np.exp(1j * phase)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(axis=0))
    return maps.astype(dtype)


# --- the operator ---------------------------------------------------------------------------


def centred_fft2(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D DFT over the last two axes: ``fftshift(fft2(ifftshift(x)))``.

    Examples
    --------
    >>> x = torch.zeros(4, 4, dtype=torch.complex128)
    >>> x[2, 2] = 1  # a delta at the image centre ...
    >>> torch.allclose(centred_fft2(x), torch.full((4, 4), 0.25, dtype=x.dtype))
    True
    """
    x = torch.fft.ifftshift(x, dim=_IMAGE_DIMS)
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=_IMAGE_DIMS)


def centred_ifft2(y: torch.Tensor) -> torch.Tensor:
    """Inverse (and adjoint) of :func:`centred_fft2`: ``fftshift(ifft2(ifftshift(y)))``.

    Examples
    --------
    >>> x = torch.randn(3, 4, 6, dtype=torch.complex128)
    >>> torch.allclose(centred_ifft2(centred_fft2(x)), x)
    True
    """
    y = torch.fft.ifftshift(y, dim=_IMAGE_DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(y, norm="ortho"), dim=_IMAGE_DIMS)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex64 for float32/complex64 (and lower), complex128 for double precision."""
    return torch.promote_types(dtype, torch.complex64)


def _as_tensor(value: Any) -> torch.Tensor:
    if hasattr(value, "space") and hasattr(value, "data"):
        value = value.data
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.as_tensor(np.asarray(value))


class SubsampledFourier(TorchNativeOperator):
    """The (multi-coil) subsampled Fourier operator ``A x = M F (S_c x)``.

    Linear from a 2D image space to zero-filled k-space; see the module
    docstring for the conventions (centred k-space, range, weights, batches).
    For a real image space the operator is only real-linear and its adjoint
    is the real part ``A^* y = Re(A^H y)``. Build it with
    :func:`subsampled_fourier`.

    Parameters
    ----------
    domain : odl.DiscretizedSpace
        2D image space of shape ``(H, W)`` with a constant weighting; real or
        complex, NumPy or PyTorch backend.
    mask : array-like or torch.Tensor
        Boolean (or 0/1) sampling mask of shape ``(H, W)``, centred k-space.
    coil_maps : array-like or torch.Tensor, optional
        Complex coil sensitivities of shape ``(C, H, W)``; ``None`` for a
        single coil without sensitivity.

    Attributes
    ----------
    mask : torch.Tensor
        Boolean mask ``(H, W)`` on the device of the range.
    coil_maps : torch.Tensor or None
        Coil maps ``(C, H, W)`` in the range's dtype and device.

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), impl="pytorch", dtype="complex128")
    >>> op = SubsampledFourier(space, np.ones((8, 8), dtype=bool))
    >>> op.range.shape
    (8, 8)
    >>> x = space.element(torch.randn(8, 8, dtype=torch.complex128))
    >>> bool(abs(op(x).norm() - x.norm()) < 1e-12)  # full sampling: an isometry
    True
    """

    def __init__(self, domain: odl.DiscretizedSpace, mask: Any, coil_maps: Any = None) -> None:
        if not isinstance(domain, odl.LinearSpace) or not hasattr(domain, "shape"):
            raise TypeError(f"domain must be a 2D ODL tensor space such as uniform_discr, got {domain!r}")
        if domain.ndim != 2:
            raise ValueError(f"domain must be 2D, got a {domain.ndim}D space {domain!r}")
        weight = space_weight(domain)
        if not isinstance(weight, float):
            raise ValueError(f"domain must have a constant weighting, got {domain.weighting!r}")
        device = domain.device if is_torch_space(domain) else "cpu"
        range_dtype = _complex_dtype(torch_dtype(domain))
        self.mask = _check_mask(mask, domain.shape).to(device)
        self.coil_maps = None if coil_maps is None else _check_coil_maps(coil_maps, domain.shape)
        if self.coil_maps is not None:
            self.coil_maps = self.coil_maps.to(device=device, dtype=range_dtype)
        range_shape = domain.shape if self.coil_maps is None else self.coil_maps.shape
        range_ = odl.tensor_space(
            tuple(range_shape),
            dtype=str(range_dtype).replace("torch.", ""),
            impl="pytorch",
            device=device,
            weighting=weight,
        )
        super().__init__(domain, range_, linear=True)

    @property
    def num_coils(self) -> int:
        """Number of coils ``C`` (1 without coil maps)."""
        return 1 if self.coil_maps is None else self.coil_maps.shape[0]

    def torch_call(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``M F (S_c x)`` for a batch ``(..., H, W)`` as ``(..., [C,] H, W)``."""
        check_shape_suffix("x", tuple(x.shape), self.domain.shape)
        x = x.to(_complex_dtype(x.dtype))
        if self.coil_maps is not None:
            x = x.unsqueeze(-3) * self.coil_maps.to(device=x.device, dtype=x.dtype)
        return centred_fft2(x) * self.mask.to(x.device)

    def conjugate_transpose(self, y: torch.Tensor) -> torch.Tensor:
        """Return the complex image ``A^H y = sum_c conj(S_c) F^H (M y_c)``, shape ``(..., H, W)``.

        This is the Euclidean (unweighted) adjoint, always complex, also for a
        real domain; :attr:`adjoint` is the ODL adjoint.

        Parameters
        ----------
        y : torch.Tensor
            K-space data, shape ``(..., *range.shape)`` (any leading batch
            axes).

        Returns
        -------
        torch.Tensor
            Complex images, shape ``(..., H, W)``.

        Examples
        --------
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), dtype="complex128")
        >>> mask = cartesian_mask((8, 8), 2, seed=0)
        >>> op = SubsampledFourier(space, mask, coil_sensitivities((8, 8), 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(3, 8, 8, dtype=torch.complex128, generator=g)
        >>> y = torch.randn(3, 2, 8, 8, dtype=torch.complex128, generator=g)
        >>> op.conjugate_transpose(y).shape
        torch.Size([3, 8, 8])
        >>> lhs = torch.vdot(op.torch_call(x).flatten(), y.flatten())  # <A x, y>
        >>> rhs = torch.vdot(x.flatten(), op.conjugate_transpose(y).flatten())  # <x, A^H y>
        >>> bool(abs(lhs - rhs) < 1e-10 * abs(lhs))
        True
        """
        check_shape_suffix("y", tuple(y.shape), self.range.shape)
        y = y.to(_complex_dtype(y.dtype))
        image = centred_ifft2(y * self.mask.to(y.device))
        if self.coil_maps is not None:
            image = (image * self.coil_maps.to(device=y.device, dtype=y.dtype).conj()).sum(dim=-3)
        return image

    @property
    def adjoint(self) -> _SubsampledFourierAdjoint:
        """The ODL adjoint ``A^* = (w_range / w_domain) A^H`` (real part for a real domain)."""
        return _SubsampledFourierAdjoint(self)

    def __repr__(self) -> str:
        coils = "" if self.coil_maps is None else f", num_coils={self.num_coils}"
        fraction = float(self.mask.float().mean())
        return f"{type(self).__name__}({self.domain!r}, sampled_fraction={fraction:.4g}{coils})"


class _SubsampledFourierAdjoint(TorchNativeOperator):
    """ODL adjoint of a :class:`SubsampledFourier` operator."""

    def __init__(self, forward: SubsampledFourier) -> None:
        super().__init__(forward.range, forward.domain, linear=True)
        self._forward = forward
        self._scale = space_weight(forward.range) / space_weight(forward.domain)

    def torch_call(self, y: torch.Tensor) -> torch.Tensor:
        image = self._forward.conjugate_transpose(y)
        if self._scale != 1.0:
            image = image * self._scale
        return image if self.range.is_complex else image.real

    @property
    def adjoint(self) -> SubsampledFourier:
        return self._forward

    def __repr__(self) -> str:
        return f"{self._forward!r}.adjoint"


def _check_mask(mask: Any, shape: tuple[int, ...]) -> torch.Tensor:
    mask = _as_tensor(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected the image shape {tuple(shape)}")
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must be boolean or hold only the values 0 and 1")
        mask = mask != 0
    return mask


def _check_coil_maps(coil_maps: Any, shape: tuple[int, ...]) -> torch.Tensor:
    coil_maps = _as_tensor(coil_maps)
    if coil_maps.ndim != 3:
        raise ValueError(f"coil_maps must have shape (C, H, W), got {tuple(coil_maps.shape)}")
    check_shape_suffix("coil_maps", tuple(coil_maps.shape), tuple(shape))
    if not bool(torch.isfinite(coil_maps).all()):
        raise ValueError("coil_maps contains NaN or Inf values; expected finite data")
    return coil_maps


def subsampled_fourier(space: odl.DiscretizedSpace, mask: Any, coil_maps: Any = None) -> SubsampledFourier:
    """Return the MRI forward operator ``A x = M F (S_c x)`` on ``space``.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D image space ``(H, W)``, real or complex; ``impl='pytorch'`` is
        preferred (no copies), NumPy spaces work too.
    mask : array-like or torch.Tensor
        Sampling mask ``(H, W)`` in centred k-space convention, e.g. from
        :func:`cartesian_mask`.
    coil_maps : array-like or torch.Tensor, optional
        Coil sensitivities ``(C, H, W)``, e.g. from :func:`coil_sensitivities`;
        ``None`` for single-coil data.

    Returns
    -------
    op : SubsampledFourier
        Range: ``odl.tensor_space`` with ``impl='pytorch'``, complex
        (``complex64`` for single, ``complex128`` for double precision
        spaces), shape ``(H, W)`` or ``(C, H, W)``, with unsampled entries
        zero and the weight of ``space``.

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (16, 16), impl="pytorch", dtype="complex64")
    >>> mask = cartesian_mask((16, 16), acceleration=4, center_fraction=0.125)
    >>> op = subsampled_fourier(space, mask, coil_maps=coil_sensitivities((16, 16), 3))
    >>> op.range.shape, op.range.dtype
    ((3, 16, 16), torch.complex64)
    >>> op.torch_call(torch.ones(5, 1, 16, 16)).shape  # a batch
    torch.Size([5, 1, 3, 16, 16])
    """
    return SubsampledFourier(space, mask, coil_maps)


# --- direct reconstructions -----------------------------------------------------------------


def _check_operator(op: Any) -> None:
    if not isinstance(op, SubsampledFourier):
        raise TypeError(f"op must be a SubsampledFourier operator, got {type(op).__name__}")


def _image_result(image: torch.Tensor, y: Any, space: odl.LinearSpace) -> Any:
    return image if isinstance(y, torch.Tensor) else tensor_to_element(image, space)


def _data_tensor(op: SubsampledFourier, y: Any) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        check_shape_suffix("y", tuple(y.shape), op.range.shape)
        return y
    check_in_space("y", y, op.range)
    return element_to_tensor(y)


def zero_filled(op: SubsampledFourier, y: Any, magnitude: bool = True) -> Any:
    """Return the zero-filled reconstruction ``A^H y`` (its magnitude by default).

    ``A^H y`` is the Euclidean adjoint: unsampled k-space is filled with zeros,
    inverse Fourier transformed and, for multi-coil data, combined with the
    conjugate coil maps. With full sampling and normalised maps (or a single
    coil) ``A^H A = I``, so it is the pseudo-inverse ``A^+ y`` and recovers
    ``x`` from ``y = A x``; with undersampling it shows aliasing.

    Parameters
    ----------
    op : SubsampledFourier
        The forward operator.
    y : ``op.range`` element or torch.Tensor
        k-space data; a tensor may be a batch ``(..., [C,] H, W)``.
    magnitude : bool, optional
        If True, return ``|A^H y|`` (real); else ``A^H y`` as an element of
        ``op.domain``, i.e. its real part when ``op.domain`` is real.

    Returns
    -------
    image : odl element or torch.Tensor
        Same kind as ``y``: an element of ``op.domain.real_space``
        (``magnitude=True``) or ``op.domain``, or a tensor ``(..., H, W)``.

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), impl="pytorch", dtype="complex128")
    >>> op = subsampled_fourier(space, np.ones((8, 8), dtype=bool))
    >>> x = space.element(torch.randn(8, 8, dtype=torch.complex128))
    >>> bool(torch.allclose(zero_filled(op, op(x), magnitude=False).data, x.data))
    True
    >>> zero_filled(op, op(x)).space == space.real_space
    True
    """
    _check_operator(op)
    image = op.conjugate_transpose(_data_tensor(op, y))
    if magnitude:
        return _image_result(image.abs(), y, op.domain.real_space)
    if not op.domain.is_complex:
        image = image.real
    return _image_result(image, y, op.domain)


def sum_of_squares(op: SubsampledFourier, y: Any) -> Any:
    """Return the root-sum-of-squares image ``sqrt(sum_c |F^H (M y_c)|^2)``.

    Needs no coil maps: each coil's zero-filled k-space is inverse Fourier
    transformed and the magnitudes are combined. For a single coil it is
    ``|F^H (M y)|``. With full sampling and maps normalised as in
    :func:`coil_sensitivities` it equals ``|x|`` for ``y = A x``.

    Parameters
    ----------
    op : SubsampledFourier
        The forward operator (gives mask and shapes).
    y : ``op.range`` element or torch.Tensor
        k-space data; a tensor may be a batch ``(..., [C,] H, W)``.

    Returns
    -------
    image : odl element or torch.Tensor
        Element of ``op.domain.real_space`` or tensor ``(..., H, W)``.

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), impl="pytorch", dtype="complex128")
    >>> maps = coil_sensitivities((8, 8), 4, dtype="complex128")
    >>> op = subsampled_fourier(space, np.ones((8, 8), dtype=bool), maps)
    >>> x = space.element(torch.randn(8, 8, dtype=torch.complex128))
    >>> bool(torch.allclose(sum_of_squares(op, op(x)).data, x.data.abs()))
    True
    """
    _check_operator(op)
    data = _data_tensor(op, y)
    coil_images = centred_ifft2(data.to(_complex_dtype(data.dtype)) * op.mask.to(data.device))
    if op.coil_maps is None:
        image = coil_images.abs()
    else:
        image = (coil_images.abs() ** 2).sum(dim=-3).sqrt()
    return _image_result(image, y, op.domain.real_space)
