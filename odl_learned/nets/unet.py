"""The post-processing U-Net (Jin et al. 2017; as in dival, Leuschner et al. 2021).

The network :math:`N_\\theta` maps an image (e.g. an FBP) to an image; in
residual mode the output is :math:`x + N_\\theta(x)`, so the network learns the
artefacts to remove (the "residual learning" of FBPConvNet).

Architecture (``S = len(channels)`` scales):

- in block: conv 3x3 -> batch norm -> LeakyReLU(0.2);
- ``S - 1`` down blocks: conv 3x3 with stride 2 -> BN -> LeakyReLU, conv 3x3 ->
  BN -> LeakyReLU;
- ``S - 1`` up blocks: bilinear upsampling by 2, a skip connection from the same
  scale (conv 1x1 to ``skip_channels[s]`` channels -> BN -> LeakyReLU),
  concatenation, BN, then two (conv 3x3 -> BN -> LeakyReLU);
- out block: conv 1x1.

Input sizes need not be powers of two: the input is padded (replicate) to a
multiple of ``2 ** (S - 1)`` and the output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from odl_learned._checks import check_positive

__all__ = ("UNet",)

_SLOPE = 0.2  # LeakyReLU slope, as in dival


def _norm(channels: int, use_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if use_norm else nn.Identity()


def _conv_norm_act(in_ch: int, out_ch: int, kernel_size: int, stride: int, use_norm: bool) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2),
        _norm(out_ch, use_norm),
        nn.LeakyReLU(_SLOPE),
    ]


class _DownBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, use_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            *_conv_norm_act(in_ch, out_ch, 3, 2, use_norm), *_conv_norm_act(out_ch, out_ch, 3, 1, use_norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _UpBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, skip_ch: int, use_norm: bool) -> None:
        super().__init__()
        self.skip_ch = skip_ch
        if skip_ch > 0:
            self.skip = nn.Sequential(*_conv_norm_act(out_ch, skip_ch, 1, 1, use_norm))
        self.conv = nn.Sequential(
            _norm(in_ch + skip_ch, use_norm),
            *_conv_norm_act(in_ch + skip_ch, out_ch, 3, 1, use_norm),
            *_conv_norm_act(out_ch, out_ch, 3, 1, use_norm),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        if self.skip_ch > 0:
            x = torch.cat([x, self.skip(skip)], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    """U-Net for post-processing, ``x -> x + N(x)`` (residual) or ``x -> N(x)``.

    Parameters
    ----------
    in_channels, out_channels : int, optional
        Channels of input and output; equal in residual mode.
    channels : sequence of int, optional
        Feature channels per scale, finest first; ``len(channels)`` scales.
    skip_channels : int or sequence of int, optional
        Channels of the skip connection at each of the ``len(channels) - 1``
        finer scales (finest first); 0 switches a skip off. Default 4 at
        every scale, as in dival; ``channels[:-1]`` gives the full-width
        concatenations of Jin et al. (2017).
    residual : bool, optional
        Return ``x + N(x)`` (default) instead of ``N(x)``.
    use_norm : bool, optional
        Use batch normalisation (default).

    Attributes
    ----------
    factor : int
        ``2 ** (len(channels) - 1)``: inputs are padded to a multiple of it.

    Examples
    --------
    >>> import torch
    >>> net = UNet(channels=(8, 16, 32))
    >>> net(torch.zeros(2, 1, 30, 37)).shape  # sizes need not be powers of 2
    torch.Size([2, 1, 30, 37])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256),
        skip_channels: int | Sequence[int] = 4,
        residual: bool = True,
        use_norm: bool = True,
    ) -> None:
        super().__init__()
        check_positive("in_channels", in_channels, integer=True)
        check_positive("out_channels", out_channels, integer=True)
        channels = tuple(channels)
        if not channels:
            raise ValueError("channels must hold at least one entry")
        for c in channels:
            check_positive("channels entry", c, integer=True)
        num_skips = len(channels) - 1
        if isinstance(skip_channels, int):
            skip_channels = (skip_channels,) * num_skips
        skip_channels = tuple(skip_channels)
        if len(skip_channels) != num_skips or any(s < 0 for s in skip_channels):
            raise ValueError(
                f"skip_channels must be {num_skips} non-negative integers (one per finer scale), "
                f"got {skip_channels}"
            )
        if residual and in_channels != out_channels:
            raise ValueError(
                f"residual mode needs in_channels == out_channels, got {in_channels} and {out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.skip_channels = skip_channels
        self.residual = residual
        self.factor = 2**num_skips
        self.inc = nn.Sequential(*_conv_norm_act(in_channels, channels[0], 3, 1, use_norm))
        self.down = nn.ModuleList(_DownBlock(channels[i - 1], channels[i], use_norm) for i in range(1, len(channels)))
        self.up = nn.ModuleList(
            _UpBlock(channels[i + 1], channels[i], skip_channels[i], use_norm) for i in reversed(range(num_skips))
        )
        self.outc = nn.Conv2d(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to a batch ``(B, in_channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, {self.in_channels}, H, W)")
        height, width = x.shape[-2:]
        pad_h = -height % self.factor
        pad_w = -width % self.factor
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        padded = F.pad(x, pad, mode="replicate") if pad_h or pad_w else x
        features = [self.inc(padded)]
        for down in self.down:
            features.append(down(features[-1]))
        h = features[-1]
        for up, skip in zip(self.up, reversed(features[:-1])):
            h = up(h, skip)
        out = self.outc(h)[..., pad[2] : pad[2] + height, pad[0] : pad[0] + width]
        return x + out if self.residual else out
