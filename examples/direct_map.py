"""A direct map ``Phi = N(b)`` (AUTOMAP / iRadonMap style) and why it stays small.

A direct map learns the whole inverse from data: dense layers take the sinogram
to an image, convolutions refine it (Zhu et al. 2018, AUTOMAP; He & Ma 2020,
iRadonMap). It never sees the ray transform, so it must learn what FBP knows
for free. Here it is trained with :class:`odl_learned.training.Trainer` on the
dival random ellipses at a small size (30 angles, 5% noise, no inverse crime)
and compared with FBP on held-out ellipses and on Shepp-Logan.

Its limits, measured:

- **Size.** The first dense layer maps every data value to every pixel, so
  the parameter count grows like ``n^4`` for ``n x n`` images (printed below):
  about 3.6e8 at 128 x 128, more than the whole CT training set holds in
  numbers; :class:`~odl_learned.nets.DirectMap` refuses such sizes unless told.
- **Data.** At 16 x 16 it beats FBP after seconds of training (18.0 against
  16.0 dB, ``--quick``); at 32 x 32 (``python examples/direct_map.py``: 8,000
  images, 4,000 steps of batch 64) it stays below FBP (18.3 against 19.0 dB),
  as dival's iRadonMap does with little data (17.8 dB against FBP's 24.2 at
  128 x 128).
- **No data consistency.** Nothing ties the output to the measured data: on
  Shepp-Logan, unlike its training images, it falls further below FBP (13.1
  against 14.9 dB at 32 x 32; 15.4 against 16.9 at 16 x 16).

Run::

    python examples/direct_map.py --out examples_out
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import odl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from odl_learned.bridge import OperatorModule  # noqa: E402
from odl_learned.data import ct_ellipse_pairs  # noqa: E402
from odl_learned.evaluation.problems import ct_problem  # noqa: E402
from odl_learned.metrics import psnr  # noqa: E402
from odl_learned.nets import DirectMap, count_parameters  # noqa: E402
from odl_learned.operators import ct  # noqa: E402
from odl_learned.training import Trainer, TrainConfig  # noqa: E402

FIGURE = "direct_map.png"
NUM_ANGLES = 30


def data_shape(n: int) -> tuple[int, int]:
    """Sinogram shape of the CT problem at ``n x n`` (angles, detector cells)."""
    space = odl.uniform_discr([-64, -64], [64, 64], (n, n))
    return (NUM_ANGLES, *ct.make_geometry(space, NUM_ANGLES).det_partition.shape)


def mean_psnr(reconstructions: torch.Tensor, truths: torch.Tensor) -> float:
    """Mean PSNR over a batch ``(B, 1, n, n)``, each with its ground truth's data range."""
    return float(np.mean([psnr(r[0].numpy(), t[0].numpy()) for r, t in zip(reconstructions, truths)]))


def main(argv=None) -> dict:
    parser = example_parser(__doc__)
    args = parser.parse_args(argv)
    size, num_train, steps = (16, 4000, 600) if args.quick else (32, 8000, 4000)
    fine_size = 3 * size + 4  # data from a finer grid: no inverse crime
    train = ct_ellipse_pairs("train", num_train, size=size, fine_size=fine_size, progress=False)
    test = ct_ellipse_pairs("test", 50, size=size, fine_size=fine_size, progress=False)
    y_test, x_test = test.batch(range(len(test)))
    extras = train.extras  # the unnormalised ray transform and the norm the data were divided by
    fbp = OperatorModule(ct.fbp(extras["ray_trafo"], "Hann", 0.4) * extras["norm"])

    torch.manual_seed(0)
    network = DirectMap(y_test.shape[2:], (size, size), conv_channels=8)
    config = TrainConfig(num_steps=steps, batch_size=64, learning_rate=1e-3, warmup_steps=steps // 20,
                         grad_clip=1.0, num_workers=0, validate_every=steps, checkpoint_every=steps, seed=0)
    # the pairs generated once, in memory (a PairDataset alone would project each item anew)
    Trainer(network, TensorDataset(*train.batch(range(num_train))), config, progress=False).fit()
    network.eval()

    # Shepp-Logan, measured like the ellipses (finer grid, same normalisation and noise level)
    shepp = ct_problem(phantom="shepp-logan", num_images=1, size=size, fine_size=fine_size)
    y_sl, x_sl = (torch.from_numpy(element.asarray())[None, None] for element in shepp.pairs[0])
    with torch.no_grad():
        results = {
            "size": size, "params": count_parameters(network),
            "psnr_fbp": mean_psnr(fbp(y_test), x_test), "psnr_direct": mean_psnr(network(y_test), x_test),
            "psnr_fbp_shepp_logan": mean_psnr(fbp(y_sl), x_sl),
            "psnr_direct_shepp_logan": mean_psnr(network(y_sl), x_sl),
            "params_by_size": {n: DirectMap.num_parameters(data_shape(n), (n, n), conv_channels=8)
                               for n in (16, 32, 64, 128)},
        }
        images = [x_test[0, 0], fbp(y_test[:1])[0, 0], network(y_test[:1])[0, 0]]

    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
    titles = ("a held-out ground truth", f"FBP (mean {results['psnr_fbp']:.1f} dB)",
              f"direct map (mean {results['psnr_direct']:.1f} dB)")
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image.T.numpy(), cmap="gray", origin="lower", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    sizes = list(results["params_by_size"])
    axes[3].loglog(sizes, list(results["params_by_size"].values()), "o-")
    axes[3].set_xticks(sizes, [str(n) for n in sizes], minor=False)
    axes[3].xaxis.set_minor_locator(plt.NullLocator())
    axes[3].set_xlabel("image size n")
    axes[3].set_ylabel("parameters")
    axes[3].set_title("parameters ~ n^4", fontsize=9)
    results["figure"] = save_figure(fig, args.out, FIGURE)
    print(f"{size}x{size}, {results['params']:,} parameters: FBP {results['psnr_fbp']:.2f} dB, "
          f"direct map {results['psnr_direct']:.2f} dB on held-out ellipses; Shepp-Logan: FBP "
          f"{results['psnr_fbp_shepp_logan']:.2f}, direct map {results['psnr_direct_shepp_logan']:.2f} dB")
    print("parameters at n x n: " + ", ".join(f"{n}: {p:.2g}" for n, p in results["params_by_size"].items()))
    return results


if __name__ == "__main__":
    main()
