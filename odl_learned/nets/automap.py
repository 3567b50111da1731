"""Direct learned inversion: fully connected data -> image, then a small CNN.

AUTOMAP (Zhu, Liu, Cauley, Rosen, Rosen 2018) learns the whole inverse map with
dense layers, :math:`y \\mapsto \\tanh(W_2 \\tanh(W_1 y + b_1) + b_2)`, reshaped
to the image and refined by convolutions (5x5, 5x5, 7x7); iRadonMap (He et al.
2020, in the dival benchmark) is a CT variant of the same idea.

Limits: nothing of the operator is built in, so the map must be learned from
data alone. A dense layer between data of size :math:`M` and an :math:`n\\times
n` image has :math:`M n^2` weights, and with :math:`M \\sim n^2` (CT sinograms,
k-space) the parameter count grows like :math:`n^4`: for 30 angles x 183 bins
and 128x128 images the AUTOMAP layout has 3.6e8 parameters (1.4 GB in float32).
Only small sizes (up to about 64x64) are practical; the dival benchmark shows it
needs much training data (17.8 dB with 0.1% of the data, 28.0 dB with 100%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from odl_learned._checks import check_positive

__all__ = ("DirectMap",)


def _shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(shape)
    if not shape:
        raise ValueError(f"{name} must be a non-empty shape")
    for n in shape:
        check_positive(f"{name} entry", n, integer=True)
    return tuple(int(n) for n in shape)


class DirectMap(nn.Module):
    """AUTOMAP-style network: dense layers from data to image, then convolutions.

    ``(B, in_channels, *data_shape) -> (B, 1, *image_shape)``: the data are
    flattened, passed through dense layers with tanh activations (widths
    ``hidden``, then the image size), reshaped to the 2D image and refined by
    conv 5x5 -> ReLU -> conv 5x5 -> ReLU -> conv 7x7 (``conv_channels`` hidden
    channels). The output of the dense part is also added to the refinement,
    so with a zeroed last convolution the refinement is the identity.

    Parameters
    ----------
    data_shape : sequence of int
        Shape of one data item (without batch and channel), e.g. ``(30, 183)``.
    image_shape : sequence of int
        2D image shape, e.g. ``(64, 64)``.
    hidden : int or sequence of int, optional
        Widths of the hidden dense layers; default one layer as wide as the
        image (AUTOMAP).
    conv_channels : int, optional
        Channels of the convolutional refinement (64 in AUTOMAP).
    in_channels : int, optional
        Data channels, e.g. 2 for complex k-space split into real and imaginary.
    max_parameters : int or None, optional
        Refuse (``ValueError``) to build a network with more parameters than this
        (default 1e8, 400 MB in float32); ``None`` for no limit.

    Examples
    --------
    >>> import torch
    >>> net = DirectMap((5, 7), (8, 8), conv_channels=4)
    >>> net(torch.zeros(2, 1, 5, 7)).shape
    torch.Size([2, 1, 8, 8])
    >>> DirectMap.num_parameters((30, 183), (128, 128)) > 3e8  # grows like n^4
    True
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        image_shape: Sequence[int],
        hidden: int | Sequence[int] | None = None,
        conv_channels: int = 64,
        in_channels: int = 1,
        max_parameters: int | None = 10**8,
    ) -> None:
        super().__init__()
        self.data_shape = _shape("data_shape", data_shape)
        self.image_shape = _shape("image_shape", image_shape)
        if len(self.image_shape) != 2:
            raise ValueError(f"image_shape must be 2D, got {self.image_shape}")
        check_positive("conv_channels", conv_channels, integer=True)
        check_positive("in_channels", in_channels, integer=True)
        widths = self._widths(self.data_shape, self.image_shape, hidden, in_channels)
        count = self.num_parameters(self.data_shape, self.image_shape, hidden, conv_channels, in_channels)
        if max_parameters is not None and count > max_parameters:
            raise ValueError(
                f"DirectMap with data {self.data_shape} and image {self.image_shape} would have {count:,} "
                f"parameters (more than max_parameters = {max_parameters:,}); use smaller sizes or hidden "
                "widths, or pass max_parameters=None"
            )
        self.in_channels = in_channels
        dense: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            dense += [nn.Linear(a, b), nn.Tanh()]
        self.dense = nn.Sequential(*dense)
        c = conv_channels
        self.refine = nn.Sequential(
            nn.Conv2d(1, c, 5, padding=2),
            nn.ReLU(),
            nn.Conv2d(c, c, 5, padding=2),
            nn.ReLU(),
            nn.Conv2d(c, 1, 7, padding=3),
        )

    @staticmethod
    def _widths(
        data_shape: Sequence[int], image_shape: Sequence[int], hidden: int | Sequence[int] | None, in_channels: int
    ) -> list[int]:
        image_size = math.prod(image_shape)
        if hidden is None:
            hidden = (image_size,)
        elif isinstance(hidden, int):
            hidden = (hidden,)
        for h in hidden:
            check_positive("hidden width", h, integer=True)
        return [in_channels * math.prod(data_shape), *hidden, image_size]

    @staticmethod
    def num_parameters(
        data_shape: Sequence[int],
        image_shape: Sequence[int],
        hidden: int | Sequence[int] | None = None,
        conv_channels: int = 64,
        in_channels: int = 1,
    ) -> int:
        """The parameter count of a :class:`DirectMap`, without building it.

        Parameters
        ----------
        data_shape, image_shape, hidden, conv_channels, in_channels
            As for :class:`DirectMap`.

        Returns
        -------
        int
            The number of trainable parameters.

        Examples
        --------
        >>> net = DirectMap((5, 7), (8, 8), conv_channels=4)
        >>> count = DirectMap.num_parameters((5, 7), (8, 8), conv_channels=4)
        >>> count == sum(p.numel() for p in net.parameters())
        True
        """
        widths = DirectMap._widths(tuple(data_shape), tuple(image_shape), hidden, in_channels)
        dense = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        c = conv_channels
        conv = (25 * c + c) + (25 * c * c + c) + (49 * c + 1)
        return dense + conv

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Map data ``(B, in_channels, *data_shape)`` to images ``(B, 1, *image_shape)``."""
        expected = (self.in_channels, *self.data_shape)
        if y.ndim != len(expected) + 1 or tuple(y.shape[1:]) != expected:
            raise ValueError(f"y has shape {tuple(y.shape)}; expected (B, {', '.join(map(str, expected))})")
        x = self.dense(y.flatten(1)).reshape(y.shape[0], 1, *self.image_shape)
        return x + self.refine(x)
