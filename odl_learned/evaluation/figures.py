"""Figures of benchmark results: reconstructions beside the ground truth."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ("save_reconstruction_figure", "save_figure")


def save_reconstruction_figure(
    path: str | os.PathLike,
    truth: np.ndarray,
    reconstructions: Mapping[str, np.ndarray],
    *,
    psnr: Mapping[str, float] | None = None,
    title: str = "",
) -> str:
    """Save a row of images: the ground truth, then each reconstruction.

    All panels share the grey scale of the ground truth, so contrast and
    artefacts compare fairly; PSNR values, if given, appear in the titles.

    Parameters
    ----------
    path : path-like
        Output file (PNG, PDF, ...). Its folder is created if needed.
    truth : numpy.ndarray
        Ground truth image ``(H, W)``.
    reconstructions : mapping
        Method name to image ``(H, W)``.
    psnr : mapping, optional
        Method name to PSNR in dB.
    title : str, optional
        Figure title.

    Returns
    -------
    path : str
        The file written.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_reconstruction_figure(os.path.join(d, "r.png"), np.eye(8), {"id": np.eye(8)})
    ...     os.path.getsize(f) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: Sequence[tuple[str, np.ndarray]] = [("ground truth", truth), *reconstructions.items()]
    vmin, vmax = float(np.min(truth)), float(np.max(truth))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (name, image) in zip(axes[0], panels):
        ax.imshow(np.asarray(image), cmap="gray", vmin=vmin, vmax=vmax)
        label = name if psnr is None or name not in psnr else f"{name}\n{psnr[name]:.2f} dB"
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> str:
    """Lay out ``fig``, save it to ``path`` (creating its folder), close it; return the path.

    Examples
    --------
    >>> import tempfile, os
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_figure(plt.figure(), os.path.join(d, "sub", "f.png"))
    ...     os.path.getsize(f) > 0
    True
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
