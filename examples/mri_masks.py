"""MRI sampling masks, zero-filled reconstructions, coil maps and sum of squares.

Three Cartesian sampling patterns (variable-density random lines,
equispaced lines, radial spokes) at acceleration 4 and 8, each with the
zero-filled reconstruction ``|A^H y|`` of a Shepp-Logan phantom from the
subsampled k-space ``y = M F x``: the aliasing shows what each pattern
leaves out. The last row shows four synthetic coil sensitivity maps
``|S_c|`` and the root-sum-of-squares image of multi-coil data, fully
sampled and 4x undersampled.

Run::

    python examples/mri_masks.py --out examples_out
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import odl  # noqa: E402

from odl_learned.data import shepp_logan  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import mri  # noqa: E402

FIGURE = "mri_masks.png"
ACCELERATIONS = (4, 8)
NUM_COILS = 4


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random masks and coil maps")
    return parser.parse_args(argv)


def show(ax, image, title, **kwargs):
    """Show a 2D array in ODL's axis order (axis 0 horizontal)."""
    ax.imshow(np.asarray(image).T, origin="lower", cmap="gray", **kwargs)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def main(argv=None) -> dict:
    """Run the example; return sampled fractions and PSNRs of the zero-filled images."""
    args = parse_args(argv)
    size = 64 if args.quick else 128
    shape = (size, size)
    space = odl.uniform_discr([-1, -1], [1, 1], shape, dtype="float32")
    x = shepp_logan(space)

    fractions, psnrs = {}, {}
    fig, axes = plt.subplots(3, 6, figsize=(12, 6.6))
    column = 0
    for acceleration in ACCELERATIONS:
        for pattern in mri.MASK_PATTERNS:
            mask = mri.cartesian_mask(shape, acceleration, center_fraction=0.04, pattern=pattern, seed=args.seed)
            op = mri.subsampled_fourier(space, mask)
            x_zf = mri.zero_filled(op, op(x))
            key = f"{pattern}-{acceleration}x"
            fractions[key] = float(mask.mean())
            psnrs[key] = psnr(x_zf, x)
            print(f"{key:15s} sampled {fractions[key]:.3f}, zero-filled PSNR {psnrs[key]:.2f} dB")
            show(axes[0, column], mask, f"{pattern}, {acceleration}x")
            show(axes[1, column], x_zf.asarray(), f"zero-filled, {psnrs[key]:.1f} dB", vmin=0, vmax=1)
            column += 1

    maps = mri.coil_sensitivities(shape, NUM_COILS, seed=args.seed)
    full = mri.subsampled_fourier(space, np.ones(shape, dtype=bool), coil_maps=maps)
    sos_full = mri.sum_of_squares(full, full(x))
    sos_error = float((sos_full - odl.abs(x)).norm() / x.norm())
    mask = mri.cartesian_mask(shape, 4, center_fraction=0.04, pattern="random", seed=args.seed)
    under = mri.subsampled_fourier(space, mask, coil_maps=maps)
    sos_under = mri.sum_of_squares(under, under(x))
    psnrs["sum-of-squares-4x"] = psnr(sos_under, x)
    print(f"sum of squares: fully sampled, relative error to |x| {sos_error:.1e}; "
          f"4x random {psnrs['sum-of-squares-4x']:.2f} dB")
    for c in range(NUM_COILS):
        show(axes[2, c], np.abs(maps[c]), f"coil {c + 1}: $|S_{c + 1}|$", vmin=0, vmax=1)
    show(axes[2, 4], sos_full.asarray(), "sum of squares, full", vmin=0, vmax=1)
    show(axes[2, 5], sos_under.asarray(), f"sum of squares, 4x, {psnrs['sum-of-squares-4x']:.1f} dB", vmin=0, vmax=1)

    path = save_figure(fig, args.out, FIGURE, greyscale=True)
    return {"fractions": fractions, "psnr": psnrs, "sos_full_error": sos_error, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
