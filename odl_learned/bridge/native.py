"""Operators written in torch, usable as ODL operators and batched torch functions.

A :class:`TorchNativeOperator` is an ``odl.Operator`` whose whole work is
:meth:`~TorchNativeOperator.torch_call`, a torch function on batched tensors
``(..., *domain.shape) -> (..., *range.shape)``. The ODL call is that function
on a batch of one, so the operator works in ODL expressions and solvers, while
:class:`~odl_learned.bridge.OperatorModule` calls ``torch_call`` directly on a
whole batch: no copies, no loop over the batch, and torch autograd gives the
gradient. The result stays on the input's device and dtype.

Subclasses implement ``torch_call`` and, if linear, ``adjoint`` (an ODL
adjoint, i.e. with respect to the spaces' weighted inner products).
"""

from __future__ import annotations

import odl
import torch

from odl_learned.bridge.convert import element_to_tensor, tensor_to_element

__all__ = ("TorchNativeOperator",)


class TorchNativeOperator(odl.Operator):
    """Base class of ODL operators implemented by a batched torch function.

    Examples
    --------
    A pointwise square as a (nonlinear) torch-native operator:

    >>> class Square(TorchNativeOperator):
    ...     def torch_call(self, x):
    ...         return x ** 2
    >>> space = odl.uniform_discr(0, 1, 3, impl="pytorch")
    >>> op = Square(space, space)
    >>> op(space.element([1.0, 2.0, 3.0])).data
    tensor([1., 4., 9.], dtype=torch.float64)
    >>> op.torch_call(torch.ones(2, 1, 3)).shape  # a batch
    torch.Size([2, 1, 3])
    """

    def torch_call(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operator to a batch ``x`` of shape ``(..., *domain.shape)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement torch_call")

    def _call(self, x):
        return tensor_to_element(self.torch_call(element_to_tensor(x)), self.range)
