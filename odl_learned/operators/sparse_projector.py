"""ASTRA's 2D projector as a sparse matrix, applied with torch on whole batches.

:class:`SparseMatrixImpl` is a backend for ``odl.applications.tomo.RayTransform``
(ODL accepts any object with ``call_forward`` and ``call_backward`` as
``impl``), so the operator built with it *is* an ODL ``RayTransform``: FBP,
``adjoint``, ``norm`` and the operator algebra all come from ODL.

The matrix is ASTRA's own (``astra.projector.matrix`` of the projector ODL's
``astra_cpu`` backend uses), so projections agree with ``astra_cpu`` to
float32 rounding. The adjoint is the exact transpose, scaled for the spaces'
weighted inner products exactly as ODL's ASTRA backends do. Written here
because no library applies a projection matrix to a torch batch: one sparse
matrix product replaces one ASTRA call per image, which is what makes
training through the ray transform fast on a CPU, and it runs unchanged on a
GPU (cuSPARSE).
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import odl
import scipy.sparse
import torch
from odl.applications.tomo.backends.astra_cpu import default_astra_proj_type
from odl.applications.tomo.backends.astra_setup import (
    astra_projection_geometry,
    astra_projector,
    astra_volume_geometry,
)

from odl_learned._io import atomic_write
from odl_learned.bridge.convert import element_to_tensor, tensor_to_element, torch_dtype
from odl_learned.bridge.weighting import space_weight

__all__ = ("SparseMatrixImpl", "projection_matrix", "matrix_nbytes_estimate", "CACHE_ENV")

#: Environment variable naming a folder where projection matrices are cached
#: (unset: no cache). A cached matrix needs no ASTRA at all, so a machine
#: without ASTRA (or with an ASTRA build for another CUDA) can still project.
CACHE_ENV = "ODL_LEARNED_MATRIX_CACHE"


def projection_matrix(
    geometry, vol_space: odl.DiscretizedSpace, *, cache_dir: str | os.PathLike | None = None
) -> scipy.sparse.csr_matrix:
    """Return ASTRA's 2D projection matrix for ``geometry`` as a SciPy CSR matrix.

    Rows index the flattened sinogram ``(angle, detector)``, columns the
    flattened image in ODL's axis order. Values are line-intersection
    lengths in the physical units of ``vol_space``.

    Examples
    --------
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
    >>> geometry = tomo.parallel_beam_geometry(space, num_angles=4)
    >>> projection_matrix(geometry, space).shape
    (52, 64)
    """
    if vol_space.ndim != 2:
        raise ValueError(f"projection matrices are built for 2D spaces only, got ndim={vol_space.ndim}")
    cache_dir = os.environ.get(CACHE_ENV) if cache_dir is None else cache_dir
    if not cache_dir:
        return _astra_matrix(geometry, vol_space)
    key = f"{default_astra_proj_type(geometry)}|{geometry!r}|{vol_space.shape}|{vol_space.min_pt}|{vol_space.max_pt}"
    path = os.path.join(cache_dir, f"projection_{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz")
    if os.path.exists(path):
        return scipy.sparse.load_npz(path).tocsr()
    matrix = _astra_matrix(geometry, vol_space)
    atomic_write(path, lambda f: scipy.sparse.save_npz(f, matrix, compressed=True))
    return matrix


def _astra_matrix(geometry, vol_space: odl.DiscretizedSpace) -> scipy.sparse.csr_matrix:
    import astra

    vol_geom = astra_volume_geometry(vol_space, "cpu")
    proj_geom = astra_projection_geometry(geometry, "cpu")
    proj_id = astra_projector(default_astra_proj_type(geometry), vol_geom, proj_geom, 2)
    matrix_id = astra.projector.matrix(proj_id)
    try:
        matrix = astra.matrix.get(matrix_id)
    finally:
        astra.matrix.delete(matrix_id)
        astra.projector.delete(proj_id)
    return scipy.sparse.csr_matrix(matrix)


def matrix_nbytes_estimate(geometry, vol_space: odl.DiscretizedSpace) -> int:
    """Estimate the memory of the projection matrix (and its transpose) in bytes.

    A ray crosses about ``2 * max(shape)`` pixels with ASTRA's linear
    interpolation; each stored entry costs a value and an int64 index, twice
    (matrix and transpose).

    Examples
    --------
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128))
    >>> geometry = tomo.parallel_beam_geometry(space, num_angles=30)
    >>> matrix_nbytes_estimate(geometry, space) < 100 * 2**20
    True
    """
    num_rays = int(np.prod(geometry.partition.shape))
    nnz = num_rays * 2 * max(vol_space.shape)
    itemsize = torch_dtype(vol_space).itemsize
    return 2 * nnz * (itemsize + 8)


def _to_torch_csr(matrix: scipy.sparse.csr_matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.from_numpy(matrix.indptr.astype(np.int64)),
        torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.data).to(dtype),
        size=matrix.shape,
        device=device,
    )


class _SparseMatmul(torch.autograd.Function):
    """``X -> X M^T`` on rows of a batch, with backward ``G -> G M``.

    The backward calls this same function with the matrices swapped, so
    higher derivatives work too.
    """

    @staticmethod
    def forward(ctx, x2d, matrix, matrix_t, scale):
        ctx.matrices = (matrix, matrix_t)
        ctx.scale = scale
        out = (matrix @ x2d.T).T
        return out * scale if scale != 1.0 else out

    @staticmethod
    def backward(ctx, grad):
        matrix, matrix_t = ctx.matrices
        return _SparseMatmul.apply(grad, matrix_t, matrix, ctx.scale), None, None, None


class SparseMatrixImpl:
    """Ray transform backend: ASTRA's projection matrix applied with torch.

    Parameters
    ----------
    geometry : odl.applications.tomo.Geometry
        A 2D geometry (parallel or fan beam).
    vol_space, proj_space : odl.DiscretizedSpace
        Image and sinogram spaces; real, NumPy or PyTorch backend.

    Notes
    -----
    With ``M`` the projection matrix and ``w_X``, ``w_Y`` the constant
    weights of image and sinogram space,

    .. math::
        A x = M x, \\qquad A^* y = \\frac{w_Y}{w_X} M^T y ,

    which makes ``A^*`` the adjoint in the weighted inner products (as in
    ODL's ``astra_cpu`` backend). The matrices live on the device and in the
    dtype of the input, converted once and cached.

    Examples
    --------
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (16, 16))
    >>> geometry = tomo.parallel_beam_geometry(space, num_angles=8)
    >>> ray_trafo = tomo.RayTransform(space, geometry, impl=SparseMatrixImpl)
    >>> ray_trafo(space.one()).shape
    (8, 25)
    >>> batch = torch.ones(4, 1, 16, 16, dtype=torch.float64)
    >>> ray_trafo.get_impl().project(batch).shape
    torch.Size([4, 1, 8, 25])
    """

    def __init__(self, geometry, vol_space: odl.DiscretizedSpace, proj_space: odl.DiscretizedSpace):
        if vol_space.ndim != 2:
            raise ValueError(f"SparseMatrixImpl supports 2D geometries only, got a {vol_space.ndim}D space")
        if not (vol_space.is_real and proj_space.is_real):
            raise TypeError(f"SparseMatrixImpl needs real spaces, got dtype {vol_space.dtype}")
        self.geometry = geometry
        self.vol_space = vol_space
        self.proj_space = proj_space
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "sparse CSR support is in beta"
            self._matrix = projection_matrix(geometry, vol_space)
        self._matrix_t = self._matrix.T.tocsr()
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        self.adjoint_scale = space_weight(proj_space) / space_weight(vol_space)

    @property
    def matrix(self) -> scipy.sparse.csr_matrix:
        """The projection matrix ``M`` (SciPy CSR, float64)."""
        return self._matrix

    def _matrices(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._cache[key] = (
                    _to_torch_csr(self._matrix, like.dtype, like.device),
                    _to_torch_csr(self._matrix_t, like.dtype, like.device),
                )
        return self._cache[key]

    def _apply(self, t: torch.Tensor, in_shape, out_shape, transpose: bool, scale: float) -> torch.Tensor:
        if tuple(t.shape[t.ndim - len(in_shape):]) != tuple(in_shape):
            raise ValueError(f"input has shape {tuple(t.shape)}; expected (..., {', '.join(map(str, in_shape))})")
        if not torch.is_floating_point(t):
            raise TypeError(f"input must be a real floating point tensor, got dtype {t.dtype}")
        batch_shape = t.shape[: t.ndim - len(in_shape)]
        matrix, matrix_t = self._matrices(t)
        if transpose:
            matrix, matrix_t = matrix_t, matrix
        x2d = t.reshape(-1, int(np.prod(in_shape)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = _SparseMatmul.apply(x2d, matrix, matrix_t, scale)
        return out.reshape(*batch_shape, *out_shape)

    def project(self, t: torch.Tensor) -> torch.Tensor:
        """Forward projection of a batch ``(..., *vol_shape) -> (..., *proj_shape)``.

        Differentiable with torch autograd (the backward is the transpose).

        Parameters
        ----------
        t : torch.Tensor
            Real images, shape ``(..., *vol_space.shape)``.

        Returns
        -------
        torch.Tensor
            Sinograms ``M x``, shape ``(..., *proj_space.shape)``, in the dtype
            and on the device of ``t``.

        Examples
        --------
        >>> from odl.applications import tomo
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
        >>> geometry = tomo.parallel_beam_geometry(space, num_angles=4)
        >>> impl = SparseMatrixImpl(geometry, space, tomo.RayTransform(space, geometry).range)
        >>> t = torch.rand(2, 3, 8, 8, dtype=torch.float64)
        >>> sino = impl.project(t)
        >>> sino.shape
        torch.Size([2, 3, 4, 13])
        >>> expected = impl.matrix @ t[1, 2].numpy().ravel()
        >>> bool(np.allclose(sino[1, 2].numpy().ravel(), expected))
        True
        """
        return self._apply(t, self.vol_space.shape, self.proj_space.shape, False, 1.0)

    def backproject(self, t: torch.Tensor) -> torch.Tensor:
        """The ODL adjoint on a batch ``(..., *proj_shape) -> (..., *vol_shape)``.

        Includes the weighting factor ``w_Y / w_X``; differentiable.

        Parameters
        ----------
        t : torch.Tensor
            Real sinograms, shape ``(..., *proj_space.shape)``.

        Returns
        -------
        torch.Tensor
            Images ``(w_Y / w_X) M^T y``, shape ``(..., *vol_space.shape)``.

        Examples
        --------
        >>> from odl.applications import tomo
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
        >>> geometry = tomo.parallel_beam_geometry(space, num_angles=4)
        >>> impl = SparseMatrixImpl(geometry, space, tomo.RayTransform(space, geometry).range)
        >>> x = torch.rand(2, 8, 8, dtype=torch.float64)
        >>> y = torch.rand(2, 4, 13, dtype=torch.float64)
        >>> impl.backproject(y).shape
        torch.Size([2, 8, 8])
        >>> w_x = space_weight(impl.vol_space)  # cell volumes
        >>> w_y = space_weight(impl.proj_space)
        >>> lhs = w_y * (impl.project(x) * y).sum()  # <A x, y> in the weighted products
        >>> rhs = w_x * (x * impl.backproject(y)).sum()  # <x, A^* y>
        >>> bool(torch.isclose(lhs, rhs))
        True
        """
        return self._apply(t, self.proj_space.shape, self.vol_space.shape, True, self.adjoint_scale)

    def call_forward(self, x, out=None, **kwargs):
        """Forward projection of an element of ``vol_space`` (ODL backend API).

        Parameters
        ----------
        x : ``vol_space`` element
            The image.
        out : ``proj_space`` element, optional
            Where to write the result.
        **kwargs
            Ignored (ODL passes backend options).

        Returns
        -------
        ``proj_space`` element
            ``A x``; ``out`` if given.

        Examples
        --------
        >>> from odl.applications import tomo
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
        >>> geometry = tomo.parallel_beam_geometry(space, num_angles=4)
        >>> ray_trafo = tomo.RayTransform(space, geometry, impl=SparseMatrixImpl)
        >>> impl = ray_trafo.get_impl()
        >>> x = space.element(np.random.default_rng(0).random((8, 8)))
        >>> out = ray_trafo.range.zero()
        >>> impl.call_forward(x, out=out) is out
        True
        >>> bool(np.allclose(out.asarray(), ray_trafo(x).asarray()))
        True
        """
        result = tensor_to_element(self.project(element_to_tensor(x)), self.proj_space)
        if out is None:
            return result
        out.data[:] = result.data
        return out

    def call_backward(self, x, out=None, **kwargs):
        """Back-projection (the ODL adjoint) of an element of ``proj_space``.

        Parameters
        ----------
        x : ``proj_space`` element
            The sinogram.
        out : ``vol_space`` element, optional
            Where to write the result.
        **kwargs
            Ignored (ODL passes backend options).

        Returns
        -------
        ``vol_space`` element
            ``A^* x``; ``out`` if given.

        Examples
        --------
        >>> from odl.applications import tomo
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
        >>> geometry = tomo.parallel_beam_geometry(space, num_angles=4)
        >>> ray_trafo = tomo.RayTransform(space, geometry, impl=SparseMatrixImpl)
        >>> rng = np.random.default_rng(0)
        >>> x = space.element(rng.random((8, 8)))
        >>> y = ray_trafo.range.element(rng.random((4, 13)))
        >>> back = ray_trafo.get_impl().call_backward(y)
        >>> back in space
        True
        >>> bool(np.isclose(ray_trafo(x).inner(y), x.inner(back)))
        True
        """
        result = tensor_to_element(self.backproject(element_to_tensor(x)), self.vol_space)
        if out is None:
            return result
        out.data[:] = result.data
        return out
