"""The one place where ODL's weighted inner products meet torch's Euclidean sums.

ODL spaces such as ``uniform_discr`` carry an inner product
``<x, y>_X = sum_i w_i x_i conj(y_i)`` (for a uniform grid ``w_i`` is the cell
volume), and ODL adjoints are adjoints for these inner products. Torch's
autograd computes vector-Jacobian products for the plain Euclidean sum, i.e.
Euclidean transposes. For a linear ``A: X -> Y`` with weights ``W_X``, ``W_Y``:

.. math::
    A^T = W_X \\, A^* \\, W_Y^{-1}, \\qquad A^* = W_X^{-1} A^T W_Y .

:func:`euclidean_from_adjoint` turns an ODL adjoint into the Euclidean
transpose (used by ``OperatorModule.backward``), and
:func:`adjoint_from_euclidean` turns a vector-Jacobian product into the
ODL adjoint (used by ``TorchOperator.derivative(x).adjoint``). Both work on
batched tensors ``(..., *space.shape)``.
"""

from __future__ import annotations

from collections.abc import Callable

import odl
import torch

__all__ = ("space_weight", "euclidean_from_adjoint", "adjoint_from_euclidean")


def space_weight(space: odl.LinearSpace) -> float | torch.Tensor:
    """Return the weights ``w`` of ``space``'s inner product (scalar or array).

    Raises ``NotImplementedError`` for weightings that are not given by a
    constant or an array (e.g. a general matrix weighting).

    Examples
    --------
    >>> space_weight(odl.uniform_discr([0, 0], [1, 1], (4, 2)))
    0.125
    >>> space_weight(odl.rn(3))
    1.0
    """
    weighting = space.weighting
    if hasattr(weighting, "const"):
        return float(weighting.const)
    if hasattr(weighting, "array"):
        arr = weighting.array
        return arr if isinstance(arr, torch.Tensor) else torch.as_tensor(arr)
    raise NotImplementedError(
        f"weighting {weighting!r} of {space!r} is not supported; expected a constant or array weighting"
    )


def _scale(t: torch.Tensor, w: float | torch.Tensor, inverse: bool) -> torch.Tensor:
    if isinstance(w, float):
        if w == 1.0:
            return t
        return t / w if inverse else t * w
    w = w.to(device=t.device, dtype=t.real.dtype)
    return t / w if inverse else t * w


def euclidean_from_adjoint(
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    domain: odl.LinearSpace,
    range: odl.LinearSpace,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``g -> W_X A^*(W_Y^{-1} g)``, the Euclidean transpose of ``A``.

    ``adjoint`` applies the ODL adjoint ``A^*`` to tensors.

    Examples
    --------
    >>> X = odl.uniform_discr(0, 1, 4)          # weight 0.25
    >>> Y = odl.rn(4)                             # weight 1
    >>> transpose = euclidean_from_adjoint(lambda g: 4 * g, X, Y)  # A = I, A^* = 4 I
    >>> transpose(torch.ones(4))
    tensor([1., 1., 1., 1.])
    """
    w_x, w_y = space_weight(domain), space_weight(range)

    def transpose(g: torch.Tensor) -> torch.Tensor:
        return _scale(adjoint(_scale(g, w_y, inverse=True)), w_x, inverse=False)

    return transpose


def adjoint_from_euclidean(
    transpose: Callable[[torch.Tensor], torch.Tensor],
    domain: odl.LinearSpace,
    range: odl.LinearSpace,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``y -> W_X^{-1} A^T(W_Y y)``, the ODL adjoint of ``A``.

    ``transpose`` applies the Euclidean transpose ``A^T`` (a vector-Jacobian
    product) to tensors.

    Examples
    --------
    >>> X = odl.uniform_discr(0, 1, 4)          # weight 0.25
    >>> Y = odl.rn(4)
    >>> adjoint = adjoint_from_euclidean(lambda g: g, X, Y)  # A = I
    >>> adjoint(torch.ones(4))
    tensor([4., 4., 4., 4.])
    """
    w_x, w_y = space_weight(domain), space_weight(range)

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        return _scale(transpose(_scale(y, w_y, inverse=False)), w_x, inverse=True)

    return adjoint
