"""Image quality measures: PSNR, SSIM, the data discrepancy and the equivariance error.

Conventions (those of dival and of ``shared/ANCHORS.md``):

- The default data range is that of the ground truth,
  ``max(x_true) - min(x_true)``, computed per image. Pass ``data_range=1.0``
  for the fixed-range convention of images scaled to ``[0, 1]``; the two
  agree only when ``x_true`` spans the whole of ``[0, 1]``.
- SSIM is :func:`skimage.metrics.structural_similarity` with its defaults
  (7 x 7 uniform window, ``K1 = 0.01``, ``K2 = 0.03``) and the same data range.

Inputs may be ODL elements, NumPy arrays or torch tensors (detached and
copied to the CPU), in any mix. An ODL element is one image. An array or
tensor with two axes is one image; with three or more axes its first axis is a
batch, ``(B, H, W)`` or ``(B, C, H, W)``, and a NumPy array of per-image values
is returned. ``batch=True`` / ``batch=False`` overrides this rule (e.g. for a
single 3D volume). Complex images are refused: compare magnitudes
(``abs(x)``), the usual choice in MRI, explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import odl
import torch
from odl.core.set.space import LinearSpaceElement
from skimage.metrics import structural_similarity

from odl_learned._checks import check_finite, check_in_space, check_positive, check_shape_suffix
from odl_learned.bridge.convert import element_to_tensor

__all__ = ("psnr", "ssim", "data_discrepancy", "equivariance_error", "data_rotation")


def _to_numpy(name: str, x: Any) -> np.ndarray:
    """Return ``x`` (ODL element, tensor or array-like) as a real float64 array."""
    if isinstance(x, odl.DiscretizedSpaceElement):
        x = element_to_tensor(x)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} is complex; pass real images, e.g. magnitudes abs({name})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    check_finite(name, arr)
    return arr.astype(np.float64, copy=False)


def _is_batched(x: Any, x_true: Any, ndim: int, batch: bool | None) -> bool:
    if batch is not None:
        if batch and ndim < 2:
            raise ValueError(f"batch=True needs at least 2 axes (B, ...), got {ndim}")
        return bool(batch)
    if isinstance(x, odl.DiscretizedSpaceElement) or isinstance(x_true, odl.DiscretizedSpaceElement):
        return False
    return ndim >= 3


def _image_pair(x: Any, x_true: Any, batch: bool | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return both inputs as arrays ``(B, ...)`` and whether the input was a batch."""
    xa = _to_numpy("x", x)
    ta = _to_numpy("x_true", x_true)
    if xa.shape != ta.shape:
        raise ValueError(
            f"x has shape {xa.shape} but x_true has shape {ta.shape}; expected equal shapes"
        )
    if xa.ndim == 0:
        raise ValueError("x and x_true must be images, got scalars")
    batched = _is_batched(x, x_true, xa.ndim, batch)
    if not batched:
        xa, ta = xa[None], ta[None]
    return xa, ta, batched


def _data_ranges(x_true: np.ndarray, data_range: Any) -> np.ndarray:
    """Return one positive data range per image of the batch ``x_true``."""
    n = x_true.shape[0]
    if data_range is None:
        flat = x_true.reshape(n, -1)
        ranges = flat.max(axis=1) - flat.min(axis=1)
        if np.any(ranges <= 0):
            bad = int(np.argmax(ranges <= 0))
            raise ValueError(
                f"x_true (image {bad}) is constant, so its data range is 0; pass data_range"
            )
        return ranges
    ranges = np.asarray(data_range, dtype=np.float64)
    if ranges.ndim == 0:
        check_positive("data_range", float(ranges))
        return np.full(n, float(ranges))
    if ranges.shape != (n,):
        raise ValueError(f"data_range has shape {ranges.shape}; expected a scalar or ({n},)")
    for value in ranges:
        check_positive("data_range", float(value))
    return ranges


def _result(values: np.ndarray, batched: bool) -> float | np.ndarray:
    return values if batched else float(values[0])


def psnr(x: Any, x_true: Any, data_range: Any = None, *,
         batch: bool | None = None) -> float | np.ndarray:
    """Peak signal-to-noise ratio of ``x`` against ``x_true`` in dB.

    .. math::
        \\mathrm{PSNR}(x, x^\\dagger) = 10 \\log_{10}
        \\frac{R^2}{\\tfrac{1}{N}\\|x - x^\\dagger\\|_2^2},
        \\qquad R = \\max x^\\dagger - \\min x^\\dagger \\text{ by default.}

    Parameters
    ----------
    x, x_true : odl.DiscretizedSpaceElement or numpy.ndarray or torch.Tensor
        Reconstruction and ground truth of equal shape (see the module
        docstring for batches).
    data_range : float or array-like of shape (B,), optional
        Peak value ``R``; default: the range of each ground-truth image.
    batch : bool, optional
        Force (``True``) or forbid (``False``) reading the first axis as a
        batch.

    Returns
    -------
    psnr : float or numpy.ndarray of shape (B,)
        ``inf`` where ``x == x_true``.

    Raises
    ------
    ValueError
        Shape mismatch, NaN or Inf, constant ``x_true`` without ``data_range``.
    TypeError
        Complex input.

    Examples
    --------
    >>> x_true = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(psnr(x_true + 0.1, x_true), 6)  # MSE 0.01, range 1: 10 log10(1 / 0.01)
    20.0
    >>> psnr(x_true, x_true)
    inf
    >>> batch = torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 2.0]]])
    >>> psnr(batch + 0.1, batch).round(4).tolist()  # float32; ranges 1 and 2
    [20.0, 26.0206]
    """
    xa, ta, batched = _image_pair(x, x_true, batch)
    ranges = _data_ranges(ta, data_range)
    mse = np.mean((xa - ta).reshape(len(xa), -1) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        values = 20 * np.log10(ranges) - 10 * np.log10(mse)
    return _result(values, batched)


def ssim(x: Any, x_true: Any, data_range: Any = None, *,
         batch: bool | None = None) -> float | np.ndarray:
    """Structural similarity of ``x`` against ``x_true``.

    :func:`skimage.metrics.structural_similarity` with its default window,
    applied per image, with the data range of each ground truth by default.
    Batches ``(B, C, H, W)`` average over the channels.

    Parameters
    ----------
    x, x_true : odl.DiscretizedSpaceElement or numpy.ndarray or torch.Tensor
        Reconstruction and ground truth of equal shape; every spatial side at
        least 7 pixels.
    data_range : float or array-like of shape (B,), optional
        Default: the range of each ground-truth image.
    batch : bool, optional
        Force or forbid reading the first axis as a batch.

    Returns
    -------
    ssim : float or numpy.ndarray of shape (B,)
        1 where ``x == x_true``.

    Examples
    --------
    >>> x_true = np.linspace(0, 1, 64).reshape(8, 8)
    >>> ssim(x_true, x_true)
    1.0
    >>> noisy = x_true + 0.1 * np.random.default_rng(0).standard_normal((8, 8))
    >>> bool(ssim(noisy, x_true) < 1.0)
    True
    """
    xa, ta, batched = _image_pair(x, x_true, batch)
    ranges = _data_ranges(ta, data_range)
    channel_axis = 0 if batched and xa.ndim == 4 else None
    if min(xa.shape[-2:]) < 7:
        raise ValueError(f"images of shape {xa.shape[1:]} are too small for SSIM's 7 x 7 window")
    values = np.array([
        structural_similarity(xi, ti, data_range=ri, channel_axis=channel_axis)
        for xi, ti, ri in zip(xa, ta, ranges)
    ])
    return _result(values, batched)


def _elements(name: str, data: Any, space: odl.LinearSpace) -> tuple[list, tuple[int, ...]]:
    """Return ``data`` as a list of ``space`` elements and its leading (batch) shape."""
    if isinstance(data, LinearSpaceElement):
        check_in_space(name, data, space)
        check_finite(name, data)
        return [data], ()
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    arr = np.asarray(data)
    check_shape_suffix(name, arr.shape, space.shape)
    check_finite(name, arr)
    lead = arr.shape[: arr.ndim - len(space.shape)]
    flat = arr.reshape((-1,) + tuple(space.shape))
    return [space.element(item) for item in flat], lead


def data_discrepancy(op: odl.Operator, x: Any, y: Any) -> float | np.ndarray:
    """Return the data discrepancy ``||op(x) - y||`` in the norm of ``op.range``.

    The norm is the range space's own, so for ``uniform_discr`` spaces it
    carries the cell volume (a discretised :math:`L^2` norm).

    Parameters
    ----------
    op : odl.Operator
        Forward operator.
    x : ``op.domain`` element, or array / tensor of shape ``(*lead, *op.domain.shape)``
        Image(s).
    y : ``op.range`` element, or array / tensor of shape ``(*lead, *op.range.shape)``
        Data, with the same leading (batch) shape as ``x``.

    Returns
    -------
    discrepancy : float, or numpy.ndarray of shape ``lead`` for batched input

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 4)
    >>> op = odl.ScalingOperator(space, 2.0)
    >>> x = space.one()
    >>> data_discrepancy(op, x, space.zero())  # ||2 * 1|| on [0, 1]
    2.0
    >>> data_discrepancy(op, np.ones((3, 4)), np.full((3, 4), 2.0)).tolist()
    [0.0, 0.0, 0.0]
    """
    if not isinstance(op, odl.Operator):
        raise TypeError(f"op must be an odl.Operator, got {type(op).__name__}")
    xs, x_lead = _elements("x", x, op.domain)
    ys, y_lead = _elements("y", y, op.range)
    if x_lead != y_lead:
        raise ValueError(f"x has batch shape {x_lead} but y has batch shape {y_lead}; expected equal")
    values = np.array([float((op(xi) - yi).norm()) for xi, yi in zip(xs, ys)])
    return float(values[0]) if x_lead == () else values.reshape(x_lead)


def _ray_transform_in(op: odl.Operator):
    """The ray transform inside ``op`` (``A`` or ``A / c``), or None."""
    from odl.applications.tomo import RayTransform

    while op is not None and not isinstance(op, RayTransform):
        op = getattr(op, "operator", None)
    return op


def data_rotation(op: odl.Operator, angle: float) -> odl.Operator:
    """Return the data-space action ``R'`` with ``A R = R' A`` for an image rotation by ``angle``.

    CT (a ray transform, possibly scaled, whose angles cover one period
    evenly): a cyclic shift of the sinogram's angle axis, so ``angle`` must
    be a multiple of the angle step. MRI (single-coil subsampled Fourier with
    a rotation-invariant mask): a rotation of k-space, for multiples of 90
    degrees.

    Examples
    --------
    >>> from odl_learned.operators import ct
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> ray_trafo = ct.ray_transform(space, 8, full_turn=True)
    >>> bool(np.isclose(data_rotation(ray_trafo / 2.0, np.pi / 2).angle, np.pi / 2))
    True
    """
    from odl_learned.operators import groups
    from odl_learned.operators.mri import SubsampledFourier

    ray_trafo = _ray_transform_in(op)
    if ray_trafo is not None:
        angles = ray_trafo.geometry.angles
        step = float(angles[1] - angles[0]) if len(angles) > 1 else 2 * np.pi
        k = angle / step
        if abs(k - round(k)) > 1e-6:
            raise ValueError(f"angle {angle} is not a multiple of the angle step {step} of the ray transform")
        return groups.sinogram_rotation(ray_trafo, int(round(k)))
    if isinstance(op, SubsampledFourier):
        k = angle / (np.pi / 2)
        if abs(k - round(k)) > 1e-9:
            raise ValueError(f"MRI data rotate with the image by multiples of 90 degrees only, got angle {angle}")
        return groups.kspace_rotation90(op, int(round(k)) % 4)
    raise TypeError(f"no known data-space rotation for {op!r}; expected a ray transform or SubsampledFourier")


def equivariance_error(reconstructor: Any, group: Any, data: Any, *, op: odl.Operator | None = None,
                       num_samples: int | None = None, seed: int = 0) -> float:
    r"""Mean relative equivariance error of a reconstructor over group elements and data.

    .. math::
        E = \frac{1}{|S|\,N} \sum_{g \in S} \sum_{n=1}^N
            \frac{\|\Phi(R'_g\, y_n) - R_g\, \Phi(y_n)\|}{\|\Phi(y_n)\|},

    with :math:`R_g` the rotation of images by the angle of ``g`` and
    :math:`R'_g` the corresponding action on data (:func:`data_rotation`),
    so that :math:`A R_g = R'_g A`. An equivariant reconstructor has
    :math:`E = 0` (up to interpolation for rotations that are not multiples
    of 90 degrees).

    Parameters
    ----------
    reconstructor : callable
        ``reconstructor(y)`` for an element ``y`` of the data space (any
        :class:`~odl_learned.reconstructors.Reconstructor`).
    group : CyclicGroup
        Rotations (:class:`odl_learned.operators.groups.CyclicGroup`); the
        identity is skipped.
    data : sequence
        Data elements ``y`` (or ``(y, x)`` pairs, whose ``x`` is ignored).
    op : odl.Operator, optional
        The forward operator (default: ``reconstructor.op``).
    num_samples : int, optional
        Number of group elements drawn at random (seeded); default: all.
    seed : int, optional
        Seed of that draw.

    Examples
    --------
    >>> from odl_learned.operators import ct, groups
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> A = ct.ray_transform(space, 8, full_turn=True)
    >>> y = A(odl.core.phantom.shepp_logan(space, modified=True))
    >>> float(equivariance_error(A.adjoint, groups.CyclicGroup(4), [y], op=A)) < 1e-5  # A^* is equivariant
    True
    """
    op = getattr(reconstructor, "op", None) if op is None else op
    if op is None:
        raise TypeError("equivariance_error needs the forward operator: pass op=")
    elements = [g for g in group.elements() if group.angle(g) % (2 * np.pi) != 0]
    if num_samples is not None:
        check_positive("num_samples", num_samples, integer=True)
        rng = np.random.default_rng(seed)
        elements = [elements[i] for i in rng.choice(len(elements), min(num_samples, len(elements)),
                                                     replace=False)]
    items = [d[0] if isinstance(d, tuple) else d for d in data]
    if not items or not elements:
        raise ValueError("equivariance_error needs at least one data item and one non-identity group element")
    reconstructions = [reconstructor(y) for y in items]  # Phi(y) once, for every group element
    errors = []
    for g in elements:
        data_action = data_rotation(op, group.angle(g))
        for y, x in zip(items, reconstructions):
            image_action = group.action(x.space, g)
            x_rotated_data = reconstructor(op.range.element(data_action(y).asarray()))
            difference = x_rotated_data.asarray() - image_action(x).asarray()
            errors.append(float(np.linalg.norm(difference) / max(np.linalg.norm(x.asarray()), 1e-30)))
    return float(np.mean(errors))
