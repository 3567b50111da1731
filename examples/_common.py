"""Shared parts of the example scripts: the command line and saving the figure.

Not an example itself. Every script reads ``--out`` (the folder for its
figure) and ``--quick`` (a smaller problem, for tests) with
:func:`example_parser` and writes its figure with :func:`save_figure`.
Importing this module selects matplotlib's non-interactive ``Agg`` backend.
"""

from __future__ import annotations

import argparse
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

__all__ = ("example_parser", "save_figure")


def example_parser(doc: str) -> argparse.ArgumentParser:
    """Return a parser with ``--out`` and ``--quick``, described by the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default="examples_out", help="folder for the figure")
    parser.add_argument("--quick", action="store_true", help="a smaller problem, for tests")
    return parser


def save_figure(fig, out: str, name: str, *, greyscale: bool = False, dpi: int = 80) -> str:
    """Lay out ``fig``, save it as ``out/name`` (PNG), close it and return the path.

    With ``greyscale=True`` the figure is stored as an 8-bit greyscale PNG (a
    third of the RGBA file size; for figures that are grey anyway).
    """
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    if greyscale:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        buffer.seek(0)
        Image.open(buffer).convert("L").save(path, optimize=True)
    else:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"figure: {path}")
    return path
