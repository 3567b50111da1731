"""A ``torch.nn.Module`` as an ODL operator, with derivative and adjoint."""

from __future__ import annotations

import odl
import torch

from odl_learned._checks import check_in_space
from odl_learned.bridge.convert import element_to_tensor, tensor_to_element
from odl_learned.bridge.weighting import adjoint_from_euclidean

__all__ = ("TorchOperator", "TorchOperatorDerivative")


def _module_like(module: torch.nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.dtype, tensor.device
    return None, None


class TorchOperator(odl.Operator):
    """Wrap a ``torch.nn.Module`` as an ODL ``Operator`` from ``domain`` to ``range``.

    The module maps batches ``(B, 1, *domain.shape) -> (B, 1, *range.shape)``
    (or ``(B, *domain.shape) -> (B, *range.shape)`` with
    ``channel_axis=False``). The ODL operator applies it to one element at a
    time; ``derivative(x)`` is a linear ODL operator (Jacobian-vector product)
    whose ``adjoint`` is the vector-Jacobian product, converted to the spaces'
    weighted inner products, so a network can sit inside ``odl.solvers`` and
    inside operator compositions.

    Parameters
    ----------
    module : torch.nn.Module
        The network. It is evaluated as it is (call ``module.eval()`` first for
        inference with batch norm or dropout).
    domain, range : odl.LinearSpace
        ODL spaces of the input and output (tensor spaces of the shapes the
        module expects).
    linear : bool, optional
        Declare the module linear; then ``adjoint`` exists on the operator
        itself.
    channel_axis : bool, optional
        Whether the module expects a channel axis after the batch axis.

    Examples
    --------
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    >>> op = TorchOperator(conv, space, space, linear=True)
    >>> x = space.one()
    >>> op(x) in space
    True
    >>> y = op.range.one()
    >>> lhs, rhs = op(x).inner(y), x.inner(op.adjoint(y))
    >>> bool(abs(lhs - rhs) < 1e-10 * abs(lhs))
    True
    """

    def __init__(
        self,
        module: torch.nn.Module,
        domain: odl.LinearSpace,
        range: odl.LinearSpace,
        *,
        linear: bool = False,
        channel_axis: bool = True,
    ):
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        super().__init__(domain, range, linear=linear)
        self.module = module
        self.channel_axis = channel_axis

    def batched_call(self, t: torch.Tensor) -> torch.Tensor:
        """Apply the module to a batch ``(..., *domain.shape)`` (differentiable).

        Parameters
        ----------
        t : torch.Tensor
            Batch of shape ``(..., *domain.shape)``, any number of leading
            axes. It is cast to the module's dtype and device.

        Returns
        -------
        torch.Tensor
            Output of shape ``(..., *range.shape)``.

        Examples
        --------
        >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
        >>> conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
        >>> op = TorchOperator(conv, space, space, linear=True)
        >>> t = torch.rand(2, 3, 8, 8, dtype=torch.float64)
        >>> op.batched_call(t).shape
        torch.Size([2, 3, 8, 8])
        >>> bool(torch.allclose(op.batched_call(t)[1, 2], conv(t[1, 2][None, None])[0, 0]))
        True
        """
        ndim = len(self.domain.shape)
        batch_shape = t.shape[: t.ndim - ndim]
        flat = t.reshape(-1, *((1,) if self.channel_axis else ()), *self.domain.shape)
        dtype, device = _module_like(self.module)
        if dtype is not None and not (torch.is_complex(flat) and not dtype.is_complex):
            flat = flat.to(dtype=dtype, device=device)
        out = self.module(flat)
        return out.reshape(*batch_shape, *self.range.shape)

    def _call(self, x):
        with torch.no_grad():
            out = self.batched_call(element_to_tensor(x)[None])[0]
        return tensor_to_element(out, self.range)

    def derivative(self, x) -> "TorchOperatorDerivative":
        """Return the derivative at ``x``: JVP forward, VJP adjoint.

        Parameters
        ----------
        x : ``domain`` element
            Point at which the derivative is taken.

        Returns
        -------
        TorchOperatorDerivative or TorchOperator
            The linear operator ``h -> N'(x) h``; the operator itself if it
            was declared linear.

        Examples
        --------
        >>> space = odl.rn(3)
        >>> class Square(torch.nn.Module):
        ...     def forward(self, x):
        ...         return x ** 2
        >>> op = TorchOperator(Square(), space, space)
        >>> x = space.element([1.0, 2.0, 3.0])
        >>> deriv = op.derivative(x)
        >>> deriv(space.one()).asarray().tolist()  # 2 x h
        [2.0, 4.0, 6.0]
        >>> deriv.adjoint(space.one()).asarray().tolist()
        [2.0, 4.0, 6.0]
        """
        if self.is_linear:
            return self
        check_in_space("x", x, self.domain)
        return TorchOperatorDerivative(self, x)

    @property
    def adjoint(self) -> "TorchOperatorDerivative":
        """The adjoint (for ``linear=True`` only): the VJP at zero."""
        if not self.is_linear:
            raise odl.OpNotImplementedError(f"{self!r} is not linear; use derivative(x).adjoint")
        return TorchOperatorDerivative(self, self.domain.zero()).adjoint

    def __repr__(self) -> str:
        return f"TorchOperator({type(self.module).__name__}, domain={self.domain!r}, range={self.range!r})"


class TorchOperatorDerivative(odl.Operator):
    """The derivative ``N'(x)`` of a :class:`TorchOperator` at a point.

    ``N'(x) h`` is a Jacobian-vector product and ``N'(x)^* y`` a
    vector-Jacobian product turned into the adjoint for the spaces' weighted
    inner products:

    .. math::
        N'(x)^* = W_X^{-1} \\, J_N(x)^T \\, W_Y .

    Parameters
    ----------
    operator : TorchOperator
        The operator ``N``.
    point : ``operator.domain`` element
        The point ``x``.
    transpose : bool, optional
        If true, the operator is the adjoint ``N'(x)^*``, from
        ``operator.range`` to ``operator.domain``.

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 3)
    >>> class Square(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x ** 2
    >>> op = TorchOperator(Square(), space, space)
    >>> deriv = TorchOperatorDerivative(op, space.element([1.0, 2.0, 3.0]))
    >>> h, y = space.element([1.0, -1.0, 2.0]), space.element([0.5, 1.0, -1.0])
    >>> deriv(h).asarray().tolist()
    [2.0, -4.0, 12.0]
    >>> bool(abs(deriv(h).inner(y) - h.inner(deriv.adjoint(y))) < 1e-12)
    True
    """

    def __init__(self, operator: TorchOperator, point, *, transpose: bool = False):
        domain, range = (operator.range, operator.domain) if transpose else (operator.domain, operator.range)
        super().__init__(domain, range, linear=True)
        self.operator = operator
        self.point = point
        self.transpose = transpose

    def _point_tensor(self) -> torch.Tensor:
        return element_to_tensor(self.point)[None]

    def _jvp(self, h: torch.Tensor) -> torch.Tensor:
        _, out = torch.autograd.functional.jvp(self.operator.batched_call, self._point_tensor(), h[None])
        return out[0]

    def _vjp(self, g: torch.Tensor) -> torch.Tensor:
        x = self._point_tensor()
        dtype, _ = _module_like(self.operator.module)
        if dtype is not None and not torch.is_complex(g):
            g = g.to(dtype)
        _, vjp = torch.autograd.functional.vjp(self.operator.batched_call, x, g[None])
        return vjp[0].to(x.dtype)

    def _call(self, h):
        op = self.operator
        if self.transpose:
            adjoint = adjoint_from_euclidean(self._vjp, op.domain, op.range)
            return tensor_to_element(adjoint(element_to_tensor(h)), op.domain)
        return tensor_to_element(self._jvp(element_to_tensor(h)), op.range)

    @property
    def adjoint(self) -> "TorchOperatorDerivative":
        """The adjoint: the vector-Jacobian product at the same point (or back)."""
        return TorchOperatorDerivative(self.operator, self.point, transpose=not self.transpose)
