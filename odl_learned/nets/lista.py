"""ISTA and learned ISTA (Gregor & LeCun 2010) for sparse coding.

Sparse coding of :math:`y \\in \\mathbb{R}^m` in a dictionary :math:`D \\in
\\mathbb{R}^{m \\times n}`:

.. math::
    \\min_z \\tfrac12 \\|D z - y\\|^2 + \\lambda \\|z\\|_1 .

ISTA with step :math:`\\tau \\le 1/L`, :math:`L = \\|D\\|_2^2`, from :math:`z_0 = 0`:

.. math::
    z_{k+1} = S_{\\lambda\\tau}\\big(z_k - \\tau D^\\top (D z_k - y)\\big)
            = S_\\theta(W y + S z_k), \\quad W = \\tau D^\\top, \\;
            S = I - \\tau D^\\top D, \\; \\theta = \\lambda \\tau,

with the soft threshold :math:`S_\\theta(v) = \\operatorname{sign}(v) \\max(|v| - \\theta, 0)`.
LISTA unrolls ``num_layers`` of these iterations and learns :math:`W, S, \\theta`
(one threshold per component); initialised as above, it *is* ISTA.

Reference: K. Gregor, Y. LeCun, *Learning fast approximations of sparse
coding*, ICML 2010.
"""

from __future__ import annotations

import torch
from torch import nn

from odl_learned._checks import check_positive

__all__ = ("soft_threshold", "lipschitz_constant", "ista", "LISTA")


def soft_threshold(v: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    """The soft threshold :math:`\\operatorname{sign}(v) \\max(|v| - \\theta, 0)`, the prox of :math:`\\theta \\|\\cdot\\|_1`.

    Examples
    --------
    >>> import torch
    >>> soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    tensor([-1.,  0.,  2.])
    """
    return torch.sign(v) * torch.relu(v.abs() - theta)


def _check_dictionary(dictionary: torch.Tensor) -> None:
    if not isinstance(dictionary, torch.Tensor) or dictionary.ndim != 2:
        raise TypeError("dictionary must be a 2D torch.Tensor of shape (m, n)")


def lipschitz_constant(dictionary: torch.Tensor) -> float:
    """:math:`L = \\|D\\|_2^2`, the Lipschitz constant of :math:`z \\mapsto D^\\top(D z - y)`.

    Examples
    --------
    >>> import torch
    >>> lipschitz_constant(torch.diag(torch.tensor([3.0, 1.0])))
    9.0
    """
    _check_dictionary(dictionary)
    return float(torch.linalg.matrix_norm(dictionary, ord=2)) ** 2


def _check_data(y: torch.Tensor, m: int) -> None:
    if not isinstance(y, torch.Tensor) or y.ndim not in (1, 2) or y.shape[-1] != m:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y has shape {shape}; expected ({m},) or (B, {m})")


def ista(
    dictionary: torch.Tensor, y: torch.Tensor, lam: float, num_iter: int, step: float | None = None
) -> torch.Tensor:
    """``num_iter`` ISTA iterations from :math:`z_0 = 0` for :math:`\\min_z \\tfrac12\\|Dz - y\\|^2 + \\lambda\\|z\\|_1`.

    Parameters
    ----------
    dictionary : torch.Tensor
        :math:`D`, shape ``(m, n)``.
    y : torch.Tensor
        Data, shape ``(m,)`` or ``(B, m)``.
    lam : float
        :math:`\\lambda > 0`.
    num_iter : int
        Number of iterations.
    step : float, optional
        :math:`\\tau`; default :math:`1 / \\|D\\|_2^2`.

    Returns
    -------
    torch.Tensor
        :math:`z`, shape ``(n,)`` or ``(B, n)``.

    Examples
    --------
    >>> import torch
    >>> D = torch.eye(3)
    >>> ista(D, torch.tensor([2.0, -0.5, 1.0]), lam=1.0, num_iter=5)  # the prox: soft threshold
    tensor([1., -0., 0.])
    """
    _check_dictionary(dictionary)
    _check_data(y, dictionary.shape[0])
    check_positive("lam", lam)
    check_positive("num_iter", num_iter, integer=True)
    step = 1.0 / lipschitz_constant(dictionary) if step is None else check_positive("step", step)
    z = y.new_zeros((*y.shape[:-1], dictionary.shape[1]))
    for _ in range(num_iter):
        z = soft_threshold(z - step * (z @ dictionary.T - y) @ dictionary, lam * step)
    return z


class LISTA(nn.Module):
    """Learned ISTA: ``num_layers`` unrolled ISTA iterations with learned :math:`W, S, \\theta`.

    Layer :math:`k` computes :math:`z_{k+1} = S_{\\theta_k}(W_k y + S_k z_k)` from
    :math:`z_0 = 0`, initialised with the ISTA values of the module docstring.

    Parameters
    ----------
    dictionary : torch.Tensor
        :math:`D`, shape ``(m, n)`` (copied; not a parameter).
    num_layers : int, optional
        Number of unrolled iterations (16).
    lam : float, optional
        :math:`\\lambda` of the initialisation, :math:`\\theta = \\lambda \\tau`.
    step : float, optional
        :math:`\\tau`; default :math:`1 / \\|D\\|_2^2`.
    tied : bool, optional
        Share :math:`W, S, \\theta` between layers (default, as Gregor & LeCun);
        ``False`` gives every layer its own copy.

    Examples
    --------
    >>> import torch
    >>> D = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    >>> net = LISTA(D, num_layers=4, lam=0.1)
    >>> y = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    >>> torch.allclose(net(y), ista(D, y, lam=0.1, num_iter=4), atol=1e-5)
    True
    """

    def __init__(
        self,
        dictionary: torch.Tensor,
        num_layers: int = 16,
        lam: float = 0.1,
        step: float | None = None,
        tied: bool = True,
    ) -> None:
        super().__init__()
        _check_dictionary(dictionary)
        check_positive("num_layers", num_layers, integer=True)
        check_positive("lam", lam)
        step = 1.0 / lipschitz_constant(dictionary) if step is None else check_positive("step", step)
        dictionary = dictionary.detach().clone()
        m, n = dictionary.shape
        self.register_buffer("dictionary", dictionary)
        self.num_layers = num_layers
        self.tied = tied
        copies = 1 if tied else num_layers
        W = step * dictionary.T
        S = torch.eye(n, dtype=dictionary.dtype, device=dictionary.device) - step * dictionary.T @ dictionary
        self.W = nn.Parameter(W.repeat(copies, 1, 1))
        self.S = nn.Parameter(S.repeat(copies, 1, 1))
        self.theta = nn.Parameter(torch.full((copies, n), lam * step, dtype=dictionary.dtype))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Sparse codes ``(B, n)`` (or ``(n,)``) of data ``(B, m)`` (or ``(m,)``)."""
        _check_data(y, self.dictionary.shape[0])
        z = None
        for k in range(self.num_layers):
            i = 0 if self.tied else k
            v = y @ self.W[i].T
            if z is not None:
                v = v + z @ self.S[i].T
            z = soft_threshold(v, self.theta[i])
        return z
