"""Total-variation regularised reconstruction solved by ODL's PDHG."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import odl
from odl.core.set.space import LinearSpaceElement
from odl.functionals import GroupL1Norm

from odl_learned.reconstructors.base import _PDHGReconstructor

__all__ = ("TVReconstructor",)


class TVReconstructor(_PDHGReconstructor):
    r"""Isotropic total-variation regularisation, solved by PDHG.

    Parameters
    ----------
    op : odl.Operator
        Linear forward operator :math:`A` whose domain is an image grid
        (``odl.DiscretizedSpace``), real (CT) or complex (MRI).
    lam : float
        Regularisation parameter :math:`\lambda > 0`.
    num_iter : int, optional
        Number of PDHG iterations.
    step_ratio : float, optional
        Ratio :math:`\tau / \sigma` of the primal and dual step sizes (their
        product is fixed by :math:`\tau\sigma\|K\|^2 < 1`). For a normalised
        CT operator, about 10 converges several times faster than 1.
    nonneg : bool or None, optional
        Constrain :math:`x \ge 0`. ``None`` (default) means True for a real
        image space and False for a complex one; True with a complex image
        space raises ``ValueError``.
    magnitude : bool, optional
        Return :math:`|x|` (for complex image spaces).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    The reconstruction solves

    .. math::
        \min_x \frac{1}{2}\|A x - y\|^2 + \lambda \|\nabla x\|_{2,1}
        + \iota_{\ge 0}(x),
        \qquad \|\nabla x\|_{2,1} = \sum_i v\, |(\nabla x)_i|_2,

    with forward differences :math:`\nabla` (``odl.Gradient``, Neumann
    boundary: a constant image has zero total variation), the cell
    volume :math:`v` of the image grid, and the norm of ``op.range``. It is
    written as :math:`\min_x f(x) + g(K x)` for ``odl.solvers.pdhg`` with

    .. math::
        K = \begin{pmatrix} A \\ s \nabla \end{pmatrix},\quad
        g(u, p) = \frac{1}{2}\|u - y\|^2 + \frac{\lambda}{s}\|p\|_{2,1},\quad
        f = \iota_{\ge 0},

    which has the same minimiser for any :math:`s > 0`. We take
    :math:`s = \|A\| / \|\nabla\|`, which balances the two blocks: for the
    128 x 128 Shepp-Logan / 30-angle problem PDHG then reaches a relative
    distance of :math:`10^{-3}` to the minimiser in 300 iterations, while the
    unscaled :math:`K = (A, \nabla)` is still 5% away after 1000. The step
    sizes are :math:`\tau = \sigma = \sqrt{0.9} / \|K\|`
    (``odl.solvers.pdhg_stepsize``), so :math:`\tau\sigma\|K\|^2 < 1`. The
    norms :math:`\|A\|`, :math:`\|\nabla\|`, :math:`\|K\|` are estimated once,
    at construction, by the power method (seeded, hence reproducible).

    Scaling of :math:`\lambda`: if the operator is normalised, :math:`A \to
    A / c` (e.g. :math:`c = \|A\|`) and the data with it, :math:`y \to y / c`,
    the same image is obtained with :math:`\lambda \to \lambda / c^2`.
    :math:`\lambda` also depends on the weightings of the spaces (the cell
    volume :math:`v`; ODL 1.0's ``RayTransform`` has an unweighted data
    space), so choose it per discretisation, e.g. with
    :func:`~odl_learned.reconstructors.grid_search`. Reference: with
    ``lam=1`` on the 128 x 128 problem above (pixel size 1, 5% noise) the
    PSNR is about 29 dB against 19.7 dB for Hann-filtered FBP.

    References
    ----------
    .. [1] Rudin, L I, Osher, S and Fatemi, E. *Nonlinear total variation
       based noise removal algorithms*. Physica D, 60 (1992), pp 259-268.
    .. [2] Chambolle, A and Pock, T. *A first-order primal-dual algorithm for
       convex problems with applications to imaging*. J. Math. Imaging Vis.,
       40 (2011), pp 120-145.
    .. [3] Sidky, E Y, Jorgensen, J H and Pan, X. *Convex optimization
       problem prototyping for image reconstruction in computed tomography
       with the Chambolle-Pock algorithm*. Phys. Med. Biol., 57 (2012),
       pp 3065-3091.

    Examples
    --------
    >>> import odl
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    >>> ray_trafo = tomo.RayTransform(
    ...     space, tomo.parallel_beam_geometry(space, num_angles=20), impl="astra_cpu")
    >>> phantom = odl.core.phantom.shepp_logan(space, modified=True)
    >>> tv = TVReconstructor(ray_trafo, lam=0.5, num_iter=100)
    >>> x = tv(ray_trafo(phantom))
    >>> bool((x - phantom).norm() < 0.3 * phantom.norm())
    True
    """

    def __init__(
        self,
        op: odl.Operator,
        lam: float,
        *,
        num_iter: int = 300,
        step_ratio: float = 1.0,
        nonneg: bool | None = None,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(op, lam, num_iter=num_iter, nonneg=nonneg, magnitude=magnitude, name=name)
        pdhg_op = odl.BroadcastOperator(op, self._grad_scaling * self._grad)
        self._setup_pdhg(pdhg_op, self._positivity, step_ratio)
        self._tv = GroupL1Norm(self._grad.range)  # isotropic: pointwise 2-norm, then L1

    @property
    def grad_scaling(self) -> float:
        r"""Balancing factor :math:`s = \|A\| / \|\nabla\|`."""
        return self._grad_scaling

    def _config(self) -> Mapping[str, Any]:
        return {"lam": self.lam, "num_iter": self.num_iter, "nonneg": self.nonneg}

    def objective(self, x: LinearSpaceElement, y: LinearSpaceElement) -> float:
        r"""Return :math:`\frac12\|Ax - y\|^2 + \lambda\|\nabla x\|_{2,1} + \iota_{\ge 0}(x)`.

        Examples
        --------
        >>> import odl
        >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
        >>> tv = TVReconstructor(odl.IdentityOperator(space), lam=1.0, num_iter=10)
        >>> tv.objective(space.one(), space.zero())  # 1/2 * 16 + 0
        8.0
        """
        data = self._data_fit(x, y)
        return float(data + self.lam * self._tv(self._grad(x)) + self._positivity(x))

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        x = self.image_space.zero()
        self._pdhg(x, y, (self.lam / self.grad_scaling) * self._tv)
        return x
