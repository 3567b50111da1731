"""Computed tomography: the ray transform and filtered back-projection.

:func:`ray_transform` returns an ``odl.applications.tomo.RayTransform``; with
``impl=None`` its backend is the fastest correct one available: ASTRA's
projection matrix applied with torch (:mod:`~odl_learned.operators.sparse_projector`)
for 2D geometries whose matrix fits in memory, else ``astra_cuda`` when a GPU
is present, else ``astra_cpu``.
"""

from __future__ import annotations

import numpy as np
import odl
from odl.applications import tomo

from odl_learned._checks import check_choice, check_positive
from odl_learned.bridge.convert import torch_dtype
from odl_learned.operators.sparse_projector import SparseMatrixImpl, matrix_nbytes_estimate

__all__ = ("ray_transform", "fbp", "make_geometry", "RAY_TRAFO_IMPLS", "GEOMETRIES", "FBP_FILTERS")

GEOMETRIES = ("parallel", "fan")
RAY_TRAFO_IMPLS = ("sparse", "astra_cpu", "astra_cuda")
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")

#: Projection matrices above this size (bytes) are not built by ``impl=None``.
MAX_MATRIX_BYTES = 2 * 2**30


def make_geometry(
    space: odl.DiscretizedSpace,
    num_angles: int = 30,
    geometry: str = "parallel",
    *,
    full_turn: bool = False,
    src_radius: float | None = None,
    det_radius: float | None = None,
    det_shape: int | None = None,
):
    """Return a 2D parallel- or fan-beam geometry covering ``space``.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        The image space (2D).
    num_angles : int, optional
        Number of projection angles, evenly spaced.
    geometry : {'parallel', 'fan'}, optional
        Beam shape.
    full_turn : bool, optional
        Parallel beam only: angles over ``[0, 2 pi)`` instead of ``[0, pi)``.
        With a full turn, rotating the image by ``2 pi k / num_angles``
        shifts the sinogram cyclically along the angle axis.
    src_radius, det_radius : float, optional
        Fan beam only: distances of source and detector from the rotation
        centre; default twice and once the radius of the image domain.
    det_shape : int, optional
        Number of detector pixels; default as ODL's geometry helpers choose
        from the sampling theorem.

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128))
    >>> make_geometry(space, 30).angles.shape
    (30,)
    >>> make_geometry(space, 8, "fan").src_radius > 0
    True
    """
    check_positive("num_angles", num_angles, integer=True)
    geometry = check_choice("geometry", geometry, GEOMETRIES)
    if space.ndim != 2:
        raise ValueError(f"space must be 2D, got a {space.ndim}D space {space!r}")
    if geometry == "parallel":
        if src_radius is not None or det_radius is not None:
            raise ValueError("src_radius and det_radius apply to geometry='fan' only")
        geom = tomo.parallel_beam_geometry(space, num_angles=num_angles, det_shape=det_shape)
        if not full_turn:
            return geom
        angles = odl.uniform_partition(0, 2 * np.pi, num_angles)
        return tomo.Parallel2dGeometry(angles, geom.det_partition)
    if full_turn:
        raise ValueError("full_turn applies to geometry='parallel' only; fan beam always covers a full turn")
    radius = float(np.linalg.norm(space.max_pt - space.min_pt)) / 2
    src_radius = 2 * radius if src_radius is None else check_positive("src_radius", src_radius)
    det_radius = radius if det_radius is None else check_positive("det_radius", det_radius)
    return tomo.cone_beam_geometry(space, src_radius, det_radius, num_angles=num_angles, det_shape=det_shape)


def _default_impl(geometry, space: odl.DiscretizedSpace) -> str:
    if space.ndim == 2 and matrix_nbytes_estimate(geometry, space) <= MAX_MATRIX_BYTES:
        return "sparse"
    return "astra_cuda" if tomo.ASTRA_CUDA_AVAILABLE else "astra_cpu"


def ray_transform(
    space: odl.DiscretizedSpace,
    num_angles: int = 30,
    geometry="parallel",
    impl: str | None = None,
    **geometry_options,
) -> tomo.RayTransform:
    """Return the ray transform ``A: space -> sinograms`` as an ODL operator.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D image space, ``float32`` or ``float64``, NumPy or PyTorch backend.
    num_angles : int, optional
        Number of projection angles.
    geometry : {'parallel', 'fan'} or odl.applications.tomo.Geometry, optional
        Beam shape (see :func:`make_geometry`), or a ready ODL geometry.
    impl : {None, 'sparse', 'astra_cpu', 'astra_cuda'}, optional
        Backend. ``None`` picks the fastest correct one: ``'sparse'``
        (ASTRA's projection matrix, applied with torch to whole batches)
        where the matrix fits in memory, else ``'astra_cuda'`` with a GPU,
        else ``'astra_cpu'``.
    **geometry_options
        Passed to :func:`make_geometry` (``full_turn``, ``src_radius``,
        ``det_radius``, ``det_shape``).

    Returns
    -------
    ray_trafo : odl.applications.tomo.RayTransform
        Linear operator with ``adjoint`` (the back-projection, adjoint in the
        spaces' weighted inner products).

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128), dtype="float32")
    >>> ray_trafo = ray_transform(space, num_angles=30)
    >>> ray_trafo.range.shape
    (30, 183)
    >>> sinogram = ray_trafo(odl.core.phantom.shepp_logan(space, modified=True))
    >>> ray_trafo.adjoint(sinogram) in space
    True
    """
    if not isinstance(space, odl.DiscretizedSpace):
        raise TypeError(f"space must be an odl.DiscretizedSpace (e.g. odl.uniform_discr), got {space!r}")
    if not torch_dtype(space).is_floating_point:
        raise TypeError(f"space must have a real floating dtype (float32 or float64), got {space.dtype}")
    if isinstance(geometry, tomo.Geometry):
        if geometry_options:
            raise ValueError(f"options {sorted(geometry_options)} apply only when geometry is a name")
        geom = geometry
    else:
        geom = make_geometry(space, num_angles, geometry, **geometry_options)
    if impl is None:
        impl = _default_impl(geom, space)
    impl = check_choice("impl", impl, RAY_TRAFO_IMPLS)
    if impl == "astra_cuda" and not tomo.ASTRA_CUDA_AVAILABLE:
        raise ValueError("impl='astra_cuda' needs ASTRA with CUDA and a GPU; none was found. Use impl=None")
    backend = SparseMatrixImpl if impl == "sparse" else impl
    return tomo.RayTransform(space, geom, impl=backend)


def fbp(
    ray_trafo: tomo.RayTransform,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    *,
    padding: bool = True,
) -> odl.Operator:
    """Return the filtered back-projection operator for ``ray_trafo``.

    A thin, checked front to ``odl.applications.tomo.fbp_op``.

    Parameters
    ----------
    ray_trafo : odl.applications.tomo.RayTransform
        The ray transform to invert.
    filter_type : {'Ram-Lak', 'Shepp-Logan', 'Cosine', 'Hamming', 'Hann'}, optional
        Filter applied to the sinogram (case-insensitive).
    frequency_scaling : float, optional
        Relative cut-off frequency in ``(0, 1]``; frequencies above it are set
        to zero.
    padding : bool, optional
        Zero-pad the sinogram before filtering (reduces wrap-around).

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128), dtype="float32")
    >>> ray_trafo = ray_transform(space, num_angles=60)
    >>> fbp_op = fbp(ray_trafo, "Hann", 0.8)
    >>> phantom = odl.core.phantom.shepp_logan(space, modified=True)
    >>> reco = fbp_op(ray_trafo(phantom))
    >>> bool((reco - phantom).norm() < 0.5 * phantom.norm())
    True
    """
    if not isinstance(ray_trafo, tomo.RayTransform):
        raise TypeError(f"ray_trafo must be an odl.applications.tomo.RayTransform, got {ray_trafo!r}")
    check_choice("filter_type", filter_type, FBP_FILTERS)
    check_positive("frequency_scaling", frequency_scaling)
    if frequency_scaling > 1:
        raise ValueError(f"frequency_scaling must be in (0, 1], got {frequency_scaling}")
    return tomo.fbp_op(ray_trafo, padding=padding, filter_type=filter_type, frequency_scaling=frequency_scaling)
