"""The ray transform and its relatives: sinogram, back-projection, FBP.

A Shepp-Logan phantom, its sinogram ``A x`` (30 parallel-beam angles), the
back-projection ``A^* A x`` (the adjoint: blurry, not an inverse) and the
filtered back-projection. The dot test ``<A x, y> = <x, A^* y>`` is printed.

Run::

    python examples/ct_operators.py --out examples_out
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import odl  # noqa: E402

from odl_learned.data import shepp_logan  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import ct  # noqa: E402
from odl_learned.testing import dot_test  # noqa: E402

FIGURE = "ct_operators.png"


def main(argv=None) -> dict:
    """Run the example; return the dot-test error and the PSNR of the FBP."""
    args = example_parser(__doc__).parse_args(argv)
    size = 64 if args.quick else 128
    space = odl.uniform_discr([-64, -64], [64, 64], (size, size), dtype="float32")
    ray_trafo = ct.ray_transform(space, num_angles=30)

    x = shepp_logan(space)
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
    path = save_figure(fig, args.out, FIGURE)
    return {"dot_test_error": error, "psnr_fbp": psnr_fbp, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
