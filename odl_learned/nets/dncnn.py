"""DnCNN: the residual denoiser of Zhang, Zuo, Chen, Meng, Zhang (2017).

The network :math:`R_\\theta` estimates the noise :math:`v` in ``x = u + v``;
the denoised image is :math:`x - R_\\theta(x)` ("residual learning").
Architecture with depth ``D``: conv 3x3 -> ReLU; ``D - 2`` times conv 3x3 (no
bias) -> batch norm -> ReLU; conv 3x3. All convolutions keep the image size.
"""

from __future__ import annotations

import torch
from torch import nn

from odl_learned._checks import check_positive

__all__ = ("DnCNN",)


class DnCNN(nn.Module):
    """Residual denoiser ``x -> x - R(x)`` (or ``x -> R(x)``).

    Parameters
    ----------
    channels : int, optional
        Image channels (1 for grey values).
    depth : int, optional
        Number of convolution layers, at least 2 (17 in the paper).
    features : int, optional
        Feature channels of the hidden layers (64 in the paper).
    residual : bool, optional
        Return ``x - R(x)`` (default), else the noise estimate ``R(x)``.
    use_norm : bool, optional
        Batch normalisation in the middle layers (default).

    Examples
    --------
    >>> import torch
    >>> net = DnCNN(depth=5, features=8)
    >>> net(torch.zeros(2, 1, 13, 17)).shape
    torch.Size([2, 1, 13, 17])
    """

    def __init__(
        self, channels: int = 1, depth: int = 17, features: int = 64, residual: bool = True, use_norm: bool = True
    ) -> None:
        super().__init__()
        check_positive("channels", channels, integer=True)
        check_positive("features", features, integer=True)
        check_positive("depth", depth, integer=True)
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self.channels = channels
        self.residual = residual
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(features, features, 3, padding=1, bias=not use_norm),
                nn.BatchNorm2d(features) if use_norm else nn.Identity(),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    @property
    def last_layer(self) -> nn.Conv2d:
        """The final convolution (zero it to make the residual net the identity)."""
        return self.layers[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch ``(B, channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, {self.channels}, H, W)")
        noise = self.layers(x)
        return x - noise if self.residual else noise
