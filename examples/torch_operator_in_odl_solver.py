"""A torch network as an ODL functional inside an ODL solver.

The regulariser ``R`` is a small convolutional network: a convolution with
two 2 x 2 kernels (finite differences) followed by a smoothed magnitude,

.. math::
    R(x) = \\sum_i \\sqrt{(D_1 x)_i^2 + (D_2 x)_i^2 + \\varepsilon^2},

a smoothed total variation. Its weights are set by hand so that the result
can be checked; a trained network drops in the same way. Wrapped as
``TorchFunctional(net, space)``, ``R`` is an ODL functional whose gradient
comes from autograd, so ODL's proximal gradient method (forward-backward
splitting) solves

.. math::
    \\min_{x \\ge 0} \\; \\tfrac12 \\|A x - y\\|^2 + \\lambda R(x)

with ``f`` the non-negativity constraint (proximal step) and
``g = 0.5 * ||A x - y||^2 + lam * R`` (gradient step) written as ODL
functionals.

Run::

    python examples/torch_operator_in_odl_solver.py --out examples_out
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import odl  # noqa: E402
import torch  # noqa: E402

from odl_learned.bridge import TorchFunctional  # noqa: E402
from odl_learned.data import shepp_logan  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import ct, noise  # noqa: E402

FIGURE = "torch_operator_in_odl_solver.png"


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--niter", type=int, default=None, help="number of proximal gradient iterations")
    return parser.parse_args(argv)


class SmoothedTV(torch.nn.Module):
    """``x -> sum sqrt(|D x|^2 + eps^2)`` on batches ``(B, 1, H, W)``, values ``(B,)``."""

    def __init__(self, eps: float = 0.01):
        super().__init__()
        self.eps = eps
        self.differences = torch.nn.Conv2d(1, 2, kernel_size=2, bias=False)
        with torch.no_grad():
            self.differences.weight.copy_(torch.tensor([
                [[[-1.0, 0.0], [1.0, 0.0]]],   # difference along axis 0
                [[[-1.0, 1.0], [0.0, 0.0]]],   # difference along axis 1
            ]))
        self.differences.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.differences(x)
        return torch.sqrt(d.pow(2).sum(1) + self.eps**2).sum((1, 2))


def main(argv=None) -> dict:
    """Run proximal gradient with the network regulariser; return PSNRs and objective values."""
    args = parse_args(argv)
    size = 64 if args.quick else 128
    niter = args.niter or (100 if args.quick else 1000)
    lam, eps = 0.3, 0.01

    space = odl.uniform_discr([-64, -64], [64, 64], (size, size), dtype="float32")
    ray_trafo = ct.ray_transform(space, num_angles=30)
    x_true = shepp_logan(space)
    y = noise.gaussian_noise(ray_trafo(x_true), 0.05, seed=0)
    x_fbp = ct.fbp(ray_trafo, "Hann")(y)

    regulariser = TorchFunctional(SmoothedTV(eps), space)       # the network as an ODL functional
    data_fit = 0.5 * odl.functionals.L2NormSquared(ray_trafo.range).translated(y) * ray_trafo
    f = odl.functionals.IndicatorNonnegativity(space)
    g = data_fit + lam * regulariser                             # ODL algebra: gradients add up

    # Step size 1 / Lipschitz constant of grad g: ||A||^2 + lam * ||D||^2 / eps (||D||^2 <= 8).
    op_norm = float(ray_trafo.norm(estimate=True))
    gamma = 1.0 / (op_norm**2 + lam * 8 / eps)

    objective = []
    start = time.perf_counter()
    x = x_fbp.copy()
    odl.solvers.proximal_gradient(
        x, f, g, gamma, niter, callback=lambda iterate: objective.append(g(iterate))
    )
    seconds = time.perf_counter() - start
    psnr_fbp, psnr_reg = psnr(x_fbp, x_true), psnr(x, x_true)
    print(f"{niter} proximal gradient iterations in {seconds:.1f} s: "
          f"objective {objective[0]:.1f} -> {objective[-1]:.1f}")
    print(f"FBP {psnr_fbp:.2f} dB, network-regularised {psnr_reg:.2f} dB")

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    panels = [
        (x_true, "truth"),
        (x_fbp, f"FBP (start), {psnr_fbp:.1f} dB"),
        (x, f"TorchFunctional regulariser, {psnr_reg:.1f} dB"),
    ]
    for ax, (element, title) in zip(axes, panels):
        ax.imshow(element.asarray().T, origin="lower", cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_axis_off()
    axes[3].semilogy(objective)
    axes[3].set_xlabel("iteration")
    axes[3].set_title(r"$\frac{1}{2}\|Ax-y\|^2 + \lambda R(x)$")
    path = save_figure(fig, args.out, FIGURE)
    return {"objective": objective, "psnr_fbp": psnr_fbp, "psnr_reg": psnr_reg, "seconds": seconds, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
