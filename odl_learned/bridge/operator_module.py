"""An ODL operator as a ``torch.nn.Module`` on batched tensors."""

from __future__ import annotations

import odl
import torch

from odl_learned._checks import check_shape_suffix
from odl_learned.bridge.compile import batched_torch_function
from odl_learned.bridge.convert import element_to_tensor, tensor_to_element, torch_dtype
from odl_learned.bridge.weighting import euclidean_from_adjoint

__all__ = ("OperatorModule",)


def _range_shape(op: odl.Operator) -> tuple[int, ...]:
    return () if op.is_functional else tuple(op.range.shape)


def _output_tensor(value) -> torch.Tensor:
    """An operator's output as a tensor: a functional's is a Python scalar."""
    if isinstance(value, (int, float, complex)):
        return torch.tensor(value, dtype=torch.float64)
    return element_to_tensor(value)


class _PerItemFunction(torch.autograd.Function):
    """Calls ODL once per item; backward by the (derivative's) ODL adjoint.

    The ODL adjoint is taken in the spaces' weighted inner products; it is
    turned into the Euclidean transpose that torch expects by
    :func:`~odl_learned.bridge.weighting.euclidean_from_adjoint`.
    """

    @staticmethod
    def forward(ctx, x, op):
        ctx.op = op
        ctx.save_for_backward(x)
        items = x.detach().reshape(-1, *op.domain.shape)
        outputs = [_output_tensor(op(tensor_to_element(item, op.domain))) for item in items]
        out = torch.stack(outputs).to(device=x.device)
        if not op.is_functional:
            out = out.to(torch_dtype(op.range))
        batch_shape = x.shape[: x.ndim - len(op.domain.shape)]
        return out.reshape(*batch_shape, *_range_shape(op))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        op = ctx.op
        items = x.detach().reshape(-1, *op.domain.shape)
        grads = grad.reshape(-1, *_range_shape(op))
        results = []
        for item, g in zip(items, grads):
            point = tensor_to_element(item, op.domain)
            if op.is_functional:
                # The derivative's adjoint maps a scalar s to s * gradient; the
                # range R carries the weight 1 of rn(1).
                transpose = euclidean_from_adjoint(
                    lambda s: element_to_tensor(op.gradient(point)) * s, op.domain, odl.rn(1)
                )
                results.append(transpose(g.detach().to("cpu")))
                continue
            deriv = op if op.is_linear else op.derivative(point)
            transpose = euclidean_from_adjoint(
                lambda t: element_to_tensor(deriv.adjoint(tensor_to_element(t, op.range))), op.domain, op.range
            )
            results.append(transpose(g.detach().to("cpu")))
        out = torch.stack([torch.as_tensor(r) for r in results]).to(device=x.device, dtype=x.dtype)
        return out.reshape(x.shape), None


class OperatorModule(torch.nn.Module):
    """Wrap an ODL operator as a ``torch.nn.Module`` acting on batches.

    The module maps tensors of shape ``(B, C, *op.domain.shape)`` (any number
    of leading batch axes) to ``(B, C, *op.range.shape)``, and ``backward``
    gives gradients for the Euclidean sum, as torch expects.

    How it runs, fastest first:

    1. Expressions made of torch-native operators, ``RayTransform``\\s with the
       sparse-matrix backend (and their adjoints), wrapped torch modules,
       scalings, sums and compositions run as one torch function on the whole
       batch: no copies, no loop, autograd native, output on the input's
       device and in its dtype.
    2. Other operators between ``impl='pytorch'`` spaces are vectorised over
       the batch with ``torch.func.vmap``.
    3. Anything else (e.g. ``astra_cpu``) is called once per item; the
       backward pass uses ``op.adjoint`` (linear) or
       ``op.derivative(x).adjoint`` (nonlinear), converted from ODL's weighted
       inner products to the Euclidean sum in one place
       (:mod:`odl_learned.bridge.weighting`).

    Parameters
    ----------
    op : odl.Operator
        The operator. Functionals give outputs of shape ``(B, C)``.

    Examples
    --------
    >>> from odl_learned.operators import ct
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (32, 32), dtype="float32")
    >>> ray_trafo = ct.ray_transform(space, num_angles=10)
    >>> layer = OperatorModule(ray_trafo)
    >>> x = torch.rand(8, 1, 32, 32, requires_grad=True)
    >>> y = layer(x)
    >>> y.shape
    torch.Size([8, 1, 10, 47])
    >>> y.pow(2).sum().backward()
    >>> x.grad.shape
    torch.Size([8, 1, 32, 32])
    """

    def __init__(self, op: odl.Operator):
        super().__init__()
        if not isinstance(op, odl.Operator):
            raise TypeError(f"op must be an odl.Operator, got {type(op).__name__}")
        self.op = op
        self._fn = batched_torch_function(op)

    @property
    def batched(self) -> bool:
        """True if the operator runs as one torch function on the whole batch."""
        return self._fn is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operator to a batch ``x`` of shape ``(..., *op.domain.shape)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor of shape (B, C, *{tuple(self.op.domain.shape)}), got {type(x).__name__}")
        check_shape_suffix("input", tuple(x.shape), tuple(self.op.domain.shape))
        if x.ndim == len(self.op.domain.shape):
            raise ValueError(
                f"input has shape {tuple(x.shape)}; expected batch axes in front: (B, C, *{tuple(self.op.domain.shape)})"
            )
        if self._fn is not None:
            return self._fn(x)
        return _PerItemFunction.apply(x, self.op)

    def extra_repr(self) -> str:
        """The operator and whether it runs batched, shown in ``repr(module)``.

        Returns
        -------
        str
            ``"op=<repr of op>, batched=<bool>"``.

        Examples
        --------
        >>> layer = OperatorModule(odl.ScalingOperator(odl.rn(3), 2.0))
        >>> layer.extra_repr().endswith("batched=True")
        True
        >>> "OperatorModule(op=" in repr(layer)
        True
        """
        return f"op={self.op!r}, batched={self.batched}"
