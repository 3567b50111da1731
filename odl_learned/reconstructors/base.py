"""One interface for every reconstructor, classical or learned.

A reconstructor maps measured data :math:`y` to an image :math:`x`. The
:class:`Reconstructor` base class does everything that does not depend on the
method: input checks, batching over NumPy arrays and torch tensors, and an
optional magnitude image for complex-valued reconstructions. A subclass only
implements the reconstruction of one ODL element, ``_reconstruct(y)``.

Reconstructors are configured once, at construction. Calling one never changes
it: anything a call wants to report (for example the iteration at which an
iterative method stopped) comes back from :meth:`Reconstructor.reconstruct_with_info`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np
import odl
import torch
from odl.core.set.space import LinearSpaceElement
from odl.functionals import IndicatorNonnegativity, L2NormSquared, SeparableSum, ZeroFunctional

from odl_learned._checks import check_finite, check_in_space, check_positive
from odl_learned.bridge.convert import element_to_tensor, is_torch_space, tensor_to_element
from odl_learned.testing import random_element

__all__ = ("Reconstructor",)

Batch = np.ndarray | torch.Tensor


class Reconstructor(abc.ABC):
    r"""Base class of all reconstructors: ``x = reco(y)``.

    A reconstructor is called with

    - one element ``y`` of :attr:`data_space` (usually ``op.range``); it then
      returns one element of :attr:`reco_space`;
    - a batch, a NumPy array or torch tensor of shape ``(B, *data_shape)`` or
      ``(B, 1, *data_shape)``; it then returns an array or tensor of the same
      kind and layout, ``(B, *reco_shape)`` or ``(B, 1, *reco_shape)``, on the
      same device (torch).

    Subclasses implement ``_reconstruct(y)`` for one element ``y`` of
    :attr:`data_space`, returning an element of :attr:`image_space`; a
    subclass that has extra information to report (iteration counts,
    residuals) overrides ``_reconstruct_with_info`` instead.

    Parameters
    ----------
    op : odl.Operator or None
        The forward operator :math:`A`. ``None`` only for reconstructors that
        do not know it (then ``data_space`` and ``image_space`` are needed).
    name : str, optional
        A label for tables and plots. Default: the class name.
    magnitude : bool, optional
        If True, return the pointwise modulus :math:`|x|` in the real
        counterpart of the image space (the usual magnitude image in MRI).
    data_space, image_space : odl.LinearSpace, optional
        Space of the data and of the raw reconstruction. Default:
        ``op.range`` and ``op.domain``.

    Notes
    -----
    Input checks: an ODL element not in :attr:`data_space` raises
    ``TypeError``; an array of the wrong shape raises ``ValueError`` naming the
    expected shape; NaN or Inf in the data raise ``ValueError``.

    With ``magnitude=True`` the output is

    .. math::
        x_{\mathrm{out}} = |x| = \sqrt{(\Re x)^2 + (\Im x)^2}.

    Examples
    --------
    A reconstructor that returns the back-projection :math:`A^* y`:

    >>> import odl
    >>> class Backprojection(Reconstructor):
    ...     def _reconstruct(self, y):
    ...         return self.op.adjoint(y)
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> op = odl.ScalingOperator(space, 2.0)
    >>> reco = Backprojection(op)
    >>> float(reco(space.one()).asarray()[0, 0])
    2.0
    >>> reco(np.ones((3, 1, 4, 4))).shape
    (3, 1, 4, 4)
    >>> reco(np.ones((3, 5, 5)))
    Traceback (most recent call last):
    ...
    ValueError: y has shape (3, 5, 5); expected (B, 4, 4) or (B, 1, 4, 4)
    """

    def __init__(
        self,
        op: odl.Operator | None,
        *,
        name: str | None = None,
        magnitude: bool = False,
        data_space: odl.LinearSpace | None = None,
        image_space: odl.LinearSpace | None = None,
    ) -> None:
        if op is not None and not isinstance(op, odl.Operator):
            raise TypeError(f"op must be an odl.Operator, got {type(op).__name__}")
        if op is None and (data_space is None or image_space is None):
            raise TypeError("without op, both data_space and image_space must be given")
        if not isinstance(magnitude, bool):
            raise TypeError(f"magnitude must be a bool, got {magnitude!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        data_space = op.range if data_space is None else data_space
        image_space = op.domain if image_space is None else image_space
        for label, space in (("data_space", data_space), ("image_space", image_space)):
            if not isinstance(space, odl.LinearSpace):
                raise TypeError(f"{label} must be an odl.LinearSpace, got {type(space).__name__}")
        self._op = op
        self._name = type(self).__name__ if name is None else name
        self._magnitude = magnitude
        self._data_space = data_space
        self._image_space = image_space
        complex_image = getattr(image_space, "is_complex", False)
        self._reco_space = image_space.real_space if (magnitude and complex_image) else image_space

    # -- configuration (read-only) -------------------------------------------------

    @property
    def name(self) -> str:
        """Label of this reconstructor."""
        return self._name

    @property
    def op(self) -> odl.Operator | None:
        """The forward operator :math:`A` (``None`` if unknown)."""
        return self._op

    @property
    def data_space(self) -> odl.LinearSpace:
        """Space of the data ``y``."""
        return self._data_space

    @property
    def image_space(self) -> odl.LinearSpace:
        """Space of the raw reconstruction (``op.domain``)."""
        return self._image_space

    @property
    def reco_space(self) -> odl.LinearSpace:
        """Space of the returned images (real for ``magnitude=True``)."""
        return self._reco_space

    @property
    def magnitude(self) -> bool:
        """Whether the modulus of the reconstruction is returned."""
        return self._magnitude

    def _config(self) -> Mapping[str, Any]:
        """Options shown by ``repr``; subclasses extend it."""
        return {}

    def __repr__(self) -> str:
        items = {"name": self.name, **self._config()}
        if self.magnitude:
            items["magnitude"] = True
        args = ", ".join(f"{k}={v!r}" for k, v in items.items())
        return f"{type(self).__name__}({args})"

    # -- what subclasses implement ----------------------------------------------

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        """Reconstruct one checked element ``y`` of ``data_space``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _reconstruct or _reconstruct_with_info"
        )

    def _reconstruct_with_info(self, y: LinearSpaceElement) -> tuple[LinearSpaceElement, dict]:
        """Reconstruct one element; return it with a dict of information."""
        return self._reconstruct(y), {}

    # -- public calls -------------------------------------------------------------

    def __call__(self, y: LinearSpaceElement | Batch) -> LinearSpaceElement | Batch:
        """Reconstruct one ODL element or a batch (array/tensor); see the class doc."""
        return self.reconstruct_with_info(y)[0]

    def reconstruct_with_info(
        self, y: LinearSpaceElement | Batch
    ) -> tuple[LinearSpaceElement | Batch, dict | list[dict]]:
        """Reconstruct and return ``(x, info)``.

        ``info`` is a dict for one element and a list of dicts (one per item)
        for a batch. Its content depends on the method; it is empty for
        direct methods.

        Examples
        --------
        >>> import odl
        >>> from odl_learned.reconstructors import AdjointReconstructor
        >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
        >>> x, info = AdjointReconstructor(odl.IdentityOperator(space)).reconstruct_with_info(space.one())
        >>> info
        {}
        """
        if isinstance(y, LinearSpaceElement):
            check_in_space("y", y, self.data_space)
            check_finite("y", y)
            return self._single(y)
        if isinstance(y, (np.ndarray, torch.Tensor)):
            return self._batch(y)
        raise TypeError(
            f"y must be an element of {self.data_space!r}, a NumPy array or a torch tensor; "
            f"got {type(y).__name__}"
        )

    # -- internals ----------------------------------------------------------------

    def _single(self, y: LinearSpaceElement) -> tuple[LinearSpaceElement, dict]:
        x, info = self._reconstruct_with_info(y)
        if self.magnitude:
            x = self.reco_space.element(odl.abs(x).data)
        if x not in self.reco_space:  # a broken subclass, not bad input
            raise RuntimeError(
                f"{type(self).__name__}._reconstruct returned {x!r}, not an element of {self.reco_space!r}"
            )
        return x, info

    def _check_batch(self, y: Batch) -> bool:
        """Check a batch ``(B, *data_shape)`` or ``(B, 1, *data_shape)``; return whether it has the channel axis."""
        shape = tuple(y.shape)
        data_shape = tuple(self.data_space.shape)
        nd = len(data_shape)
        if len(shape) not in (nd + 1, nd + 2) or shape[len(shape) - nd:] != data_shape:
            expected = ", ".join(str(s) for s in data_shape)
            raise ValueError(
                f"y has shape {shape}; expected (B, {expected}) or (B, 1, {expected})"
            )
        channel = len(shape) == nd + 2
        if channel and shape[1] != 1:
            raise ValueError(f"y has {shape[1]} channels (shape {shape}); expected 1")
        check_finite("y", y)
        is_complex_input = torch.is_complex(y) if isinstance(y, torch.Tensor) else np.iscomplexobj(y)
        if is_complex_input and not getattr(self.data_space, "is_complex", False):
            raise TypeError(f"y is complex but the data space {self.data_space!r} is real")
        return channel

    def _batch(self, y: Batch) -> tuple[Batch, list[dict]]:
        channel = self._check_batch(y)
        shape = tuple(y.shape)
        data_shape = tuple(self.data_space.shape)
        items = y.reshape((shape[0], *data_shape))
        outputs, infos = [], []
        for item in items:
            x, info = self._single(self._to_element(item))
            outputs.append(element_to_tensor(x).detach().cpu())
            infos.append(info)
        reco_shape = tuple(self.reco_space.shape)
        if outputs:
            out = torch.stack(outputs)
        else:
            out = element_to_tensor(self.reco_space.zero())[None][:0].cpu()
        if channel:
            out = out.reshape((shape[0], 1, *reco_shape))
        if isinstance(y, torch.Tensor):
            return out.to(device=y.device), infos
        return out.numpy(), infos

    def _to_element(self, item: Batch) -> LinearSpaceElement:
        if isinstance(item, torch.Tensor):
            return tensor_to_element(item, self.data_space)
        if is_torch_space(self.data_space):
            return tensor_to_element(torch.from_numpy(np.ascontiguousarray(item)), self.data_space)
        return self.data_space.element(item)


def _estimate_opnorm(op: odl.Operator, *, maxiter: int = 100, seed: int = 0) -> float:
    """Return the power-method estimate of ``||op||`` as a Python float.

    The start is a seeded random element, so that the estimate (and therefore
    every step size derived from it) is reproducible. The value is returned
    as a Python ``float``: ODL 1.0 elements refuse NumPy scalars as
    ``lincomb`` coefficients, and NumPy scalars times ODL operators build
    object arrays, so no NumPy scalar may reach a solver.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> abs(_estimate_opnorm(odl.ScalingOperator(space, 3.0)) - 3.0) < 1e-6
    True
    """
    check_positive("maxiter", maxiter, integer=True)
    value = odl.power_method_opnorm(op, xstart=random_element(op.domain, seed=seed), maxiter=maxiter)
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"could not estimate the norm of {op!r}: power method gave {value}")
    return value


def _pdhg_step_sizes(op_norm: float, step_ratio: float) -> tuple[float, float]:
    r"""Return PDHG step sizes :math:`(\tau, \sigma)` with ratio ``step_ratio`` = :math:`\tau/\sigma`.

    Both satisfy :math:`\tau\sigma\|K\|^2 < 1` as ODL's ``pdhg_stepsize``
    requires; the ratio decides how fast primal and dual variables move.
    With a normalised forward operator, images of unit scale converge much
    faster with large primal steps (ratio about 10) than with equal steps.

    Examples
    --------
    >>> tau, sigma = _pdhg_step_sizes(2.0, 4.0)
    >>> round(tau / sigma, 6), tau * sigma * 2.0**2 < 1
    (4.0, True)
    """
    check_positive("step_ratio", step_ratio)
    tau, sigma = odl.solvers.pdhg_stepsize(op_norm)
    root = float(np.sqrt(step_ratio))
    return float(tau) * root, float(sigma) / root


def _check_linear_op(op: Any, *, discretized: bool = False) -> None:
    """Raise ``TypeError`` unless ``op`` is a linear ODL operator.

    With ``discretized=True`` its domain must also be a
    :class:`odl.DiscretizedSpace` (needed for gradients and wavelets).

    Examples
    --------
    >>> _check_linear_op(odl.IdentityOperator(odl.rn(3)), discretized=True)
    Traceback (most recent call last):
    ...
    TypeError: op.domain must be an odl.DiscretizedSpace (an image grid), got rn(3)
    """
    if not isinstance(op, odl.Operator) or not op.is_linear:
        raise TypeError(f"op must be a linear odl.Operator, got {op!r}")
    if discretized and not isinstance(op.domain, odl.DiscretizedSpace):
        raise TypeError(f"op.domain must be an odl.DiscretizedSpace (an image grid), got {op.domain!r}")


def _resolve_nonneg(nonneg: bool | None, space: odl.LinearSpace) -> bool:
    """Return the non-negativity flag; ``None`` means "if the space is real".

    Examples
    --------
    >>> _resolve_nonneg(None, odl.uniform_discr(0, 1, 4))
    True
    >>> _resolve_nonneg(None, odl.uniform_discr(0, 1, 4, dtype="complex64"))
    False
    >>> _resolve_nonneg(True, odl.uniform_discr(0, 1, 4, dtype="complex64"))
    Traceback (most recent call last):
    ...
    ValueError: nonneg=True needs a real image space; the image space is complex (use nonneg=False or None)
    """
    is_complex = bool(getattr(space, "is_complex", False))
    if nonneg is None:
        return not is_complex
    if not isinstance(nonneg, bool):
        raise TypeError(f"nonneg must be a bool or None, got {nonneg!r}")
    if nonneg and is_complex:
        raise ValueError(
            "nonneg=True needs a real image space; the image space is complex (use nonneg=False or None)"
        )
    return nonneg


class _VariationalReconstructor(Reconstructor):
    r"""Shared set-up of the variational methods :math:`\min_x \frac12\|Ax - y\|^2 + \lambda R(x)`.

    Checks, in this order, that ``op`` is a linear operator on an image grid,
    that ``lam`` is positive and ``num_iter`` a positive integer, and resolves
    ``nonneg`` against ``op.domain`` (:func:`_resolve_nonneg`); then the
    :class:`Reconstructor` checks run. A subclass checks its own options and
    builds its regulariser and solver after ``super().__init__``.
    """

    def __init__(
        self,
        op: odl.Operator,
        lam: float,
        *,
        num_iter: int,
        magnitude: bool,
        name: str | None,
        nonneg: bool | None = False,
    ) -> None:
        _check_linear_op(op, discretized=True)
        check_positive("lam", lam)
        check_positive("num_iter", num_iter, integer=True)
        nonneg = _resolve_nonneg(nonneg, op.domain)
        super().__init__(op, name=name, magnitude=magnitude)
        self._lam = float(lam)
        self._num_iter = int(num_iter)
        self._nonneg = nonneg

    @property
    def lam(self) -> float:
        r"""Regularisation parameter :math:`\lambda`."""
        return self._lam

    @property
    def num_iter(self) -> int:
        """Number of iterations."""
        return self._num_iter

    def _data_fit(self, x: LinearSpaceElement, y: LinearSpaceElement) -> float:
        r"""Check ``x`` and ``y``; return the data term :math:`\frac12\|Ax - y\|^2` of an objective."""
        check_in_space("x", x, self.image_space)
        check_in_space("y", y, self.data_space)
        check_finite("y", y)
        return 0.5 * (self.op(x) - y).norm() ** 2


class _PDHGReconstructor(_VariationalReconstructor):
    r"""Shared parts of the gradient-based regularisers solved by PDHG (TV, TGV).

    Builds the gradient :math:`\nabla` (forward differences, Neumann
    boundary), the balancing factor :math:`s = \|A\| / \|\nabla\|` and the
    constraint :math:`\iota_{\ge 0}` (or zero) on the image. The subclass
    passes its operator :math:`K` to :meth:`_set_pdhg_op`, which estimates
    :math:`\|K\|` and the step sizes, and sets the primal functional ``_f``.
    """

    def __init__(
        self,
        op: odl.Operator,
        lam: float,
        *,
        num_iter: int,
        nonneg: bool | None,
        magnitude: bool,
        name: str | None,
    ) -> None:
        super().__init__(op, lam, num_iter=num_iter, nonneg=nonneg, magnitude=magnitude, name=name)
        # Neumann boundary (the last forward difference is zero), so constant
        # images have zero total variation, as in Chambolle and Pock (2011).
        self._grad = odl.Gradient(op.domain, pad_mode="symmetric")
        self._grad_scaling = _estimate_opnorm(op) / _estimate_opnorm(self._grad)
        self._positivity = IndicatorNonnegativity(op.domain) if self.nonneg else ZeroFunctional(op.domain)

    def _setup_pdhg(self, pdhg_op: odl.Operator, f: odl.functionals.Functional, step_ratio: float) -> None:
        r"""Solve with :math:`K` = ``pdhg_op`` and :math:`f`; estimate :math:`\|K\|` and the step sizes."""
        self._pdhg_op = pdhg_op
        self._f = f
        self._op_norm = _estimate_opnorm(pdhg_op)
        self._tau, self._sigma = _pdhg_step_sizes(self._op_norm, step_ratio)

    @property
    def nonneg(self) -> bool:
        """Whether :math:`x \\ge 0` is enforced."""
        return self._nonneg

    @property
    def op_norm(self) -> float:
        r"""Estimated :math:`\|K\|`, cached at construction."""
        return self._op_norm

    def _pdhg(self, z: LinearSpaceElement, y: LinearSpaceElement, *penalties: Any) -> None:
        r"""Run PDHG in place on ``z`` with :math:`g(u, \dots) = \frac12\|u - y\|^2 + \sum` ``penalties``."""
        g = SeparableSum(0.5 * L2NormSquared(self.data_space).translated(y), *penalties)
        odl.solvers.pdhg(z, self._f, g, self._pdhg_op, self.num_iter, tau=self._tau, sigma=self._sigma)
