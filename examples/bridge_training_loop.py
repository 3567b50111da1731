"""Training through the ray transform: a small CNN that post-processes FBP.

The network ``N`` (three convolutions, a residual connection) maps the FBP of
noisy data to an image. Its loss has two terms:

.. math::
    \\ell = \\|N(x_{fbp}) - x\\|^2 / \\|x\\|^2
          + \\beta \\, \\|A N(x_{fbp}) - y\\|^2 / \\|y\\|^2 ,

the second of which runs the ray transform ``A`` inside the torch graph via
``OperatorModule(A)``; its gradient is computed by the transpose of ``A``.
Training images are random ellipses from ``odl_learned.data`` (about 40 per
image, zero background); the test image is a Shepp-Logan phantom the network
never sees. A few hundred gradient steps on two CPU cores.

Run::

    python examples/bridge_training_loop.py --out examples_out
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import odl  # noqa: E402
import torch  # noqa: E402

from odl_learned.bridge import OperatorModule  # noqa: E402
from odl_learned.data import random_ellipses_batch, shepp_logan  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import ct, noise  # noqa: E402

FIGURE = "bridge_training_loop.png"


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--steps", type=int, default=None, help="number of gradient steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, noise and weights")
    return parser.parse_args(argv)


class PostProcessing(torch.nn.Module):
    """``x + conv(relu(conv(relu(conv(x)))))``: a residual correction of the input."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 5, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


def simulate(ray_trafo, fbp_op, images: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy sinograms (5 % Gaussian noise) and their FBPs as batches ``(B, 1, ...)``."""
    sinograms, fbps = [], []
    for k, image in enumerate(images):
        y = noise.gaussian_noise(ray_trafo(ray_trafo.domain.element(image)), 0.05, seed=seed + k)
        sinograms.append(y.asarray())
        fbps.append(fbp_op(y).asarray())
    return _as_batch(sinograms), _as_batch(fbps)


def _as_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """Stack single images into a float32 batch ``(B, 1, ...)``."""
    return torch.from_numpy(np.stack(arrays)[:, None].astype(np.float32))


def main(argv=None) -> dict:
    """Train; return the loss curve and the test PSNRs of FBP and FBP + CNN."""
    args = parse_args(argv)
    size = 64 if args.quick else 128
    steps = args.steps or (30 if args.quick else 300)
    num_train, batch_size, beta = (16, 4, 0.5) if args.quick else (64, 8, 0.5)
    torch.manual_seed(args.seed)

    space = odl.uniform_discr([-64, -64], [64, 64], (size, size), dtype="float32")
    ray_trafo = ct.ray_transform(space, num_angles=30)
    fbp_op = ct.fbp(ray_trafo, "Hann")
    ray_layer = OperatorModule(ray_trafo)  # the ODL operator as a torch layer

    images = random_ellipses_batch(space, num_train, args.seed, variant="zero_background")
    x_train = torch.from_numpy(images)[:, None]
    y_train, fbp_train = simulate(ray_trafo, fbp_op, x_train[:, 0].numpy(), args.seed)
    x_test = shepp_logan(space)
    _, fbp_test = simulate(ray_trafo, fbp_op, x_test.asarray()[None], args.seed + 10_000)

    net = PostProcessing()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(num_train, (batch_size,), generator=generator)
        x, y, x_fbp = x_train[index], y_train[index], fbp_train[index]
        x_net = net(x_fbp)
        image_loss = (x_net - x).pow(2).sum((1, 2, 3)) / x.pow(2).sum((1, 2, 3))
        data_loss = (ray_layer(x_net) - y).pow(2).sum((1, 2, 3)) / y.pow(2).sum((1, 2, 3))
        loss = (image_loss + beta * data_loss).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    seconds = time.perf_counter() - start

    with torch.no_grad():
        x_net_test = net(fbp_test)[0, 0]
    psnr_fbp = psnr(fbp_test[0, 0], x_test)
    psnr_net = psnr(x_net_test, x_test)
    print(f"{steps} steps in {seconds:.1f} s; Shepp-Logan test image: "
          f"FBP {psnr_fbp:.2f} dB, FBP + CNN {psnr_net:.2f} dB")

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    axes[0].semilogy(losses, lw=1)
    axes[0].set_xlabel("step")
    axes[0].set_title("training loss")
    panels = [
        (x_test.asarray(), "test image (Shepp-Logan)"),
        (fbp_test[0, 0].numpy(), f"FBP, {psnr_fbp:.1f} dB"),
        (x_net_test.numpy(), f"FBP + CNN, {psnr_net:.1f} dB"),
    ]
    for ax, (image, title) in zip(axes[1:], panels):
        ax.imshow(image.T, origin="lower", cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_axis_off()
    path = save_figure(fig, args.out, FIGURE)
    return {"losses": losses, "psnr_fbp": psnr_fbp, "psnr_net": psnr_net, "seconds": seconds, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
