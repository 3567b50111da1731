"""Computed tomography: the ray transform and filtered back-projection.

:func:`ray_transform` returns an ``odl.applications.tomo.RayTransform``; with
``impl=None`` its backend is the fastest correct one available: ASTRA's
projection matrix applied with torch (:mod:`~odl_learned.operators.sparse_projector`)
for 2D geometries whose matrix fits in memory, else ``astra_cuda`` when a GPU
is present, else ``astra_cpu``.

:func:`fbp` returns ODL's filtered back-projection ``A^* F``. For 2D ray
transforms with the sparse backend the filter ``F`` is a
:class:`DetectorFilter`, the same linear map as ODL's Fourier-domain filter
written as a matrix acting on each angle's detector row, so the whole FBP runs
as one batched torch function inside
:class:`~odl_learned.bridge.OperatorModule`.
"""

from __future__ import annotations

import numpy as np
import odl
import torch
from odl.applications import tomo
from odl.core.space.base_tensors import TensorSpace

from odl_learned._checks import check_choice, check_positive, check_shape_suffix
from odl_learned.bridge.convert import element_to_tensor, torch_dtype
from odl_learned.bridge.native import TorchNativeOperator
from odl_learned.bridge.weighting import space_weight
from odl_learned.operators.sparse_projector import SparseMatrixImpl, matrix_nbytes_estimate

__all__ = (
    "ray_transform",
    "fbp",
    "make_geometry",
    "DetectorFilter",
    "RAY_TRAFO_IMPLS",
    "GEOMETRIES",
    "FBP_FILTERS",
)

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


class DetectorFilter(TorchNativeOperator):
    """The same linear filter ``F`` applied to every angle row of a sinogram.

    On a sinogram ``y`` of shape ``(n_angles, n_det)`` the operator computes
    ``y @ F.T``, i.e. ``F`` acts on each detector row. This is how the FBP
    filter of a 2D ray transform acts, and as a dense matrix it runs on whole
    batches ``(..., n_angles, n_det)`` in one torch matrix product, on the
    input's device and in its dtype (the matrix is converted once per dtype
    and device, then cached), differentiable with torch autograd.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        The sinogram space (2D, real, constant weighting), domain and range.
    matrix : array-like or torch.Tensor
        The filter ``F``, shape ``(n_det, n_det)`` with
        ``n_det = space.shape[1]``; stored in float64.

    Notes
    -----
    Domain and range are the same space, with one constant weight ``w``, so
    ``<F y, z> = w (F y) . z = <y, F^T z>``: the ODL adjoint is the
    :class:`DetectorFilter` with ``F.T``.

    Examples
    --------
    A three-point moving average along the detector:

    >>> space = odl.uniform_discr([0, 0], [1, 1], (2, 4))
    >>> avg = DetectorFilter(space, (np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1)) / 3)
    >>> avg(space.element([[3, 0, 0, 0], [0, 0, 0, 3]])).asarray()
    array([[ 1.,  1.,  0.,  0.],
           [ 0.,  0.,  1.,  1.]])
    >>> avg.torch_call(torch.ones(8, 1, 2, 4, dtype=torch.float32)).shape  # a batch
    torch.Size([8, 1, 2, 4])
    >>> bool(np.array_equal(avg.adjoint.matrix, avg.matrix.T))
    True
    """

    def __init__(self, space: odl.DiscretizedSpace, matrix):
        if not isinstance(space, TensorSpace):
            raise TypeError(f"space must be an ODL tensor space (e.g. odl.uniform_discr), got {space!r}")
        if len(space.shape) != 2:
            raise ValueError(f"space must be 2D (angles, detector pixels), got shape {tuple(space.shape)}")
        if not space.is_real:
            raise TypeError(f"space must be real, got dtype {space.dtype}")
        if not isinstance(space_weight(space), float):
            raise ValueError(f"space must have a constant weighting, got {space.weighting!r}")
        if isinstance(matrix, torch.Tensor):
            matrix = matrix.detach().cpu().numpy()
        matrix = np.array(matrix, dtype=np.float64, order="C")
        n_det = space.shape[1]
        if matrix.shape != (n_det, n_det):
            raise ValueError(f"matrix must have shape ({n_det}, {n_det}) for space of shape {tuple(space.shape)}, got {matrix.shape}")
        super().__init__(space, space, linear=True)
        self._matrix = matrix
        self._matrix.setflags(write=False)
        self._cache: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
        self._adjoint: DetectorFilter | None = None

    @classmethod
    def from_operator(cls, filter_op: odl.Operator) -> DetectorFilter:
        """Return the :class:`DetectorFilter` equal to a linear ODL operator.

        ``filter_op`` must map a 2D sinogram space to itself and act on every
        angle row with the same linear map, like ODL's
        ``odl.applications.tomo.fbp_filter_op`` for 2D geometries. The
        matrix is read off from impulses: ``n_angles`` columns per call of
        ``filter_op``, column ``j`` from an impulse at detector pixel ``j``
        in one angle row. Then ``filter_op`` is applied to a random sinogram
        and compared with the matrix applied to every row, which checks
        that the filter is the same for all rows and mixes no rows.

        Parameters
        ----------
        filter_op : odl.Operator
            Linear operator on a real 2D space with constant weighting.

        Returns
        -------
        detector_filter : DetectorFilter
            The same linear map on ``filter_op.domain``.

        Raises
        ------
        ValueError
            If ``filter_op`` is not linear, not an operator from a space to
            itself, or does not apply one filter to every angle row alike
            (relative mismatch above ``1000 * eps`` of the space's dtype).

        Examples
        --------
        >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32))
        >>> ray_trafo = ray_transform(space, num_angles=10)
        >>> ramp = tomo.fbp_filter_op(ray_trafo, filter_type="Ram-Lak")
        >>> filt = DetectorFilter.from_operator(ramp)
        >>> filt.matrix.shape
        (47, 47)
        >>> y = ray_trafo(odl.core.phantom.shepp_logan(space, modified=True))
        >>> bool((filt(y) - ramp(y)).norm() < 1e-10 * ramp(y).norm())
        True
        """
        if not isinstance(filter_op, odl.Operator):
            raise TypeError(f"filter_op must be an odl.Operator, got {type(filter_op).__name__}")
        if not filter_op.is_linear:
            raise ValueError(f"filter_op must be linear, got {filter_op!r}")
        space = filter_op.domain
        if filter_op.range != space:
            raise ValueError(f"filter_op must map a space to itself; domain {space!r} != range {filter_op.range!r}")
        if len(getattr(space, "shape", ())) != 2:
            raise ValueError(f"filter_op must act on a 2D sinogram space, got domain {space!r}")
        n_angles, n_det = space.shape
        dtype = np.dtype(str(torch_dtype(space)).replace("torch.", ""))

        def apply(arr: np.ndarray) -> np.ndarray:
            data = torch.as_tensor(arr.astype(dtype)) if getattr(space, "impl", "numpy") == "pytorch" else arr.astype(dtype)
            if isinstance(data, torch.Tensor):
                data = data.to(device=space.device)
            out = element_to_tensor(filter_op(space.element(data)))
            return out.detach().cpu().numpy().astype(np.float64)

        # Probe n_angles columns at once: row a carries the impulse at j = start + a.
        matrix = np.empty((n_det, n_det))
        rows = np.arange(n_angles)
        for start in range(0, n_det, n_angles):
            cols = np.arange(start, min(start + n_angles, n_det))
            impulses = np.zeros((n_angles, n_det))
            impulses[rows[: cols.size], cols] = 1.0
            out = apply(impulses)
            matrix[:, cols] = out[: cols.size].T
        # Check: one random sinogram, every row through the same matrix.
        test = np.random.default_rng(0).standard_normal((n_angles, n_det)).astype(dtype).astype(np.float64)
        expected = apply(test)
        error = np.linalg.norm(test @ matrix.T - expected) / max(np.linalg.norm(expected), np.finfo(np.float64).tiny)
        tol = 1000 * np.finfo(dtype).eps
        if not error <= tol:
            raise ValueError(
                f"filter_op does not apply the same linear filter to every angle row (relative mismatch "
                f"{error:.2e} > {tol:.1e}), so it is not a DetectorFilter: {filter_op!r}"
            )
        return cls(space, matrix)

    @property
    def matrix(self) -> np.ndarray:
        """The filter matrix ``F`` (read-only float64 array, ``(n_det, n_det)``)."""
        return self._matrix

    def _torch_matrix_t(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = torch.from_numpy(self._matrix.T.copy()).to(dtype=like.dtype, device=like.device)
        return self._cache[key]

    def torch_call(self, y: torch.Tensor) -> torch.Tensor:
        """Filter a batch ``y`` of shape ``(..., n_angles, n_det)``: ``y @ F.T``."""
        check_shape_suffix("input", tuple(y.shape), tuple(self.domain.shape))
        if not torch.is_floating_point(y):
            raise TypeError(f"input must be a real floating point tensor, got dtype {y.dtype}")
        return y @ self._torch_matrix_t(y)

    @property
    def adjoint(self) -> DetectorFilter:
        """The :class:`DetectorFilter` with the transposed matrix ``F.T``."""
        if self._adjoint is None:
            self._adjoint = DetectorFilter(self.domain, self._matrix.T)
            self._adjoint._adjoint = self
        return self._adjoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.domain!r}, <{self._matrix.shape[0]}x{self._matrix.shape[1]} matrix>)"


def _batched_fbp_problem(ray_trafo: tomo.RayTransform) -> str | None:
    """Why FBP of ``ray_trafo`` cannot be batched, or None if it can."""
    if ray_trafo.domain.ndim != 2:
        return f"ray_trafo is {ray_trafo.domain.ndim}D, batched FBP is 2D only"
    impl = ray_trafo.get_impl(ray_trafo.use_cache)
    if not isinstance(impl, SparseMatrixImpl):
        return (
            f"ray_trafo has the backend {type(impl).__name__}, which projects one image at a time; "
            "batched FBP needs the sparse backend (ray_transform(..., impl='sparse' or None))"
        )
    return None


def fbp(
    ray_trafo: tomo.RayTransform,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    *,
    padding: bool = True,
    batched: bool | None = None,
) -> odl.Operator:
    """Return the filtered back-projection operator for ``ray_trafo``.

    Equal to ``odl.applications.tomo.fbp_op``: ``ray_trafo.adjoint * F``
    with ODL's filter ``F`` (``fbp_filter_op``). With ``batched`` the filter
    is the :class:`DetectorFilter` read off from ODL's, so
    :class:`~odl_learned.bridge.OperatorModule` runs the whole FBP on a
    batch in one torch function (on CPU or GPU, differentiable); without it
    the filter is ODL's Fourier code, called once per image.

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
    batched : bool or None, optional
        Build the batched, torch-native FBP. ``None`` (default): where
        possible, i.e. for 2D ray transforms with the sparse backend
        (parallel or fan beam; ODL's 2D filter is the same for every angle
        in both). ``True`` raises ``ValueError`` where impossible;
        ``False`` returns ODL's ``fbp_op`` as it is.

    Returns
    -------
    fbp_op : odl.Operator
        Linear operator from ``ray_trafo.range`` to ``ray_trafo.domain``.

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128), dtype="float32")
    >>> ray_trafo = ray_transform(space, num_angles=60)
    >>> fbp_op = fbp(ray_trafo, "Hann", 0.8)
    >>> phantom = odl.core.phantom.shepp_logan(space, modified=True)
    >>> reco = fbp_op(ray_trafo(phantom))
    >>> bool((reco - phantom).norm() < 0.5 * phantom.norm())
    True

    As a torch module it filters and back-projects a whole batch at once:

    >>> from odl_learned.bridge import OperatorModule
    >>> layer = OperatorModule(fbp_op)
    >>> layer.batched
    True
    >>> layer(torch.zeros(4, 1, 60, 183)).shape
    torch.Size([4, 1, 128, 128])
    """
    if not isinstance(ray_trafo, tomo.RayTransform):
        raise TypeError(f"ray_trafo must be an odl.applications.tomo.RayTransform, got {ray_trafo!r}")
    check_choice("filter_type", filter_type, FBP_FILTERS)
    check_positive("frequency_scaling", frequency_scaling)
    if frequency_scaling > 1:
        raise ValueError(f"frequency_scaling must be in (0, 1], got {frequency_scaling}")
    if batched is not None and not isinstance(batched, (bool, np.bool_)):
        raise TypeError(f"batched must be True, False or None, got {batched!r}")
    options = {"padding": padding, "filter_type": filter_type, "frequency_scaling": frequency_scaling}
    if batched is not False:
        problem = _batched_fbp_problem(ray_trafo)
        if problem is None:
            return ray_trafo.adjoint * DetectorFilter.from_operator(tomo.fbp_filter_op(ray_trafo, **options))
        if batched:
            raise ValueError(f"batched=True is impossible: {problem}. Use batched=None or False")
    return tomo.fbp_op(ray_trafo, **options)
