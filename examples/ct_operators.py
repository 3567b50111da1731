"""The ray transform and its relatives: sinogram, back-projection, FBP.

A Shepp-Logan phantom, its sinogram ``A x`` (30 parallel-beam angles), the
back-projection ``A^* A x`` (the adjoint: blurry, not an inverse) and the
filtered back-projection. The dot test ``<A x, y> = <x, A^* y>`` is printed.

Run::

    python examples/ct_operators.py --out examples_out
"""

from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import odl  # noqa: E402

from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import ct  # noqa: E402
from odl_learned.testing import dot_test  # noqa: E402

FIGURE = "ct_operators.png"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples_out", help="folder for the figure")
    parser.add_argument("--quick", action="store_true", help="a smaller problem, for tests")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run the example; return the dot-test error and the PSNR of the FBP."""
    args = parse_args(argv)
    size = 64 if args.quick else 128
    space = odl.uniform_discr([-64, -64], [64, 64], (size, size), dtype="float32")
    ray_trafo = ct.ray_transform(space, num_angles=30)

    x = odl.core.phantom.shepp_logan(space, modified=True)
    sinogram = ray_trafo(x)
    backprojection = ray_trafo.adjoint(sinogram)
    fbp_op = ct.fbp(ray_trafo, "Hann")
    x_fbp = fbp_op(sinogram)

    error = dot_test(ray_trafo, rtol=1e-4)
    psnr_fbp = psnr(x_fbp, x)
    print(f"ray transform {space.shape} -> {ray_trafo.range.shape}")
    print(f"dot test: |<Ax, y> - <x, A*y>| / (|A| |x| |y|) = {error:.2e}")
    print(f"FBP (Hann), noise-free data: PSNR {psnr_fbp:.2f} dB")

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    panels = [
        (x, "phantom $x$", None),
        (sinogram, "sinogram $Ax$ (30 angles)", "auto"),
        (backprojection, "back-projection $A^*Ax$", None),
        (x_fbp, f"FBP, PSNR {psnr_fbp:.1f} dB", None),
    ]
    for ax, (element, title, aspect) in zip(axes, panels):
        image = ax.imshow(element.asarray().T, origin="lower", cmap="gray", aspect=aspect or "equal")
        ax.set_title(title)
        ax.set_axis_off()
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"dot test error {error:.1e}")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, FIGURE)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"figure: {path}")
    return {"dot_test_error": error, "psnr_fbp": psnr_fbp, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
