"""Turn an ODL operator expression into one batched torch function.

:func:`batched_torch_function` walks an operator expression (compositions,
sums, scalar multiples) and returns a torch function on batches
``(..., *op.domain.shape) -> (..., *op.range.shape)`` whenever every leaf has a
batched torch form:

- :class:`~odl_learned.bridge.native.TorchNativeOperator` (``torch_call``),
- :class:`~odl_learned.bridge.torch_operator.TorchOperator` (its module),
- a ``RayTransform`` with the sparse-matrix backend, and its adjoint,
- ``IdentityOperator``, ``ScalingOperator``,
- any other operator between ``impl='pytorch'`` spaces, vectorised over the
  batch with ``torch.func.vmap`` (autograd runs through ODL's torch code).

Otherwise it returns ``None`` and the caller falls back to calling ODL once per
item. Autograd through the returned function gives Euclidean
vector-Jacobian products, which is what torch's ``backward`` needs.
"""

from __future__ import annotations

from collections.abc import Callable

import odl
import torch
from odl.applications.tomo import RayTransform

from odl_learned.bridge.convert import element_to_tensor, is_torch_space
from odl_learned.bridge.native import TorchNativeOperator

__all__ = ("batched_torch_function",)

TorchFn = Callable[[torch.Tensor], torch.Tensor]


def _sparse_impl(ray_trafo: RayTransform):
    from odl_learned.operators.sparse_projector import SparseMatrixImpl

    impl = ray_trafo.get_impl(ray_trafo.use_cache)
    return impl if isinstance(impl, SparseMatrixImpl) else None


def _ray_function(op: odl.Operator) -> TorchFn | None:
    if isinstance(op, RayTransform):
        impl = _sparse_impl(op)
        return impl.project if impl is not None else None
    # ODL's back-projection is a class local to RayTransform.adjoint: it is
    # recognised by being the adjoint of a RayTransform.
    if op.is_linear and type(op).__name__ == "RayBackProjection":
        ray_trafo = op.adjoint
        if isinstance(ray_trafo, RayTransform) and ray_trafo.adjoint is op:
            impl = _sparse_impl(ray_trafo)
            return impl.backproject if impl is not None else None
    return None


def _vmapped(op: odl.Operator) -> TorchFn | None:
    if not (is_torch_space(op.domain) and is_torch_space(op.range)):
        return None
    ndim = len(op.domain.shape)

    def single(t: torch.Tensor) -> torch.Tensor:
        return element_to_tensor(op(op.domain.element(t)))

    vectorised = torch.func.vmap(single)

    def apply(t: torch.Tensor) -> torch.Tensor:
        batch_shape = t.shape[: t.ndim - ndim]
        flat = t.reshape(-1, *op.domain.shape)
        return vectorised(flat).reshape(*batch_shape, *op.range.shape)

    return apply


def batched_torch_function(op: odl.Operator) -> TorchFn | None:
    """Return a batched, differentiable torch function for ``op``, or ``None``.

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 4)
    >>> fn = batched_torch_function(3 * odl.IdentityOperator(space))
    >>> fn(torch.ones(2, 4))
    tensor([[3., 3., 3., 3.],
            [3., 3., 3., 3.]])
    >>> batched_torch_function(odl.Gradient(space)) is None  # NumPy space, no torch form
    True
    """
    from odl_learned.bridge.torch_operator import TorchOperator

    if isinstance(op, TorchNativeOperator):
        return op.torch_call
    if isinstance(op, TorchOperator):
        return op.batched_call
    if isinstance(op, odl.IdentityOperator):
        return lambda t: t
    if isinstance(op, odl.ScalingOperator):
        scalar = op.scalar
        return lambda t: t * scalar
    ray = _ray_function(op)
    if ray is not None:
        return ray
    if isinstance(op, odl.OperatorComp):
        left, right = batched_torch_function(op.left), batched_torch_function(op.right)
        if left is not None and right is not None:
            return lambda t: left(right(t))
    elif isinstance(op, odl.OperatorSum):
        left, right = batched_torch_function(op.left), batched_torch_function(op.right)
        if left is not None and right is not None:
            return lambda t: left(t) + right(t)
    elif isinstance(op, odl.OperatorLeftScalarMult):
        inner, scalar = batched_torch_function(op.operator), op.scalar
        if inner is not None:
            return lambda t: scalar * inner(t)
    elif isinstance(op, odl.OperatorRightScalarMult):
        inner, scalar = batched_torch_function(op.operator), op.scalar
        if inner is not None:
            return lambda t: inner(scalar * t)
    return _vmapped(op)
