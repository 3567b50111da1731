"""Sparsity in an orthogonal wavelet basis, solved by (accelerated) proximal gradient."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import odl
import pywt
from odl.core.set.space import LinearSpaceElement
from odl.functionals import L1Norm, L2NormSquared, simple_functional
from odl.solvers import proximal_composition

from odl_learned._checks import check_choice, check_positive
from odl_learned.bridge.convert import is_torch_space
from odl_learned.reconstructors.base import _estimate_opnorm, _VariationalReconstructor

__all__ = ("WaveletL1Reconstructor", "orthonormal_wavelet_transform", "ORTHOGONAL_WAVELETS")

#: Names of the PyWavelets wavelets with an orthogonal basis (Haar, Daubechies,
#: Symlets, Coiflets, discrete Meyer).
ORTHOGONAL_WAVELETS = tuple(w for w in pywt.wavelist(kind="discrete") if pywt.Wavelet(w).orthogonal)


def orthonormal_wavelet_transform(
    space: odl.DiscretizedSpace, wavelet: str = "db4", *, levels: int | None = None
) -> odl.Operator:
    r"""Return an orthonormal wavelet transform :math:`W` with :math:`W^* W = I`.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        Image space (NumPy back-end; PyWavelets works on NumPy arrays).
    wavelet : str, optional
        Name of an orthogonal PyWavelets wavelet, one of
        :data:`ORTHOGONAL_WAVELETS` (``'haar'``, ``'db4'``, ``'sym8'``, ...).
    levels : int, optional
        Number of decomposition levels. Every axis length must be divisible by
        ``2 ** levels``. Default: the largest such number that PyWavelets
        allows for the filter length (``pywt.dwtn_max_level``).

    Returns
    -------
    W : odl.Operator
        ``sqrt(v) * odl.trafos.WaveletTransform(space, wavelet, levels,
        pad_mode='pywt_periodic')`` with the cell volume :math:`v`.

    Notes
    -----
    With periodic extension and axis lengths divisible by :math:`2^L`, the
    discrete wavelet transform of an orthogonal wavelet is an orthogonal
    matrix on the raw arrays. ODL's image space carries the inner product
    weighted by :math:`v`, the coefficient space is unweighted, so
    ``WaveletTransform`` satisfies :math:`W^* W = I / v`; scaling by
    :math:`\sqrt{v}` gives

    .. math::
        W^* W = W W^* = I.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [1, 1], (16, 16))
    >>> W = orthonormal_wavelet_transform(space, "db2")
    >>> x = odl.core.phantom.shepp_logan(space, modified=True)
    >>> bool(abs(W(x).norm() - x.norm()) < 1e-10 * x.norm())
    True
    >>> orthonormal_wavelet_transform(space, "bior2.2")
    Traceback (most recent call last):
    ...
    ValueError: wavelet 'bior2.2' is not orthogonal; use one of ORTHOGONAL_WAVELETS (e.g. 'haar', 'db4', 'sym8')
    """
    wavelet, levels = _check_wavelet(space, wavelet, levels)
    transform = odl.trafos.WaveletTransform(space, wavelet, nlevels=levels, pad_mode="pywt_periodic")
    return math.sqrt(space.cell_volume) * transform


def _check_wavelet(space: odl.DiscretizedSpace, wavelet: str, levels: int | None) -> tuple[str, int]:
    """Check the wavelet options; return ``(wavelet, levels)`` with the default resolved."""
    if not isinstance(space, odl.DiscretizedSpace):
        raise TypeError(f"space must be an odl.DiscretizedSpace, got {space!r}")
    if is_torch_space(space):
        raise TypeError("the wavelet transform (PyWavelets) needs a NumPy-backed space, got impl='pytorch'")
    wavelet = check_choice("wavelet", wavelet, pywt.wavelist(kind="discrete"))
    if wavelet not in ORTHOGONAL_WAVELETS:
        raise ValueError(
            f"wavelet {wavelet!r} is not orthogonal; use one of ORTHOGONAL_WAVELETS (e.g. 'haar', 'db4', 'sym8')"
        )
    shape = tuple(space.shape)
    max_level = pywt.dwtn_max_level(shape, wavelet)
    max_dyadic = min(_dyadic_order(n) for n in shape)
    if levels is None:
        levels = min(max_level, max_dyadic)
        if levels < 1:
            raise ValueError(
                f"no wavelet level fits shape {shape} with {wavelet!r}: the axis lengths must be even "
                "and at least as long as the filter"
            )
    check_positive("levels", levels, integer=True)
    if levels > max_level:
        raise ValueError(f"levels={levels} is too many for shape {shape} and {wavelet!r}; at most {max_level}")
    if levels > max_dyadic:
        raise ValueError(
            f"levels={levels} needs every axis length divisible by {2 ** levels}; got shape {shape}"
        )
    return wavelet, int(levels)


def _dyadic_order(n: int) -> int:
    """Largest ``k`` with ``2 ** k`` dividing ``n``."""
    k = 0
    while n % 2 == 0 and n > 0:
        n //= 2
        k += 1
    return k


def _fista(
    x: LinearSpaceElement,
    prox: odl.Operator,
    grad: Callable[[LinearSpaceElement], LinearSpaceElement],
    gamma: float,
    niter: int,
) -> None:
    """FISTA iteration in place on ``x`` (Beck and Teboulle 2009).

    Written by hand because ``odl.solvers.accelerated_proximal_gradient`` of
    ODL 1.0.0 cannot run: it passes NumPy ``float64`` coefficients to
    ``lincomb``, which ODL 1.0 elements reject with a ``RuntimeError`` (a test
    watches for the fix). Same update order as ODL's version; every scalar is
    a Python float.
    """
    z = x.copy()
    x_old = x.space.element()
    tmp = x.space.element()
    t = 1.0
    for _ in range(niter):
        x_old.assign(x)
        tmp.lincomb(1.0, z, -gamma, grad(z))
        prox(tmp, out=x)
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        beta = (t - 1.0) / t_new
        z.lincomb(1.0 + beta, x, -beta, x_old)
        t = t_new


class WaveletL1Reconstructor(_VariationalReconstructor):
    r"""L1 sparsity of orthogonal wavelet coefficients, solved by FISTA.

    Parameters
    ----------
    op : odl.Operator
        Linear forward operator :math:`A` on an image grid (NumPy back-end),
        real (CT) or complex (MRI).
    lam : float
        Regularisation parameter :math:`\lambda > 0`.
    wavelet : str, optional
        An orthogonal PyWavelets wavelet, see :data:`ORTHOGONAL_WAVELETS`.
    levels : int, optional
        Decomposition levels (default: the most that fit, see
        :func:`orthonormal_wavelet_transform`).
    num_iter : int, optional
        Number of iterations.
    accelerated : bool, optional
        FISTA (True) or plain proximal gradient / ISTA
        (``odl.solvers.proximal_gradient``, False).
    magnitude : bool, optional
        Return :math:`|x|` (for complex image spaces).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    The reconstruction solves

    .. math::
        \min_x \frac{1}{2}\|A x - y\|^2 + \lambda \|W x\|_1,

    with the orthonormal wavelet transform :math:`W` of
    :func:`orthonormal_wavelet_transform` (periodic boundary; all
    coefficients, including the coarsest approximation, are penalised). As
    :math:`W` is orthogonal, :math:`W^* W = I`, the proximal operator of the
    regulariser is available in closed form (``odl.solvers.proximal_composition``),

    .. math::
        \operatorname{prox}_{\gamma\lambda\|W\cdot\|_1}(z)
        = W^* \, \mathcal{S}_{\gamma\lambda}(W z),\qquad
        \mathcal{S}_t(c) = \frac{c}{|c|}\max(|c| - t, 0),

    the soft-thresholding :math:`\mathcal{S}` acting on the modulus for
    complex coefficients (complex images are supported). The data term has
    gradient :math:`A^*(Ax - y)` with Lipschitz constant :math:`\|A\|^2`; the
    step is :math:`\gamma = 0.99 / \|A\|^2`, :math:`\|A\|` estimated once at
    construction. If the operator is normalised, :math:`A \to A / c`, and the
    data with it, :math:`y \to y / c`, the same image is obtained with
    :math:`\lambda \to \lambda / c^2`.

    References
    ----------
    .. [1] Daubechies, I, Defrise, M and De Mol, C. *An iterative
       thresholding algorithm for linear inverse problems with a sparsity
       constraint*. Comm. Pure Appl. Math., 57 (2004), pp 1413-1457.
    .. [2] Beck, A and Teboulle, M. *A fast iterative shrinkage-thresholding
       algorithm for linear inverse problems*. SIAM J. Imaging Sci., 2
       (2009), pp 183-202.

    Examples
    --------
    >>> import odl
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    >>> ray_trafo = tomo.RayTransform(
    ...     space, tomo.parallel_beam_geometry(space, num_angles=20), impl="astra_cpu")
    >>> phantom = odl.core.phantom.shepp_logan(space, modified=True)
    >>> reco = WaveletL1Reconstructor(ray_trafo, lam=0.1, wavelet="db2", num_iter=100)
    >>> x = reco(ray_trafo(phantom))
    >>> bool((x - phantom).norm() < 0.5 * phantom.norm())
    True
    """

    def __init__(
        self,
        op: odl.Operator,
        lam: float,
        *,
        wavelet: str = "db4",
        levels: int | None = None,
        num_iter: int = 300,
        accelerated: bool = True,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(op, lam, num_iter=num_iter, magnitude=magnitude, name=name)
        if not isinstance(accelerated, bool):
            raise TypeError(f"accelerated must be a bool, got {accelerated!r}")
        wavelet, levels = _check_wavelet(op.domain, wavelet, levels)
        W = orthonormal_wavelet_transform(op.domain, wavelet, levels=levels)
        self._wavelet = wavelet
        self._levels = levels
        self._accelerated = accelerated
        self._W = W
        l1 = self._lam * L1Norm(W.range)
        self._regulariser = simple_functional(
            op.domain,
            fcall=lambda x: l1(W(x)),
            prox=proximal_composition(l1.proximal, W, 1.0),  # W^* W = I: mu = 1
        )
        self._op_norm = _estimate_opnorm(op)
        self._step = 0.99 / self._op_norm**2

    @property
    def wavelet(self) -> str:
        """Name of the wavelet."""
        return self._wavelet

    @property
    def levels(self) -> int:
        """Number of decomposition levels."""
        return self._levels

    @property
    def accelerated(self) -> bool:
        """FISTA (True) or ISTA (False)."""
        return self._accelerated

    @property
    def wavelet_transform(self) -> odl.Operator:
        """The orthonormal wavelet transform :math:`W`."""
        return self._W

    @property
    def op_norm(self) -> float:
        r"""Estimated :math:`\|A\|`, cached at construction."""
        return self._op_norm

    def _config(self) -> Mapping[str, Any]:
        return {
            "lam": self.lam,
            "wavelet": self.wavelet,
            "levels": self.levels,
            "num_iter": self.num_iter,
            "accelerated": self.accelerated,
        }

    def objective(self, x: LinearSpaceElement, y: LinearSpaceElement) -> float:
        r"""Return :math:`\frac12\|Ax - y\|^2 + \lambda\|Wx\|_1`.

        Examples
        --------
        >>> import odl
        >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
        >>> reco = WaveletL1Reconstructor(odl.IdentityOperator(space), lam=1.0, wavelet="haar")
        >>> reco.objective(space.zero(), space.one())  # 1/2 * 16 + 0
        8.0
        """
        return float(self._data_fit(x, y) + self._regulariser(x))

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        data_fit = 0.5 * L2NormSquared(self.data_space).translated(y) * self.op
        x = self.image_space.zero()
        if self.accelerated:
            _fista(x, self._regulariser.proximal(self._step), data_fit.gradient, self._step, self.num_iter)
        else:
            odl.solvers.proximal_gradient(x, self._regulariser, data_fit, self._step, self.num_iter)
        return x
