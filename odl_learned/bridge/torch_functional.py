"""A scalar ``torch.nn.Module`` as an ODL functional with gradient and proximal."""

from __future__ import annotations

from collections.abc import Callable

import odl
import torch

from odl_learned._checks import check_positive
from odl_learned.bridge.convert import element_to_tensor, tensor_to_element
from odl_learned.bridge.weighting import space_weight

__all__ = ("TorchFunctional",)


class TorchFunctional(odl.functionals.Functional):
    """Wrap a scalar-valued ``torch.nn.Module`` as an ODL ``Functional``.

    The module maps a batch ``(B, 1, *space.shape)`` to values ``(B,)`` (or
    ``(B, 1)``). ``gradient`` is computed by autograd and returned as the
    Riesz representer in the space's weighted inner product; ``proximal``
    solves the proximal problem with an inner L-BFGS solver unless a learned
    proximal is given.

    Parameters
    ----------
    module : torch.nn.Module
        The scalar network ``R``.
    space : odl.LinearSpace
        Domain of the functional.
    proximal : callable, optional
        ``sigma -> odl.Operator``, a learned proximal used instead of the
        inner solver.
    prox_iter : int, optional
        Maximum number of L-BFGS iterations of the inner proximal solver.
    prox_tol : float, optional
        Tolerance on the gradient norm of the inner proximal problem.

    Notes
    -----
    With weights ``W`` of the space's inner product and ``g`` the Euclidean
    gradient from autograd, the ODL gradient is :math:`\\nabla R(x) = W^{-1} g`,
    so that :math:`R'(x) h = \\langle \\nabla R(x), h \\rangle_X`. The proximal
    operator

    .. math::
        \\mathrm{prox}_{\\sigma R}(x) = \\arg\\min_p \\; R(p)
            + \\frac{1}{2\\sigma} \\|p - x\\|_X^2

    is computed by L-BFGS (``torch.optim.LBFGS``, strong Wolfe line search)
    started at ``x``; for a convex, smooth ``R`` its optimality condition
    :math:`x - p = \\sigma \\nabla R(p)` holds to the solver's tolerance.

    Examples
    --------
    >>> class HalfSquaredNorm(torch.nn.Module):
    ...     def forward(self, x):
    ...         return 0.5 * x.pow(2).flatten(1).sum(1)
    >>> space = odl.rn(3)
    >>> R = TorchFunctional(HalfSquaredNorm(), space)
    >>> x = space.element([1.0, 2.0, 2.0])
    >>> R(x)
    4.5
    >>> R.gradient(x).asarray().tolist()
    [1.0, 2.0, 2.0]
    >>> [round(v, 6) for v in R.proximal(1.0)(x).asarray().tolist()]  # x / (1 + sigma)
    [0.5, 1.0, 1.0]
    """

    def __init__(
        self,
        module: torch.nn.Module,
        space: odl.LinearSpace,
        *,
        proximal: Callable[[float], odl.Operator] | None = None,
        prox_iter: int = 100,
        prox_tol: float = 1e-9,
    ):
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        super().__init__(space, linear=False)
        self.module = module
        self._learned_proximal = proximal
        self.prox_iter = check_positive("prox_iter", prox_iter, integer=True)
        self.prox_tol = check_positive("prox_tol", prox_tol)

    def value_batch(self, t: torch.Tensor) -> torch.Tensor:
        """Values ``R(x_b)`` of a batch ``(B, *space.shape)`` (differentiable).

        Parameters
        ----------
        t : torch.Tensor
            Batch of shape ``(B, *space.shape)``.

        Returns
        -------
        torch.Tensor
            The values, shape ``(B,)``; autograd flows back to ``t``.

        Examples
        --------
        >>> class HalfSquaredNorm(torch.nn.Module):
        ...     def forward(self, x):
        ...         return 0.5 * x.pow(2).flatten(1).sum(1)
        >>> R = TorchFunctional(HalfSquaredNorm(), odl.rn(3))
        >>> t = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 1.0]])
        >>> R.value_batch(t).tolist()
        [4.5, 0.5]
        """
        params = list(self.module.parameters())
        if params and not torch.is_complex(t):
            t = t.to(dtype=params[0].dtype, device=params[0].device)
        out = self.module(t.reshape(-1, 1, *self.domain.shape))
        return out.reshape(-1)

    def _call(self, x):
        with torch.no_grad():
            return float(self.value_batch(element_to_tensor(x)[None])[0])

    def euclidean_gradient(self, t: torch.Tensor) -> torch.Tensor:
        """Euclidean gradient of ``R`` at a batch ``(B, *space.shape)``.

        Unlike :attr:`gradient`, no inner-product weights are applied: this is
        ``dR/dx`` as autograd computes it.

        Parameters
        ----------
        t : torch.Tensor
            Batch of shape ``(B, *space.shape)``; it is detached first.

        Returns
        -------
        torch.Tensor
            The gradients, shape ``(B, *space.shape)``.

        Examples
        --------
        >>> class HalfSquaredNorm(torch.nn.Module):
        ...     def forward(self, x):
        ...         return 0.5 * x.pow(2).flatten(1).sum(1)
        >>> space = odl.uniform_discr(0, 1, 4)  # cell volume 0.25
        >>> R = TorchFunctional(HalfSquaredNorm(), space)
        >>> t = torch.tensor([[1.0, -2.0, 0.0, 3.0]], dtype=torch.float64)
        >>> R.euclidean_gradient(t).tolist()  # the identity for 0.5 |x|^2
        [[1.0, -2.0, 0.0, 3.0]]
        >>> R.gradient(space.element([1.0, -2.0, 0.0, 3.0])).asarray().tolist()  # W^{-1} g
        [4.0, -8.0, 0.0, 12.0]
        """
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.value_batch(t).sum(), t)
        return grad

    @property
    def gradient(self) -> odl.Operator:
        """The gradient operator ``x -> W^{-1} dR/dx`` (autograd)."""
        return _TorchFunctionalGradient(self)

    def proximal(self, sigma: float) -> odl.Operator:
        """Return ``prox_{sigma R}``: the learned proximal if given, else an inner solver.

        Parameters
        ----------
        sigma : positive float
            Step size of the proximal operator.

        Returns
        -------
        odl.Operator
            ``prox_{sigma R}`` on the domain: ``proximal(sigma)`` of the
            constructor if one was given, else an L-BFGS solver of the
            proximal problem.

        Examples
        --------
        >>> class HalfSquaredNorm(torch.nn.Module):
        ...     def forward(self, x):
        ...         return 0.5 * x.pow(2).flatten(1).sum(1)
        >>> space = odl.rn(2)
        >>> R = TorchFunctional(HalfSquaredNorm(), space)
        >>> x = space.element([3.0, -6.0])
        >>> [round(v, 6) for v in R.proximal(2.0)(x).asarray().tolist()]  # x / (1 + sigma)
        [1.0, -2.0]

        A learned proximal replaces the inner solver:

        >>> learned = TorchFunctional(
        ...     HalfSquaredNorm(), space,
        ...     proximal=lambda sigma: odl.ScalingOperator(space, 1 / (1 + sigma)))
        >>> learned.proximal(2.0)(x).asarray().tolist()
        [1.0, -2.0]
        """
        check_positive("sigma", sigma)
        if self._learned_proximal is not None:
            return self._learned_proximal(sigma)
        return _TorchFunctionalProximal(self, float(sigma))


class _TorchFunctionalGradient(odl.Operator):
    def __init__(self, functional: TorchFunctional):
        super().__init__(functional.domain, functional.domain, linear=False)
        self.functional = functional

    def _call(self, x):
        t = element_to_tensor(x)
        grad = self.functional.euclidean_gradient(t[None])[0].to(t.dtype)
        weight = space_weight(self.domain)
        return tensor_to_element(grad / (weight if isinstance(weight, float) else weight.to(grad)), self.domain)


class _TorchFunctionalProximal(odl.Operator):
    def __init__(self, functional: TorchFunctional, sigma: float):
        super().__init__(functional.domain, functional.domain, linear=False)
        self.functional = functional
        self.sigma = sigma

    def _call(self, x):
        functional, sigma = self.functional, self.sigma
        weight = space_weight(self.domain)
        x0 = element_to_tensor(x).detach().clone()[None]
        weight = weight if isinstance(weight, float) else weight.to(x0)
        p = x0.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [p],
            max_iter=functional.prox_iter,
            tolerance_grad=functional.prox_tol,
            tolerance_change=0.0,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            objective = functional.value_batch(p).sum() + (weight * (p - x0).pow(2)).sum() / (2 * sigma)
            objective.backward()
            return objective

        optimizer.step(closure)
        return tensor_to_element(p.detach()[0], self.domain)
