"""Training through the ray transform: a small CNN that post-processes FBP.

The network ``N`` (three convolutions, a residual connection) maps the FBP of
noisy data to an image. Its loss has two terms:

.. math::
    \\ell = \\|N(x_{fbp}) - x\\|^2 / \\|x\\|^2
          + \\beta \\, \\|A N(x_{fbp}) - y\\|^2 / \\|y\\|^2 ,

the second of which runs the ray transform ``A`` inside the torch graph via
``OperatorModule(A)``; its gradient is computed by the transpose of ``A``.
Training images are random ellipses; the test image is a Shepp-Logan phantom
the network never sees. A few hundred gradient steps on two CPU cores.

Run::

    python examples/bridge_training_loop.py --out examples_out
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import odl  # noqa: E402
import torch  # noqa: E402

from odl_learned.bridge import OperatorModule  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.operators import ct, noise  # noqa: E402

FIGURE = "bridge_training_loop.png"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples_out", help="folder for the figure")
    parser.add_argument("--quick", action="store_true", help="a smaller problem, for tests")
    parser.add_argument("--steps", type=int, default=None, help="number of gradient steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, noise and weights")
    return parser.parse_args(argv)


def random_ellipses(space: odl.DiscretizedSpace, num_images: int, seed: int) -> np.ndarray:
    """Return ``num_images`` images of 12 random ellipses each, clipped at 0, maximum 1."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(num_images):
        n = 12
        params = np.column_stack([
            rng.uniform(-0.4, 1.0, n),       # value (negative ones cut holes)
            rng.uniform(0.05, 0.6, n),       # half-axes
            rng.uniform(0.05, 0.6, n),
            rng.uniform(-0.5, 0.5, n),       # centre
            rng.uniform(-0.5, 0.5, n),
            rng.uniform(0, np.pi, n),        # rotation
        ])
        image = np.clip(odl.core.phantom.ellipsoid_phantom(space, params).asarray(), 0, None)
        images.append(image / max(image.max(), 1e-6))
    return np.stack(images).astype(np.float32)


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

    x_train = torch.from_numpy(random_ellipses(space, num_train, args.seed))[:, None]
    y_train, fbp_train = simulate(ray_trafo, fbp_op, x_train[:, 0].numpy(), args.seed)
    x_test = odl.core.phantom.shepp_logan(space, modified=True)
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
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, FIGURE)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"figure: {path}")
    return {"losses": losses, "psnr_fbp": psnr_fbp, "psnr_net": psnr_net, "seconds": seconds, "figure": path}


if __name__ == "__main__":
    main(sys.argv[1:])
