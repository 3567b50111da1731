"""Unrolled iterative schemes: learned primal-dual, gradient descent, proximal gradient.

The forward operator :math:`A` and its adjoint :math:`A^*` are passed as
callables on batched tensors: ``forward_op`` maps images ``(B, 1, *image_shape)``
to data ``(B, 1, *data_shape)`` and ``adjoint_op`` maps back. They may be any
callables (a matrix product, an ``OperatorModule`` from the bridge, ...); these
networks know nothing of ODL. Only linear operators are covered: for a
nonlinear :math:`A` the adjoint of its derivative would be needed instead.

Every network takes an optional ``init`` callable (e.g. an FBP) mapping the data
``y`` to the starting image; calls made by ``init`` are not counted in
``calls_per_reconstruction``.

References
----------
- J. Adler, O. Oktem, *Solving ill-posed inverse problems using iterative deep
  neural networks*, Inverse Problems 33 (2017) -- learned gradient descent.
- J. Adler, O. Oktem, *Learned primal-dual reconstruction*, IEEE TMI 37 (2018).
- E. Celledoni, M. Ehrhardt, C. Etmann, B. Owren, C.-B. Schonlieb, F. Sherry,
  *Equivariant neural networks for inverse problems*, Inverse Problems 37
  (2021) -- learned proximal gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from odl_learned._checks import check_choice, check_positive

__all__ = (
    "ConvBlock",
    "ResidualConvBlock",
    "LearnedPrimalDual",
    "LearnedGradientDescent",
    "LearnedProximalGradient",
)

TensorMap = Callable[[torch.Tensor], torch.Tensor]


class ConvBlock(nn.Module):
    """The small CNN of Adler & Oktem: ``num_layers`` convolutions with PReLU between.

    ``in_channels -> hidden -> ... -> hidden -> out_channels``; every convolution
    has a ``kernel_size`` square kernel, zero padding that keeps the image size,
    and a bias; the activations are PReLU with one slope per channel,
    initialised to 0 (as ReLU), and the weights are Xavier-uniform with zero
    biases (the TensorFlow defaults of the original code).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    hidden : int, optional
        Channels of the hidden layers (32 in the papers).
    num_layers : int, optional
        Number of convolutions, at least 1 (3 in the papers).
    kernel_size : int, optional
        Odd kernel size (3 in the papers).
    activation : {'prelu', 'relu', 'leaky_relu'}, optional
        Activation between the convolutions.

    Examples
    --------
    >>> import torch
    >>> block = ConvBlock(6, 5)
    >>> block(torch.zeros(2, 6, 8, 8)).shape
    torch.Size([2, 5, 8, 8])
    >>> sum(p.numel() for p in block.parameters())  # (6*9+1)*32 + 32 + (32*9+1)*32 + 32 + (32*9+1)*5
    12517
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 32,
        num_layers: int = 3,
        kernel_size: int = 3,
        activation: str = "prelu",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden", hidden),
            ("num_layers", num_layers),
            ("kernel_size", kernel_size),
        ):
            check_positive(name, value, integer=True)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        activation = check_choice("activation", activation, ("prelu", "relu", "leaky_relu"))
        widths = [in_channels] + [hidden] * (num_layers - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            conv = nn.Conv2d(widths[i], widths[i + 1], kernel_size, padding=kernel_size // 2)
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
            layers.append(conv)
            if i < num_layers - 1:
                if activation == "prelu":
                    layers.append(nn.PReLU(hidden, init=0.0))
                elif activation == "relu":
                    layers.append(nn.ReLU())
                else:
                    layers.append(nn.LeakyReLU(0.2))
        self.layers = nn.Sequential(*layers)

    @property
    def last_layer(self) -> nn.Conv2d:
        """The final convolution (zero it to make the block output zero)."""
        return self.layers[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, in_channels, H, W)``."""
        return self.layers(x)


class ResidualConvBlock(nn.Module):
    """``x -> x + C(x)`` with ``C`` a :class:`ConvBlock`: the default learned proximal.

    Examples
    --------
    >>> import torch
    >>> prox = ResidualConvBlock(hidden=8)
    >>> _ = torch.nn.init.zeros_(prox.block.last_layer.weight)
    >>> x = torch.randn(2, 1, 5, 5)
    >>> torch.equal(prox(x), x)
    True
    """

    def __init__(self, channels: int = 1, hidden: int = 32, num_layers: int = 3, kernel_size: int = 3) -> None:
        super().__init__()
        self.block = ConvBlock(channels, channels, hidden, num_layers, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``x + C(x)``."""
        return x + self.block(x)


class _Unrolled(nn.Module):
    """Shared plumbing: operators, data checks, the starting image."""

    def __init__(
        self,
        forward_op: TensorMap,
        adjoint_op: TensorMap,
        num_iter: int,
        init: TensorMap | None,
        image_shape: Sequence[int] | None,
    ) -> None:
        super().__init__()
        if not callable(forward_op) or not callable(adjoint_op):
            raise TypeError("forward_op and adjoint_op must be callables on batched tensors")
        if init is not None and not callable(init):
            raise TypeError(f"init must be a callable y -> x0 or None, got {type(init).__name__}")
        check_positive("num_iter", num_iter, integer=True)
        self.forward_op = forward_op
        self.adjoint_op = adjoint_op
        self.init = init
        self.num_iter = num_iter
        self.image_shape = None if image_shape is None else tuple(int(n) for n in image_shape)

    @staticmethod
    def _check_data(y: torch.Tensor) -> None:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor of shape (B, 1, *data_shape), got {type(y).__name__}")
        if y.ndim < 3 or y.shape[1] != 1:
            raise ValueError(f"y has shape {tuple(y.shape)}; expected (B, 1, *data_shape)")

    def _image_shape(self, y: torch.Tensor) -> tuple[int, ...]:
        """The image shape; if not given, found once from ``adjoint_op(0)`` and cached."""
        if self.image_shape is None:
            with torch.no_grad():
                self.image_shape = tuple(self.adjoint_op(torch.zeros_like(y[:1])).shape[2:])
        return self.image_shape

    def _zeros(self, y: torch.Tensor, channels: int) -> torch.Tensor:
        return y.new_zeros((y.shape[0], channels, *self._image_shape(y)))

    def _start(self, y: torch.Tensor) -> torch.Tensor:
        """``init(y)``, checked, or zeros."""
        if self.init is None:
            return self._zeros(y, 1)
        x0 = self.init(y)
        if x0.ndim < 3 or x0.shape[:2] != (y.shape[0], 1):
            raise ValueError(f"init(y) has shape {tuple(x0.shape)}; expected ({y.shape[0]}, 1, *image_shape)")
        return x0


class LearnedPrimalDual(_Unrolled):
    """Learned primal-dual reconstruction (Adler & Oktem 2018), exactly as published.

    With primal ``f`` (``num_primal`` channels in image space) and dual ``h``
    (``num_dual`` channels in data space), both initialised with zeros, each
    of the ``num_iter`` iterations computes

    .. math::
        h &\\leftarrow h + \\Gamma_k\\big(h, \\; A f^{(2)}, \\; y\\big), \\\\
        f &\\leftarrow f + \\Lambda_k\\big(f, \\; A^* h^{(1)}\\big),

    and the reconstruction is :math:`f^{(1)}` (channel 0). ``f^{(2)}`` is
    channel 1 (channel 0 when ``num_primal == 1``). :math:`\\Gamma_k,
    \\Lambda_k` are :class:`ConvBlock` s (3 conv layers 3x3, 32 channels, PReLU),
    with parameters not shared between iterations.

    Parameters
    ----------
    forward_op, adjoint_op : callable
        :math:`A` on ``(B, 1, *image_shape)`` and :math:`A^*` on
        ``(B, 1, *data_shape)``. Adler & Oktem normalise :math:`A` by its norm.
    num_iter : int, optional
        Unrolled iterations (10).
    num_primal, num_dual : int, optional
        Memory channels of primal and dual (5 each).
    hidden, num_layers, kernel_size : int, optional
        Size of each :class:`ConvBlock` (32, 3, 3).
    init : callable, optional
        ``y -> x0`` (e.g. FBP); every primal channel starts at ``x0``.
        Default: zeros, as in the paper.
    image_shape : sequence of int, optional
        Spatial image shape; found once from ``adjoint_op`` if not given
        (one extra adjoint call on the first reconstruction only).

    Attributes
    ----------
    calls_per_reconstruction : dict
        ``{'forward': num_iter, 'adjoint': num_iter}``.

    Notes
    -----
    For 1-channel data and the defaults the network has
    ``10 * (12805 + 12517) = 253220`` parameters: per iteration the dual block
    has ``(7*9+1)*32 + 32 + (32*9+1)*32 + 32 + (32*9+1)*5 = 12805`` and the
    primal block ``(6*9+1)*32 + 32 + (32*9+1)*32 + 32 + (32*9+1)*5 = 12517``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> M = torch.randn(12, 16, generator=g)  # A: 4x4 images -> 3x4 data
    >>> A = lambda x: (x.flatten(1) @ M.T).reshape(-1, 1, 3, 4)
    >>> A_adj = lambda y: (y.flatten(1) @ M).reshape(-1, 1, 4, 4)
    >>> net = LearnedPrimalDual(A, A_adj, num_iter=2, image_shape=(4, 4))
    >>> net(torch.randn(2, 1, 3, 4, generator=g)).shape
    torch.Size([2, 1, 4, 4])
    >>> net.calls_per_reconstruction
    {'forward': 2, 'adjoint': 2}
    """

    def __init__(
        self,
        forward_op: TensorMap,
        adjoint_op: TensorMap,
        num_iter: int = 10,
        num_primal: int = 5,
        num_dual: int = 5,
        hidden: int = 32,
        num_layers: int = 3,
        kernel_size: int = 3,
        init: TensorMap | None = None,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(forward_op, adjoint_op, num_iter, init, image_shape)
        check_positive("num_primal", num_primal, integer=True)
        check_positive("num_dual", num_dual, integer=True)
        self.num_primal = num_primal
        self.num_dual = num_dual
        self.dual_blocks = nn.ModuleList(
            ConvBlock(num_dual + 2, num_dual, hidden, num_layers, kernel_size) for _ in range(num_iter)
        )
        self.primal_blocks = nn.ModuleList(
            ConvBlock(num_primal + 1, num_primal, hidden, num_layers, kernel_size) for _ in range(num_iter)
        )

    @property
    def calls_per_reconstruction(self) -> dict[str, int]:
        """Calls of ``forward_op`` and ``adjoint_op`` in one forward pass."""
        return {"forward": self.num_iter, "adjoint": self.num_iter}

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct from data ``y`` of shape ``(B, 1, *data_shape)``."""
        self._check_data(y)
        if self.init is None:
            primal = self._zeros(y, self.num_primal)
        else:
            primal = self._start(y).repeat(1, self.num_primal, *([1] * (y.ndim - 2)))
        dual = torch.zeros_like(y).repeat(1, self.num_dual, *([1] * (y.ndim - 2)))
        second = min(1, self.num_primal - 1)
        for dual_block, primal_block in zip(self.dual_blocks, self.primal_blocks):
            forward_value = self.forward_op(primal[:, second : second + 1])
            dual = dual + dual_block(torch.cat([dual, forward_value, y], dim=1))
            adjoint_value = self.adjoint_op(dual[:, 0:1])
            primal = primal + primal_block(torch.cat([primal, adjoint_value], dim=1))
        return primal[:, 0:1]


class LearnedGradientDescent(_Unrolled):
    """Learned gradient descent (Adler & Oktem 2017) with memory.

    With :math:`x_0 = ` ``init(y)`` (default 0) and memory :math:`s_0 = 0`
    (``num_memory`` channels), each iteration computes the gradient of the data
    term :math:`\\nabla \\tfrac12\\|A x - y\\|^2 = A^*(A x - y)` and

    .. math::
        (\\delta x, s') = \\Lambda_k\\big(x, \\; A^*(A x - y), \\;
        [\\nabla R(x)], \\; s\\big), \\qquad
        x \\leftarrow x + \\delta x, \\qquad s \\leftarrow \\max(s', 0),

    with :math:`\\Lambda_k` a :class:`ConvBlock` (3 conv layers 3x3, 32
    channels, PReLU) per iteration. :math:`\\nabla R` is an optional
    regulariser gradient (a callable on images) given as an extra input.

    Parameters
    ----------
    forward_op, adjoint_op : callable
        :math:`A` and :math:`A^*` on batched tensors.
    num_iter : int, optional
        Unrolled iterations (10).
    num_memory : int, optional
        Memory channels (5).
    hidden, num_layers, kernel_size : int, optional
        Size of each :class:`ConvBlock`.
    regulariser_gradient : callable, optional
        ``x -> grad R(x)`` on ``(B, 1, *image_shape)``, an extra input.
    init : callable, optional
        ``y -> x0`` (e.g. FBP, as in the paper); default zeros.
    image_shape : sequence of int, optional
        Needed only without ``init``; found once from ``adjoint_op`` if not given.

    Attributes
    ----------
    calls_per_reconstruction : dict
        ``{'forward': num_iter, 'adjoint': num_iter}``.

    Examples
    --------
    >>> import torch
    >>> M = torch.randn(12, 16, generator=torch.Generator().manual_seed(0))
    >>> A = lambda x: (x.flatten(1) @ M.T).reshape(-1, 1, 3, 4)
    >>> A_adj = lambda y: (y.flatten(1) @ M).reshape(-1, 1, 4, 4)
    >>> net = LearnedGradientDescent(A, A_adj, num_iter=3, image_shape=(4, 4))
    >>> net(torch.zeros(2, 1, 3, 4)).shape
    torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self,
        forward_op: TensorMap,
        adjoint_op: TensorMap,
        num_iter: int = 10,
        num_memory: int = 5,
        hidden: int = 32,
        num_layers: int = 3,
        kernel_size: int = 3,
        regulariser_gradient: TensorMap | None = None,
        init: TensorMap | None = None,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(forward_op, adjoint_op, num_iter, init, image_shape)
        if num_memory < 0 or not isinstance(num_memory, int):
            raise ValueError(f"num_memory must be a non-negative integer, got {num_memory!r}")
        if regulariser_gradient is not None and not callable(regulariser_gradient):
            raise TypeError("regulariser_gradient must be a callable x -> grad R(x) or None")
        self.num_memory = num_memory
        self.regulariser_gradient = regulariser_gradient
        in_channels = 2 + (regulariser_gradient is not None) + num_memory
        self.blocks = nn.ModuleList(
            ConvBlock(in_channels, 1 + num_memory, hidden, num_layers, kernel_size) for _ in range(num_iter)
        )

    @property
    def calls_per_reconstruction(self) -> dict[str, int]:
        """Calls of ``forward_op`` and ``adjoint_op`` in one forward pass."""
        return {"forward": self.num_iter, "adjoint": self.num_iter}

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct from data ``y`` of shape ``(B, 1, *data_shape)``."""
        self._check_data(y)
        x = self._start(y)
        memory = x.new_zeros((x.shape[0], self.num_memory, *x.shape[2:]))
        for block in self.blocks:
            gradient = self.adjoint_op(self.forward_op(x) - y)
            inputs = [x, gradient]
            if self.regulariser_gradient is not None:
                inputs.append(self.regulariser_gradient(x))
            update = block(torch.cat(inputs + [memory], dim=1))
            x = x + update[:, :1]
            memory = torch.relu(update[:, 1:])
        return x


class LearnedProximalGradient(_Unrolled):
    """Learned proximal gradient (forward-backward) descent.

    .. math::
        x_{k+1} = \\operatorname{prox}_k\\big(x_k - \\tau_k A^*(A x_k - y)\\big),
        \\qquad k = 0, \\dots, K - 1,

    with learned step sizes :math:`\\tau_k` and learned proximal operators
    :math:`\\operatorname{prox}_k` (any ``nn.Module`` on images, e.g. an
    equivariant network), and :math:`x_0 = A^* y` or ``init(y)``.

    Parameters
    ----------
    forward_op, adjoint_op : callable
        :math:`A` and :math:`A^*` on batched tensors.
    prox : nn.Module, sequence of nn.Module, or callable, optional
        A list, tuple or ``nn.ModuleList`` of ``num_iter`` modules (one per
        iteration); a single ``nn.Module``, ``nn.Sequential`` included
        (shared by all iterations); or a factory ``k -> module``
        called for ``k = 0, ..., num_iter - 1``. Default: a
        :class:`ResidualConvBlock` per iteration.
    num_iter : int, optional
        Iterations :math:`K` (8, as Celledoni et al.).
    step_size : float, optional
        Initial :math:`\\tau_k` (1.0; fits an operator normalised to norm 1).
    learn_step_size : bool, optional
        Train the :math:`\\tau_k` (default), else keep them fixed. They are not
        constrained to be positive.
    init : callable, optional
        ``y -> x0``; default :math:`A^* y`.
    hidden : int, optional
        Hidden channels of the default proximal blocks.

    Attributes
    ----------
    calls_per_reconstruction : dict
        ``{'forward': num_iter, 'adjoint': num_iter + 1}`` (``num_iter`` with
        ``init``).

    Examples
    --------
    >>> import torch
    >>> M = torch.randn(12, 16, generator=torch.Generator().manual_seed(0))
    >>> A = lambda x: (x.flatten(1) @ M.T).reshape(-1, 1, 3, 4)
    >>> A_adj = lambda y: (y.flatten(1) @ M).reshape(-1, 1, 4, 4)
    >>> net = LearnedProximalGradient(A, A_adj, prox=lambda k: torch.nn.Identity(), num_iter=3)
    >>> net(torch.zeros(2, 1, 3, 4)).shape  # with identity prox: gradient descent
    torch.Size([2, 1, 4, 4])
    >>> net.calls_per_reconstruction
    {'forward': 3, 'adjoint': 4}
    """

    def __init__(
        self,
        forward_op: TensorMap,
        adjoint_op: TensorMap,
        prox: nn.Module | Sequence[nn.Module] | Callable[[int], nn.Module] | None = None,
        num_iter: int = 8,
        step_size: float = 1.0,
        learn_step_size: bool = True,
        init: TensorMap | None = None,
        hidden: int = 32,
    ) -> None:
        super().__init__(forward_op, adjoint_op, num_iter, init, None)
        check_positive("step_size", step_size)
        if prox is None:
            modules = [ResidualConvBlock(1, hidden) for _ in range(num_iter)]
        elif isinstance(prox, nn.Module) and not isinstance(prox, nn.ModuleList):
            modules = [prox] * num_iter  # one network, shared by all iterations
        elif isinstance(prox, (Sequence, nn.ModuleList)):
            modules = list(prox)
            if len(modules) != num_iter:
                raise ValueError(f"prox holds {len(modules)} modules; expected num_iter = {num_iter}")
        elif callable(prox):
            modules = [prox(k) for k in range(num_iter)]
        else:
            raise TypeError(
                "prox must be an nn.Module, a sequence of num_iter modules, a factory k -> module, "
                f"or None; got {type(prox).__name__}"
            )
        for module in modules:
            if not isinstance(module, nn.Module):
                raise TypeError(f"every proximal must be a torch.nn.Module, got {type(module).__name__}")
        self.prox = nn.ModuleList(modules)
        self.step_sizes = nn.Parameter(
            torch.full((num_iter,), float(step_size)), requires_grad=learn_step_size
        )

    @property
    def calls_per_reconstruction(self) -> dict[str, int]:
        """Calls of ``forward_op`` and ``adjoint_op`` in one forward pass."""
        return {"forward": self.num_iter, "adjoint": self.num_iter + (self.init is None)}

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct from data ``y`` of shape ``(B, 1, *data_shape)``."""
        self._check_data(y)
        x = self.adjoint_op(y) if self.init is None else self._start(y)
        for prox, step in zip(self.prox, self.step_sizes):
            x = prox(x - step * self.adjoint_op(self.forward_op(x) - y))
        return x
