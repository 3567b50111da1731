"""The variational network for MRI (Hammernik et al. 2018).

Each of the ``T`` stages is one gradient step on a learned variational energy
(a "field of experts" regulariser plus the data term):

.. math::
    x_{t+1} = x_t - \\Big[\\sum_{i=1}^{N_k} K_{t,i}^\\top \\phi_{t,i}(K_{t,i} x_t)
              + \\lambda_t A^*(A x_t - y)\\Big].

The complex image :math:`x` is seen by the filters as two real channels (real,
imaginary): :math:`K_{t,i} x = k^{re}_{t,i} * \\Re x + k^{im}_{t,i} * \\Im x`, a
real image, and :math:`K_{t,i}^\\top` is its exact adjoint (a transposed
convolution, zero padding), which returns two channels, i.e. a complex image.
The filters are constrained, by reparametrisation, to zero mean (per channel)
and unit Euclidean norm. The activations are radial-basis-function sums

.. math::
    \\phi(z) = \\sum_{j=1}^{N_w} w_j \\exp\\Big(-\\frac{(z - \\mu_j)^2}{2\\sigma^2}\\Big),

with centres :math:`\\mu_j` equally spaced on ``[-rbf_range, rbf_range]`` and
:math:`\\sigma` their spacing. Hence the regulariser part of a stage is the
gradient of :math:`R_t(x) = \\sum_i \\sum_{pixels} \\rho_{t,i}(K_{t,i} x)` with
:math:`\\rho' = \\phi` (see :meth:`RBFActivation.potential`).

Reference: K. Hammernik, T. Klatzer, E. Kobler, M. P. Recht, D. K. Sodickson,
T. Pock, F. Knoll, *Learning a variational network for reconstruction of
accelerated MRI data*, Magn. Reson. Med. 79 (2018): 10 stages, 24 filters of
size 11x11, 31 RBFs. Simplifications here: zero instead of symmetric padding (so
that :math:`K^\\top` is the exact adjoint), no intensity normalisation inside
the network, and unconstrained :math:`\\lambda_t`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from odl_learned._checks import check_positive

__all__ = ("RBFActivation", "VariationalNetwork")

TensorMap = Callable[[torch.Tensor], torch.Tensor]


def _rbf_terms(z, weight, centres, sigma: float, start: int, stop: int):
    """``(z - mu_j, gauss_j, w_cj)`` for centres ``start:stop``, along a new last axis of ``z``."""
    diff = z.unsqueeze(-1) - centres[start:stop]
    shape = (1, weight.shape[0]) + (1,) * (z.ndim - 2) + (-1,)
    return diff, torch.exp(diff * diff / (-2.0 * sigma**2)), weight[:, start:stop].reshape(shape)


def _rbf_values(z, weight, centres, sigma: float, chunk: int):
    """:math:`\\sum_j w_{cj} e^{-(z - \\mu_j)^2 / (2 \\sigma^2)}`, ``chunk`` centres at a time."""
    out = None
    for start in range(0, centres.numel(), chunk):
        _, gauss, w = _rbf_terms(z, weight, centres, sigma, start, start + chunk)
        term = (w * gauss).sum(-1)
        out = term if out is None else out + term
    return out


def _rbf_grads(z, grad, weight, centres, sigma: float, need_z: bool, need_w: bool, chunk: int):
    """Gradients of :func:`_rbf_values` with respect to ``z`` and ``weight`` for an output gradient ``grad``."""
    reduce_dims = [0] + list(range(2, z.ndim))
    grad_z = torch.zeros_like(z) if need_z else None
    grad_w = []
    grad = grad.unsqueeze(-1)
    for start in range(0, centres.numel(), chunk):
        diff, gauss, w = _rbf_terms(z, weight, centres, sigma, start, start + chunk)
        weighted = grad * gauss
        if need_z:
            grad_z = grad_z - ((w / sigma**2) * diff * weighted).sum(-1)
        if need_w:
            grad_w.append(weighted.sum(dim=reduce_dims))
    return grad_z, torch.cat(grad_w, dim=-1) if need_w else None


class _RBFSum(torch.autograd.Function):
    """:math:`\\sum_j w_{cj} e^{-(z - \\mu_j)^2 / (2 \\sigma^2)}`, a few Gaussians at a time.

    Written by hand because the broadcast form ``(w * exp(-(z[..., None] - mu)**2 ...)).sum(-1)``
    makes autograd keep a tensor with one entry per pixel, channel *and* centre
    (31 times the activation map: about 0.4 GB per stage for a batch of eight
    128x128 images with 24 filters), which makes training allocation-bound. Here
    forward and backward loop over chunks of centres and keep only ``z``; the backward
    uses differentiable operations, so double backward still works.

    On a CPU, large activation maps go through the same two functions compiled by
    ``torch.compile`` (:attr:`fused`): one pass over ``z`` with all Gaussians computed
    in registers, about 8x faster than the eager loop (0.13 s against 1.04 s, forward
    and backward of a (8, 24, 128, 128) map, 2 cores; a training step of batch 8 takes
    2.4 s instead of 9.2 s: ``benchmarks/bench_rbf_activation.py``), at a one-off
    compile of about 20 s per process. A double backward always takes the eager path.
    """

    #: Centres handled at once per device type by the eager path: a trade between
    #: memory (chunk x the activation map) and kernel launches. One at a time is fastest
    #: on a CPU (measured 1.4 s against 1.9 s for 8 at once, a (8, 24, 128, 128) map,
    #: forward and backward, 2 cores); a GPU is launch-bound at one at a time.
    chunk = {"cpu": 1}
    default_chunk = 8
    #: Use the compiled kernels: True, False, or None for "on a CPU when the map has at
    #: least :attr:`fused_min_numel` entries" (below that the compile does not pay off).
    fused: bool | None = None
    fused_min_numel = 2**21
    _compiled: dict[str, Callable] = {}

    @staticmethod
    def _use_fused(z: torch.Tensor) -> bool:
        if _RBFSum.fused is None:
            return z.device.type == "cpu" and z.numel() >= _RBFSum.fused_min_numel
        return _RBFSum.fused

    @staticmethod
    def _call(function: Callable, z: torch.Tensor, *args, may_fuse: bool = True):
        """Run ``function`` compiled if ``may_fuse`` and :meth:`_use_fused`, else eagerly in chunks."""
        if may_fuse and _RBFSum._use_fused(z):
            compiled = _RBFSum._compiled.get(function.__name__)
            if compiled is None:
                compiled = _RBFSum._compiled[function.__name__] = torch.compile(function)
            try:
                return compiled(z, *args, 1)
            except Exception as err:  # no C++ compiler, unsupported platform: keep training, slower
                warnings.warn(f"torch.compile of the RBF activation failed ({err!r:.200}); using the eager loop",
                              RuntimeWarning, stacklevel=3)
                _RBFSum.fused = False
        return function(z, *args, _RBFSum.chunk.get(z.device.type, _RBFSum.default_chunk))

    @staticmethod
    def forward(ctx, z, weight, centres, sigma):
        ctx.save_for_backward(z, weight, centres)
        ctx.sigma = sigma
        return _RBFSum._call(_rbf_values, z, weight, centres, sigma)

    @staticmethod
    def backward(ctx, grad):
        z, weight, centres = ctx.saved_tensors
        need_z, need_w = ctx.needs_input_grad[:2]
        # a double backward (grad mode on here) needs the differentiable eager operations
        grad_z, grad_w = _RBFSum._call(_rbf_grads, z, grad, weight, centres, ctx.sigma, need_z, need_w,
                                       may_fuse=not torch.is_grad_enabled())
        return grad_z, grad_w, None, None


class RBFActivation(nn.Module):
    """Per-channel activations :math:`\\phi_c(z) = \\sum_j w_{cj} e^{-(z - \\mu_j)^2 / (2 \\sigma^2)}`.

    Parameters
    ----------
    num_channels : int
        One activation per channel (dimension 1 of the input).
    num_rbf : int, optional
        Number of Gaussians (31).
    rbf_range : float, optional
        Centres :math:`\\mu_j` equally spaced on ``[-rbf_range, rbf_range]``;
        :math:`\\sigma` is their spacing.
    init_slope : float, optional
        The weights start as :math:`w_j = s \\mu_j / \\sqrt{2\\pi}`, which makes
        :math:`\\phi(z) \\approx s z` inside the range (a quadratic potential).

    Examples
    --------
    >>> import torch
    >>> phi = RBFActivation(3, num_rbf=31, rbf_range=1.0, init_slope=0.1)
    >>> z = torch.full((1, 3, 1, 1), 0.5)
    >>> torch.allclose(phi(z), 0.1 * z, atol=1e-3)
    True
    """

    def __init__(self, num_channels: int, num_rbf: int = 31, rbf_range: float = 1.0, init_slope: float = 0.1) -> None:
        super().__init__()
        check_positive("num_channels", num_channels, integer=True)
        check_positive("num_rbf", num_rbf, integer=True)
        check_positive("rbf_range", rbf_range)
        if num_rbf < 2:
            raise ValueError(f"num_rbf must be at least 2, got {num_rbf}")
        centres = torch.linspace(-rbf_range, rbf_range, num_rbf)
        self.register_buffer("centres", centres)
        self.sigma = 2.0 * rbf_range / (num_rbf - 1)
        self.weight = nn.Parameter(init_slope * centres.repeat(num_channels, 1) / math.sqrt(2 * math.pi))

    def _checked_weights(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``(C, N_w)`` and centres in the dtype of ``z``, once ``z`` is checked to be ``(N, C, ...)``."""
        if z.ndim < 2 or z.shape[1] != self.weight.shape[0]:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (N, {self.weight.shape[0]}, ...)")
        return self.weight.to(z.dtype), self.centres.to(z.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply :math:`\\phi_c` to channel ``c`` of ``z`` (shape ``(N, C, ...)``)."""
        return _RBFSum.apply(z, *self._checked_weights(z), self.sigma)

    def potential(self, z: torch.Tensor) -> torch.Tensor:
        """The antiderivative :math:`\\rho_c` with :math:`\\rho_c(0) = 0` and :math:`\\rho_c' = \\phi_c`.

        :math:`\\rho(z) = \\sum_j w_j \\sigma \\sqrt{\\pi / 2}
        \\big[\\operatorname{erf}\\big(\\tfrac{z - \\mu_j}{\\sqrt 2 \\sigma}\\big)
        - \\operatorname{erf}\\big(\\tfrac{-\\mu_j}{\\sqrt 2 \\sigma}\\big)\\big]`.

        Parameters
        ----------
        z : torch.Tensor
            Input of shape ``(N, C, ...)``.

        Returns
        -------
        torch.Tensor
            :math:`\\rho_c` applied to channel ``c``, same shape as ``z``.

        Examples
        --------
        >>> phi = RBFActivation(2, rbf_range=1.0, init_slope=0.1)
        >>> z = torch.linspace(-0.5, 0.5, 5).repeat(1, 2, 1).requires_grad_(True)
        >>> rho = phi.potential(z)
        >>> rho.shape
        torch.Size([1, 2, 5])
        >>> (grad,) = torch.autograd.grad(rho.sum(), z)
        >>> torch.allclose(grad, phi(z))  # rho' = phi
        True
        >>> torch.allclose(rho, 0.05 * z**2, atol=1e-3)  # phi(z) ~ 0.1 z
        True
        """
        weight, centres = self._checked_weights(z)
        weight = weight.reshape(1, weight.shape[0], *(1,) * (z.ndim - 2), -1)
        diff = z.unsqueeze(-1) - centres
        scale = self.sigma * math.sqrt(math.pi / 2)
        root2sigma = math.sqrt(2) * self.sigma
        return (weight * scale * (torch.erf(diff / root2sigma) - torch.erf(-centres / root2sigma))).sum(-1)


class VariationalNetwork(nn.Module):
    """Variational network: ``num_stages`` learned gradient steps on complex images.

    Parameters
    ----------
    forward_op, adjoint_op : callable
        :math:`A` maps complex images to complex k-space data (e.g. ``(B, H, W)
        -> (B, H, W)`` or ``(B, H, W) -> (B, C, H, W)`` for ``C`` coils; a
        layout ``(B, 1, H, W)`` works as well), :math:`A^*` maps back. The
        image layout is the one ``adjoint_op`` (or ``init``) returns.
    num_stages : int, optional
        Stages :math:`T` (10).
    num_filters : int, optional
        Filters :math:`N_k` per stage (24).
    kernel_size : int, optional
        Odd filter size (11).
    num_rbf : int, optional
        Gaussians per activation (31).
    rbf_range : float, optional
        Range ``[-rbf_range, rbf_range]`` of the RBF centres; it should cover
        the filter responses of the images (scale the data accordingly).
    data_weight : float, optional
        Initial :math:`\\lambda_t` (1.0).
    init_slope : float, optional
        Initial activations :math:`\\phi(z) \\approx` ``init_slope`` :math:`z`.
    init : callable, optional
        ``y -> x0`` (complex); default :math:`A^* y` (zero filling).

    Attributes
    ----------
    filters : nn.Parameter
        Unconstrained filter parameters, shape ``(T, N_k, 2, k, k)``; the
        filters used are :meth:`stage_filters` (zero mean, unit norm; an
        all-zero parameter gives a zero filter). Initialised from torch's global
        random generator (seed it with ``torch.manual_seed``).
    activations : nn.ModuleList
        One :class:`RBFActivation` per stage.
    data_weights : nn.Parameter
        :math:`\\lambda_t`, shape ``(T,)``.
    calls_per_reconstruction : dict
        ``{'forward': T, 'adjoint': T + 1}`` (``T`` with ``init``).

    Examples
    --------
    >>> import torch
    >>> F2 = lambda x: torch.fft.fft2(x, norm="ortho")  # full sampling, one coil
    >>> F2_adj = lambda y: torch.fft.ifft2(y, norm="ortho")
    >>> vn = VariationalNetwork(F2, F2_adj, num_stages=2, num_filters=4, kernel_size=5)
    >>> y = torch.randn(2, 12, 10, dtype=torch.complex64)
    >>> x = vn(y)
    >>> x.shape, x.dtype
    (torch.Size([2, 1, 12, 10]), torch.complex64)
    >>> vn.magnitude(y).dtype
    torch.float32
    """

    def __init__(
        self,
        forward_op: TensorMap,
        adjoint_op: TensorMap,
        num_stages: int = 10,
        num_filters: int = 24,
        kernel_size: int = 11,
        num_rbf: int = 31,
        rbf_range: float = 1.0,
        data_weight: float = 1.0,
        init_slope: float = 0.1,
        init: TensorMap | None = None,
    ) -> None:
        super().__init__()
        if not callable(forward_op) or not callable(adjoint_op):
            raise TypeError("forward_op and adjoint_op must be callables on batched complex tensors")
        if init is not None and not callable(init):
            raise TypeError(f"init must be a callable y -> x0 or None, got {type(init).__name__}")
        check_positive("num_stages", num_stages, integer=True)
        check_positive("num_filters", num_filters, integer=True)
        check_positive("kernel_size", kernel_size, integer=True)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.forward_op = forward_op
        self.adjoint_op = adjoint_op
        self.init = init
        self.num_stages = num_stages
        self.kernel_size = kernel_size
        self.filters = nn.Parameter(torch.randn(num_stages, num_filters, 2, kernel_size, kernel_size))
        self.activations = nn.ModuleList(
            RBFActivation(num_filters, num_rbf, rbf_range, init_slope) for _ in range(num_stages)
        )
        self.data_weights = nn.Parameter(torch.full((num_stages,), float(data_weight)))

    @property
    def calls_per_reconstruction(self) -> dict[str, int]:
        """Calls of ``forward_op`` and ``adjoint_op`` in one forward pass."""
        return {"forward": self.num_stages, "adjoint": self.num_stages + (self.init is None)}

    def stage_filters(self, t: int) -> torch.Tensor:
        """Filters of stage ``t``, shape ``(N_k, 2, k, k)``: zero mean per channel, unit norm.

        Parameters
        ----------
        t : int
            Stage index, ``0 <= t < num_stages``.

        Returns
        -------
        torch.Tensor
            The constrained filters :math:`K_{t,i}` (differentiable with
            respect to :attr:`filters`).

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> F2 = lambda x: torch.fft.fft2(x, norm="ortho")
        >>> F2_adj = lambda y: torch.fft.ifft2(y, norm="ortho")
        >>> vn = VariationalNetwork(F2, F2_adj, num_stages=2, num_filters=4, kernel_size=3)
        >>> k = vn.stage_filters(1)
        >>> k.shape
        torch.Size([4, 2, 3, 3])
        >>> bool(k.mean(dim=(-2, -1)).abs().max() < 1e-6)
        True
        >>> torch.allclose(k.flatten(1).norm(dim=1), torch.ones(4))
        True
        """
        k = self.filters[t]
        k = k - k.mean(dim=(-2, -1), keepdim=True)
        norm = k.flatten(1).norm(dim=1).clamp_min(1e-12)
        return k / norm[:, None, None, None]

    @staticmethod
    def _as_channels(x: torch.Tensor) -> torch.Tensor:
        """Complex ``(..., H, W)`` -> real ``(N, 2, H, W)``."""
        return torch.view_as_real(x.reshape(-1, *x.shape[-2:])).permute(0, 3, 1, 2)

    @staticmethod
    def _as_complex(r: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return torch.view_as_complex(r.permute(0, 2, 3, 1).contiguous()).reshape(shape)

    def regulariser_gradient(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """:math:`\\sum_i K_{t,i}^\\top \\phi_{t,i}(K_{t,i} x)` for complex ``x``, same shape.

        Parameters
        ----------
        x : torch.Tensor
            Complex images, shape ``(B, H, W)`` or ``(B, 1, H, W)``.
        t : int
            Stage index.

        Returns
        -------
        torch.Tensor
            The gradient of :meth:`regulariser` with respect to the real and
            imaginary parts, as a complex tensor of the shape of ``x``.

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> F2 = lambda x: torch.fft.fft2(x, norm="ortho")
        >>> F2_adj = lambda y: torch.fft.ifft2(y, norm="ortho")
        >>> vn = VariationalNetwork(F2, F2_adj, num_stages=2, num_filters=4, kernel_size=3)
        >>> x = torch.randn(2, 8, 8, dtype=torch.complex128, requires_grad=True)
        >>> g = vn.regulariser_gradient(x, 0)
        >>> g.shape, g.dtype
        (torch.Size([2, 8, 8]), torch.complex128)
        >>> (autograd,) = torch.autograd.grad(vn.regulariser(x, 0).sum(), x)
        >>> torch.allclose(g, autograd)
        True
        """
        r = self._as_channels(x)
        k = self.stage_filters(t).to(r.dtype)
        pad = self.kernel_size // 2
        responses = F.conv2d(r, k, padding=pad)
        return self._as_complex(F.conv_transpose2d(self.activations[t](responses), k, padding=pad), x.shape)

    def regulariser(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """:math:`R_t(x) = \\sum_i \\sum_{pixels} \\rho_{t,i}(K_{t,i} x)`, one value per image.

        Its gradient (with respect to the real and imaginary parts) is
        :meth:`regulariser_gradient`.

        Parameters
        ----------
        x : torch.Tensor
            Complex images, shape ``(B, H, W)`` or ``(B, 1, H, W)``.
        t : int
            Stage index.

        Returns
        -------
        torch.Tensor
            Real values, shape ``(B,)``.

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> F2 = lambda x: torch.fft.fft2(x, norm="ortho")
        >>> F2_adj = lambda y: torch.fft.ifft2(y, norm="ortho")
        >>> vn = VariationalNetwork(F2, F2_adj, num_stages=2, num_filters=4, kernel_size=3)
        >>> x = torch.randn(3, 1, 8, 8, dtype=torch.complex64)
        >>> vn.regulariser(x, 1).shape
        torch.Size([3])
        >>> vn.regulariser(torch.zeros(1, 8, 8, dtype=torch.complex64), 0).tolist()  # rho(0) = 0
        [0.0]
        """
        r = self._as_channels(x)
        k = self.stage_filters(t).to(r.dtype)
        values = self.activations[t].potential(F.conv2d(r, k, padding=self.kernel_size // 2))
        return values.flatten(1).sum(1)  # x is (B, H, W) or (B, 1, H, W): one row per image

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct the complex image ``(B, 1, H, W)`` from complex data ``y``."""
        if not isinstance(y, torch.Tensor) or not y.is_complex():
            raise TypeError("y must be a complex torch.Tensor of k-space data")
        x = self.adjoint_op(y) if self.init is None else self.init(y)
        if not x.is_complex() or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[1] != 1):
            raise ValueError(
                f"the starting image has shape {tuple(x.shape)} and dtype {x.dtype}; "
                "expected complex (B, H, W) or (B, 1, H, W)"
            )
        for t in range(self.num_stages):
            data_gradient = self.adjoint_op(self.forward_op(x) - y)
            x = x - (self.regulariser_gradient(x, t) + self.data_weights[t] * data_gradient)
        return x.reshape(x.shape[0], 1, *x.shape[-2:])

    def magnitude(self, y: torch.Tensor) -> torch.Tensor:
        """The magnitude ``|x|`` of the reconstruction, real ``(B, 1, H, W)``.

        Parameters
        ----------
        y : torch.Tensor
            Complex k-space data, as for :meth:`forward`.

        Returns
        -------
        torch.Tensor
            ``self(y).abs()``.

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> F2 = lambda x: torch.fft.fft2(x, norm="ortho")
        >>> F2_adj = lambda y: torch.fft.ifft2(y, norm="ortho")
        >>> vn = VariationalNetwork(F2, F2_adj, num_stages=1, num_filters=2, kernel_size=3)
        >>> y = torch.randn(2, 8, 8, dtype=torch.complex64)
        >>> m = vn.magnitude(y)
        >>> m.shape, m.dtype
        (torch.Size([2, 1, 8, 8]), torch.float32)
        >>> torch.equal(m, vn(y).abs())
        True
        """
        return self(y).abs()
