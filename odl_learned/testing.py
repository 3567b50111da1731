"""Checks of the mathematics that every operator test uses.

The dot test follows ODL's norm-relative convention and, like PyLops'
``dottest``, handles complex spaces and operators that are only real-linear by
comparing real parts of the inner products.
"""

from __future__ import annotations

import numpy as np
import odl
import torch

__all__ = ("random_element", "dot_test", "AdjointTestError")


class AdjointTestError(AssertionError):
    """Raised when ``<A x, y> != <x, A^* y>`` beyond the tolerance.

    A subclass of ``AssertionError``, so a failed :func:`dot_test` reads as a
    failed test.

    Examples
    --------
    An operator whose declared adjoint is wrong:

    >>> class WrongAdjoint(odl.Operator):
    ...     def __init__(self, space):
    ...         super().__init__(space, space, linear=True)
    ...     def _call(self, x):
    ...         return 2 * x
    ...     @property
    ...     def adjoint(self):
    ...         return odl.IdentityOperator(self.domain)
    >>> try:
    ...     dot_test(WrongAdjoint(odl.rn(4)))
    ... except AdjointTestError as err:
    ...     print(isinstance(err, AssertionError), "adjoint test failed" in str(err))
    True True
    """


def random_element(space: odl.LinearSpace, seed: int = 0) -> odl.LinearSpace.Element:
    """Return a seeded standard normal element of ``space``.

    Works for real and complex spaces with NumPy or PyTorch backends and for
    product spaces.

    Examples
    --------
    >>> space = odl.uniform_discr([0, 0], [1, 1], (3, 3))
    >>> x = random_element(space, seed=1)
    >>> x.shape
    (3, 3)
    >>> bool(random_element(space, seed=1).asarray()[0, 0] == x.asarray()[0, 0])
    True
    """
    rng = np.random.default_rng(seed)
    if isinstance(space, odl.ProductSpace):
        return space.element([random_element(s, seed=int(rng.integers(2**31))) for s in space])
    arr = rng.standard_normal(space.shape)
    if np.issubdtype(np.dtype(str(space.dtype).replace("torch.", "")), np.complexfloating):
        arr = arr + 1j * rng.standard_normal(space.shape)
    return space.element(_to_backend(arr, space))


def _to_backend(arr: np.ndarray, space: odl.LinearSpace):
    if getattr(space, "impl", "numpy") == "pytorch":
        return torch.as_tensor(arr).to(device=space.device)
    return arr


def _real_inner(x, y) -> float:
    value = x.inner(y)
    value = value.item() if hasattr(value, "item") else value
    return float(np.real(value))


def dot_test(op: odl.Operator, *, rtol: float = 1e-4, seed: int = 0, opnorm_iter: int = 50) -> float:
    """Check ``<A x, y> = <x, A^* y>`` for random ``x``, ``y``; return the error.

    The error is ODL's norm-relative one,

    .. math::
        \\frac{|\\langle A x, y\\rangle - \\langle x, A^* y\\rangle|}
              {\\|A\\|\\,\\|x\\|\\,\\|y\\|},

    with inner products taken in the (weighted) inner products of
    ``op.domain`` and ``op.range``. For complex spaces the real parts are
    compared, which is the correct test for operators that are real-linear
    only. ``||A||`` is estimated by the power method.

    Parameters
    ----------
    op : odl.Operator
        A linear operator with an ``adjoint``.
    rtol : float, optional
        Tolerance on the relative error.
    seed : int, optional
        Seed of the random test elements.
    opnorm_iter : int, optional
        Power-method iterations for ``||A||`` (fewer for expensive
        operators: the estimate only scales the error). ODL needs an even
        number for operators that are not self-adjoint.

    Returns
    -------
    error : float
        The relative error.

    Raises
    ------
    AdjointTestError
        If the relative error exceeds ``rtol``.

    Examples
    --------
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> grad = odl.Gradient(space)
    >>> dot_test(grad) < 1e-10
    True
    """
    if not op.is_linear:
        raise TypeError(f"dot_test needs a linear operator, got {op!r}")
    x = random_element(op.domain, seed=seed)
    y = random_element(op.range, seed=seed + 1)
    lhs = _real_inner(op(x), y)
    rhs = _real_inner(x, op.adjoint(y))
    op_norm = odl.power_method_opnorm(op, maxiter=opnorm_iter, xstart=random_element(op.domain, seed + 2))
    scale = float(op_norm) * float(x.norm()) * float(y.norm())
    error = abs(lhs - rhs) / scale if scale > 0 else abs(lhs - rhs)
    if not error <= rtol:
        raise AdjointTestError(
            f"adjoint test failed for {op!r}: <Ax, y> = {lhs:.8g}, <x, A*y> = {rhs:.8g}, "
            f"relative error {error:.3g} > rtol {rtol:.3g}"
        )
    return error
