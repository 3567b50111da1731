"""Second-order total generalised variation (TGV) reconstruction by PDHG."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import odl
from odl.core.set.space import LinearSpaceElement
from odl.functionals import GroupL1Norm, SeparableSum, ZeroFunctional

from odl_learned._checks import check_in_space, check_positive
from odl_learned.reconstructors.base import _PDHGReconstructor

__all__ = ("TGVReconstructor", "symmetrized_gradient")


def symmetrized_gradient(space: odl.DiscretizedSpace) -> odl.ProductSpaceOperator:
    r"""Return the symmetrised gradient :math:`E` on vector fields over ``space``.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        The image space; the domain of :math:`E` is ``space ** d``.

    Returns
    -------
    E : odl.ProductSpaceOperator
        Maps :math:`w = (w_1, \dots, w_d)` to the :math:`d^2` components
        :math:`(E w)_{ij}` in row-major order.

    Notes
    -----
    .. math::
        (E w)_{ij} = \frac{1}{2}\left(\partial_i w_j + \partial_j w_i\right),

    with backward differences and Neumann boundary
    (``odl.PartialDerivative(..., method='backward', pad_mode='symmetric')``),
    the discretisation of [1]_. The off-diagonal entries are stored twice, so
    the pointwise Euclidean norm over the :math:`d^2` components (as taken by
    ``odl.functionals.GroupL1Norm``) is the Frobenius norm of the symmetric
    matrix :math:`E w`.

    References
    ----------
    .. [1] Bredies, K. *Recovering piecewise smooth multichannel images by
       minimization of convex functionals with total generalized variation
       penalty*. In: Efficient Algorithms for Global Optimization Methods in
       Computer Vision, LNCS 8293, Springer, 2014, pp 44-77.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> E = symmetrized_gradient(space)
    >>> len(E.range)
    4
    >>> float(E(E.domain.one()).norm())  # constant fields have E w = 0
    0.0
    """
    if not isinstance(space, odl.DiscretizedSpace):
        raise TypeError(f"space must be an odl.DiscretizedSpace, got {space!r}")
    d = space.ndim
    partial = [odl.PartialDerivative(space, i, method="backward", pad_mode="symmetric") for i in range(d)]
    rows = []
    for i in range(d):
        for j in range(d):
            row: list[Any] = [0] * d
            if i == j:
                row[i] = partial[i]
            else:
                row[j] = 0.5 * partial[i]
                row[i] = 0.5 * partial[j]
            rows.append(row)
    return odl.ProductSpaceOperator(rows, domain=odl.ProductSpace(space, d))


class TGVReconstructor(_PDHGReconstructor):
    r"""Second-order total generalised variation, solved by PDHG.

    Parameters
    ----------
    op : odl.Operator
        Linear forward operator :math:`A` whose domain is an image grid
        (``odl.DiscretizedSpace``), real or complex.
    lam : float
        Regularisation parameter :math:`\lambda > 0` (weight of the
        first-order term).
    alpha : float, optional
        Ratio :math:`\alpha > 0` of the second-order to the first-order
        weight. The default 2 is the usual :math:`\alpha_0 = 2\alpha_1` of [1]_.
    num_iter : int, optional
        Number of PDHG iterations.
    step_ratio : float, optional
        Ratio :math:`\tau / \sigma` of the primal and dual step sizes (their
        product is fixed by :math:`\tau\sigma\|K\|^2 < 1`). For a normalised
        CT operator, about 10 converges several times faster than 1.
    nonneg : bool or None, optional
        Constrain :math:`x \ge 0`; ``None`` means True for real, False for
        complex image spaces.
    magnitude : bool, optional
        Return :math:`|x|` (for complex image spaces).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    The reconstruction solves, over the image :math:`x` and a vector field
    :math:`w`,

    .. math::
        \min_{x, w} \frac{1}{2}\|A x - y\|^2
        + \lambda \left(\|\nabla x - w\|_{2,1} + \alpha \|E w\|_{F,1}\right)
        + \iota_{\ge 0}(x),

    with forward differences :math:`\nabla` and the symmetrised gradient
    :math:`E` of :func:`symmetrized_gradient` (both Neumann). In Bredies'
    notation :math:`\alpha_1 = \lambda` and :math:`\alpha_0 = \lambda\alpha`.
    For ``odl.solvers.pdhg`` the problem is :math:`\min_z f(z) + g(K z)` on
    the product space :math:`z = (x, w)`,

    .. math::
        K = \begin{pmatrix} A & 0 \\ s\nabla & -s I \\ 0 & s E\end{pmatrix},
        \quad
        g(u, p, q) = \frac{1}{2}\|u - y\|^2 + \frac{\lambda}{s}\|p\|_{2,1}
        + \frac{\lambda\alpha}{s}\|q\|_{F,1},

    :math:`f(x, w) = \iota_{\ge 0}(x)`, with the balancing factor
    :math:`s = \|A\| / \|\nabla\|` (same minimiser, much faster convergence;
    see :class:`~odl_learned.reconstructors.TVReconstructor`). Step sizes
    :math:`\tau = \sigma = \sqrt{0.9}/\|K\|`, with :math:`\|K\|` estimated
    once at construction. :math:`\lambda` scales like the TV parameter:
    :math:`\lambda \to \lambda / c^2` for :math:`A \to A/c`, :math:`y \to y/c`.

    References
    ----------
    .. [1] Bredies, K, Kunisch, K and Pock, T. *Total generalized variation*.
       SIAM J. Imaging Sci., 3 (2010), pp 492-526.
    .. [2] Knoll, F, Bredies, K, Pock, T and Stollberger, R. *Second order
       total generalized variation (TGV) for MRI*. Magn. Reson. Med., 65
       (2011), pp 480-491.

    Examples
    --------
    >>> import odl
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    >>> ray_trafo = tomo.RayTransform(
    ...     space, tomo.parallel_beam_geometry(space, num_angles=20), impl="astra_cpu")
    >>> phantom = odl.core.phantom.shepp_logan(space, modified=True)
    >>> tgv = TGVReconstructor(ray_trafo, lam=0.5, num_iter=100)
    >>> x = tgv(ray_trafo(phantom))
    >>> bool((x - phantom).norm() < 0.3 * phantom.norm())
    True
    """

    def __init__(
        self,
        op: odl.Operator,
        lam: float,
        *,
        alpha: float = 2.0,
        num_iter: int = 300,
        step_ratio: float = 1.0,
        nonneg: bool | None = None,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        check_positive("alpha", alpha)  # before the operator norms are estimated
        super().__init__(op, lam, num_iter=num_iter, nonneg=nonneg, magnitude=magnitude, name=name)
        self._alpha = float(alpha)

        grad, s = self._grad, self._grad_scaling
        fields = grad.range
        self._sym_grad = sym_grad = symmetrized_gradient(op.domain)
        self._primal_space = odl.ProductSpace(op.domain, fields)
        x_part = odl.ComponentProjection(self._primal_space, 0)
        w_part = odl.ComponentProjection(self._primal_space, 1)
        pdhg_op = odl.BroadcastOperator(
            op * x_part,
            s * odl.ReductionOperator(grad, odl.ScalingOperator(fields, -1.0)),
            s * sym_grad * w_part,
        )
        self._setup_pdhg(pdhg_op, SeparableSum(self._positivity, ZeroFunctional(fields)), step_ratio)
        self._first = GroupL1Norm(fields)  # pointwise 2-norm of a vector field
        self._second = GroupL1Norm(sym_grad.range)  # pointwise Frobenius norm

    @property
    def alpha(self) -> float:
        r"""Ratio :math:`\alpha` of second- to first-order weight."""
        return self._alpha

    def _config(self) -> Mapping[str, Any]:
        return {"lam": self.lam, "alpha": self.alpha, "num_iter": self.num_iter, "nonneg": self.nonneg}

    def objective(self, x: LinearSpaceElement, w: LinearSpaceElement, y: LinearSpaceElement) -> float:
        r"""Return the TGV objective at the image ``x`` and vector field ``w``.

        Examples
        --------
        >>> import odl
        >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
        >>> tgv = TGVReconstructor(odl.IdentityOperator(space), lam=1.0, num_iter=10)
        >>> w = odl.ProductSpace(space, 2).zero()
        >>> tgv.objective(space.one(), w, space.zero())  # 1/2 * 16 + 0 + 0
        8.0
        """
        check_in_space("w", w, self._primal_space[1])
        data = self._data_fit(x, y)
        reg = self._first(self._grad(x) - w) + self.alpha * self._second(self._sym_grad(w))
        return float(data + self.lam * reg + self._positivity(x))

    def _reconstruct_with_info(self, y: LinearSpaceElement) -> tuple[LinearSpaceElement, dict]:
        s = self._grad_scaling
        z = self._primal_space.zero()
        self._pdhg(z, y, (self.lam / s) * self._first, (self.lam * self.alpha / s) * self._second)
        return z[0].copy(), {"w": z[1].copy()}
