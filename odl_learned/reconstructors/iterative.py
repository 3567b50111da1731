"""Iterative regularisation stopped by Morozov's discrepancy principle.

Landweber and CGLS converge to a least-squares solution, which for noisy data
is useless (semi-convergence); stopping early regularises. The discrepancy
principle stops at the first iterate whose residual drops to the noise level,

.. math::
    k_* = \\min\\{k \\ge 0 : \\|A x_k - y\\| \\le \\tau \\delta\\},\\qquad \\tau > 1,

where :math:`\\delta` is the expected norm of the noise (see
:func:`noise_norm`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import odl
from odl.core.set.space import LinearSpaceElement

from odl_learned._checks import check_positive
from odl_learned.reconstructors.base import Reconstructor, _check_linear_op, _estimate_opnorm

__all__ = ("noise_norm", "LandweberReconstructor", "CGLSReconstructor")


def noise_norm(range_space: odl.LinearSpace, sigma: float) -> float:
    r"""Return the expected norm :math:`\delta` of white noise of std ``sigma``.

    Parameters
    ----------
    range_space : odl.LinearSpace
        The data space (``op.range``), with its weighting.
    sigma : float
        Standard deviation of each entry of the noise; for complex data
        :math:`\mathbb{E}|n_i|^2 = \sigma^2` (i.e. :math:`\sigma/\sqrt 2` per
        real and imaginary part).

    Returns
    -------
    delta : float
        :math:`\sqrt{\mathbb{E}\|n\|^2}` in the norm of ``range_space``.

    Notes
    -----
    For a space with weights :math:`w_i`, :math:`\|n\|^2 = \sum_i w_i |n_i|^2`,
    so

    .. math::
        \delta = \sigma \sqrt{\textstyle\sum_i w_i} = \sigma \|1\|
        = \sigma \sqrt{N w}\ \text{ for a constant weight } w \text{ and } N
        \text{ entries}.

    The actual :math:`\|n\|` deviates from :math:`\delta` by a relative
    :math:`O(1/\sqrt{2N})`, which the safety factor :math:`\tau > 1` of the
    discrepancy principle absorbs.

    Examples
    --------
    >>> import odl
    >>> noise_norm(odl.rn(100), 0.5)
    5.0
    >>> noise_norm(odl.uniform_discr(0, 4, 100), 0.5)  # weight 0.04
    1.0
    """
    if not isinstance(range_space, odl.LinearSpace):
        raise TypeError(f"range_space must be an odl.LinearSpace, got {type(range_space).__name__}")
    check_positive("sigma", sigma)
    return float(sigma) * float(range_space.one().norm())


class _DiscrepancyReached(Exception):
    """Raised inside an ODL solver's callback to stop the iteration."""


class _IterativeReconstructor(Reconstructor):
    """Shared parts of the discrepancy-stopped reconstructors."""

    def __init__(
        self,
        op: odl.Operator,
        noise_level: float | None,
        *,
        tau: float,
        max_iter: int,
        magnitude: bool,
        name: str | None,
    ) -> None:
        _check_linear_op(op)
        if noise_level is not None:
            check_positive("noise_level", noise_level)
        check_positive("tau", tau)
        check_positive("max_iter", max_iter, integer=True)
        super().__init__(op, name=name, magnitude=magnitude)
        self._noise_level = None if noise_level is None else float(noise_level)
        self._tau = float(tau)
        self._max_iter = int(max_iter)

    @property
    def noise_level(self) -> float | None:
        r"""Noise norm :math:`\delta` (``None``: no early stopping)."""
        return self._noise_level

    @property
    def tau(self) -> float:
        r"""Safety factor :math:`\tau` of the discrepancy principle."""
        return self._tau

    @property
    def max_iter(self) -> int:
        """Largest number of iterations."""
        return self._max_iter

    @property
    def threshold(self) -> float:
        r"""Stopping threshold :math:`\tau\delta` (0 without a noise level)."""
        return 0.0 if self.noise_level is None else self.tau * self.noise_level

    def _config(self) -> Mapping[str, Any]:
        return {"noise_level": self.noise_level, "tau": self.tau, "max_iter": self.max_iter}

    def _solve(self, x: LinearSpaceElement, y: LinearSpaceElement, callback: Any) -> None:
        raise NotImplementedError

    def _reconstruct_with_info(self, y: LinearSpaceElement) -> tuple[LinearSpaceElement, dict]:
        # ODL's solvers have no stopping rule, so a callback checks the
        # discrepancy after every iteration and ends the solver with an
        # exception. The callback only sees the iterate, so the residual costs
        # one extra application of A per iteration.
        threshold = self.threshold
        x = self.image_space.zero()
        residuals = [float(y.norm())]  # x_0 = 0

        def callback(x_k: LinearSpaceElement) -> None:
            residuals.append(float((self.op(x_k) - y).norm()))
            if residuals[-1] <= threshold:
                raise _DiscrepancyReached

        stopped = residuals[0] <= threshold
        if not stopped:
            try:
                self._solve(x, y, callback)
            except _DiscrepancyReached:
                stopped = True
        info = {
            "num_iter": len(residuals) - 1,
            "residual_norms": residuals,
            "threshold": threshold,
            "stopped_by": "discrepancy" if stopped else "max_iter",
        }
        return x, info


class LandweberReconstructor(_IterativeReconstructor):
    r"""Landweber iteration stopped by the discrepancy principle.

    Parameters
    ----------
    op : odl.Operator
        Linear forward operator :math:`A` (real or complex).
    noise_level : float or None
        Expected noise norm :math:`\delta = \mathbb{E}[\|n\|^2]^{1/2}` in the
        norm of ``op.range`` (see :func:`noise_norm`). ``None`` disables the
        stopping rule: ``max_iter`` iterations are done.
    tau : float, optional
        Safety factor :math:`\tau > 1` of the discrepancy principle.
    max_iter : int, optional
        Largest number of iterations.
    step : float, optional
        Relaxation :math:`\omega \in (0, 2/\|A\|^2)`. Default
        :math:`1/\|A\|^2`, :math:`\|A\|` estimated once at construction.
    magnitude : bool, optional
        Return :math:`|x|` (for complex image spaces).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    From :math:`x_0 = 0`, ``odl.solvers.landweber`` iterates

    .. math::
        x_{k+1} = x_k - \omega A^*(A x_k - y),

    and the iteration stops at the first :math:`k` with
    :math:`\|A x_k - y\| \le \tau\delta` (or at ``max_iter``).
    :meth:`~odl_learned.reconstructors.Reconstructor.reconstruct_with_info`
    returns ``info`` with ``num_iter`` (:math:`k_*`), ``residual_norms``
    (:math:`\|A x_k - y\|` for :math:`k = 0, \dots, k_*`), ``threshold``
    (:math:`\tau\delta`) and ``stopped_by`` (``'discrepancy'`` or
    ``'max_iter'``).

    References
    ----------
    .. [1] Landweber, L. *An iteration formula for Fredholm integral
       equations of the first kind*. Amer. J. Math., 73 (1951), pp 615-624.
    .. [2] Engl, H W, Hanke, M and Neubauer, A. *Regularization of Inverse
       Problems*. Kluwer, 1996, chapter 6.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> reco = LandweberReconstructor(odl.ScalingOperator(space, 2.0), noise_level=0.1)
    >>> x, info = reco.reconstruct_with_info(space.one())
    >>> info["stopped_by"], info["num_iter"], info["residual_norms"][-1] <= 0.102
    ('discrepancy', 1, True)
    """

    def __init__(
        self,
        op: odl.Operator,
        noise_level: float | None,
        *,
        tau: float = 1.02,
        max_iter: int = 1000,
        step: float | None = None,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(op, noise_level, tau=tau, max_iter=max_iter, magnitude=magnitude, name=name)
        if step is None:
            self._step = 1.0 / _estimate_opnorm(op) ** 2
        else:
            check_positive("step", step)
            self._step = float(step)

    @property
    def step(self) -> float:
        r"""Relaxation parameter :math:`\omega`."""
        return self._step

    def _config(self) -> Mapping[str, Any]:
        return {**super()._config(), "step": self.step}

    def _solve(self, x: LinearSpaceElement, y: LinearSpaceElement, callback: Any) -> None:
        odl.solvers.landweber(self.op, x, y, self.max_iter, omega=self.step, callback=callback)


class CGLSReconstructor(_IterativeReconstructor):
    r"""Conjugate gradients on the normal equations, stopped by the discrepancy principle.

    Parameters
    ----------
    op : odl.Operator
        Linear forward operator :math:`A` (real or complex).
    noise_level : float or None
        Expected noise norm :math:`\delta` in the norm of ``op.range`` (see
        :func:`noise_norm`); ``None`` disables the stopping rule.
    tau : float, optional
        Safety factor :math:`\tau > 1` of the discrepancy principle.
    max_iter : int, optional
        Largest number of iterations.
    magnitude : bool, optional
        Return :math:`|x|` (for complex image spaces).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    ``odl.solvers.conjugate_gradient_normal`` (CGLS) minimises
    :math:`\|A x - y\|` over the Krylov spaces

    .. math::
        x_k \in \mathcal{K}_k = \operatorname{span}\{A^* y, (A^*A) A^* y,
        \dots, (A^*A)^{k-1} A^* y\},

    so the residual decreases monotonically and much faster than for
    Landweber; the semi-convergence is correspondingly sharper, which makes
    the stopping rule essential. Stops at the first :math:`k` with
    :math:`\|A x_k - y\| \le \tau\delta`; ``info`` as for
    :class:`LandweberReconstructor`.

    References
    ----------
    .. [1] Hestenes, M R and Stiefel, E. *Methods of conjugate gradients for
       solving linear systems*. J. Res. Nat. Bur. Standards, 49 (1952),
       pp 409-436.
    .. [2] Hanke, M. *Conjugate Gradient Type Methods for Ill-Posed
       Problems*. Longman, 1995.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> reco = CGLSReconstructor(odl.ScalingOperator(space, 2.0), noise_level=0.1)
    >>> x, info = reco.reconstruct_with_info(space.one())
    >>> info["num_iter"], round(float(x.asarray()[0, 0]), 6)
    (1, 0.5)
    """

    def __init__(
        self,
        op: odl.Operator,
        noise_level: float | None,
        *,
        tau: float = 1.02,
        max_iter: int = 100,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(op, noise_level, tau=tau, max_iter=max_iter, magnitude=magnitude, name=name)

    def _solve(self, x: LinearSpaceElement, y: LinearSpaceElement, callback: Any) -> None:
        odl.solvers.conjugate_gradient_normal(self.op, x, y, self.max_iter, callback=callback)
