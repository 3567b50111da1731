"""Equivariance: a quarter turn of the object is a shift of its sinogram, and networks can respect it.

Top row: a phantom ``x``, its quarter turn ``R x``, the sinogram ``A x`` and
``A R x``, which equals ``A x`` shifted by a quarter of the angles (the angles
cover a full turn). Bottom row: the four feature maps of a C4 lifting
convolution for ``x`` and for ``R x``: rotating the input rotates every map
and cyclically permutes them. The printed errors are
``||Phi(R' y) - R Phi(y)|| / ||Phi(y)||`` for FBP, an (untrained) C4-equivariant
network and an ordinary CNN of the same size.

Run::

    python examples/equivariance.py --out examples_out
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import odl  # noqa: E402
import torch  # noqa: E402

from odl_learned.data import shepp_logan  # noqa: E402
from odl_learned.nets import EquivariantConvBlock, LiftingConv2d, get_group, matched_cnn  # noqa: E402
from odl_learned.operators import ct, groups  # noqa: E402

FIGURE = "equivariance.png"


def rotation_error(network: torch.nn.Module, x: torch.Tensor) -> float:
    """``||N(R x) - R N(x)|| / ||N(x)||`` for a quarter turn ``R``."""
    def rot(t):
        return torch.rot90(t, 1, dims=(-2, -1))

    with torch.no_grad():
        out = network(x)
        return float((network(rot(x)) - rot(out)).norm() / out.norm())


def main(argv=None) -> dict:
    args = example_parser(__doc__).parse_args(argv)
    size, num_angles = (32, 16) if args.quick else (128, 64)
    space = odl.uniform_discr([-1, -1], [1, 1], (size, size), dtype="float32")
    x = shepp_logan(space)
    R = groups.Rotation90(space, 1)
    A = ct.ray_transform(space, num_angles, full_turn=True)
    S = groups.sinogram_rotation(A, num_angles // 4)
    sinogram_error = float((A(R(x)) - S(A(x))).norm() / A(x).norm())

    torch.manual_seed(0)
    lifting = LiftingConv2d(1, 1, 5, get_group("C4"))
    image = torch.from_numpy(x.asarray())[None, None]
    with torch.no_grad():
        maps = lifting(image)[0, 0]
        maps_rotated = lifting(torch.rot90(image, 1, dims=(-2, -1)))[0, 0]

    torch.manual_seed(0)
    equivariant = EquivariantConvBlock(1, 1, hidden=4, num_layers=3, group="C4")
    ordinary = matched_cnn(equivariant)
    fbp = ct.fbp(A)
    errors = {
        "fbp": float((fbp(S(A(x))) - R(fbp(A(x)))).norm() / fbp(A(x)).norm()),
        "equivariant network": rotation_error(equivariant, image),
        "ordinary CNN": rotation_error(ordinary, image),
    }

    fig, axes = plt.subplots(2, 4, figsize=(10, 5.2))
    panels = [(x.asarray(), "x"), (R(x).asarray(), "R x"), (A(x).asarray(), "A x (angles down)"),
              (A(R(x)).asarray(), f"A R x = shifted A x\n(error {sinogram_error:.0e})")]
    for ax, (img, title) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray", aspect="auto")
        ax.set_title(title, fontsize=9)
    for g in range(4):
        axes[1, g].imshow(torch.cat([maps[g], maps_rotated[(g + 1) % 4]], dim=1).numpy(), cmap="gray")
        axes[1, g].set_title(f"lifted map {g} of x | map {(g + 1) % 4} of R x", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    figure = save_figure(fig, args.out, FIGURE, greyscale=True)
    for name, value in errors.items():
        print(f"equivariance error, quarter turn, {name}: {value:.1e}")
    return {"figure": figure, "sinogram_error": sinogram_error, "errors": errors}


if __name__ == "__main__":
    main()
