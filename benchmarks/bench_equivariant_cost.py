"""Test-time cost of the C4-equivariant network against the ordinary CNN of matched size.

Both are the learned proximal gradient reconstructors of the equivariance study
(``odl_learned.evaluation.equivariance_study.build_network``: 8 iterations,
the study's quarter-turn-symmetric ray transform with 60 angles over the full
turn); the ordinary one's proximal CNNs have as many parameters as the
equivariant ones (``matched_cnn``). Weights do not change the time, so the
networks are untrained. Timed alternately in one process, in evaluation mode
without gradients (the equivariant filter banks are built once and reused):

- the whole reconstruction of one image and of a batch of 8;
- one proximal network alone on one image (where the equivariant network's
  extra work is not diluted by the ray transforms).

A regular C4 group convolution with the parameters of a plain convolution does
about four times its multiplications (each of its weights acts in four
orientations), so the single network is where the ratio is largest.

Run: ``python benchmarks/bench_equivariant_cost.py [--sizes 64,128] [--repeats 20] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import odl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import alternating_medians  # noqa: E402

from odl_learned._io import atomic_write_json  # noqa: E402
from odl_learned.evaluation.equivariance_study import build_network, quarter_turn_ray_transform  # noqa: E402
from odl_learned.nets import count_parameters  # noqa: E402

METHODS = ("equivariant", "ordinary")


def _networks(size: int, angles: int) -> tuple[dict[str, torch.nn.Module], tuple[int, ...]]:
    space = odl.uniform_discr([-size / 2, -size / 2], [size / 2, size / 2], (size, size), dtype="float32")
    op = quarter_turn_ray_transform(space, angles)
    torch.manual_seed(0)
    networks = {method: build_network(method, op).eval() for method in METHODS}
    return networks, op.range.shape


def measure(size: int, angles: int, repeats: int) -> dict:
    """Median seconds per call and the ratios, equivariant over ordinary, at ``size x size``."""
    networks, data_shape = _networks(size, angles)
    one = torch.rand(1, 1, *data_shape)
    batch = torch.rand(8, 1, *data_shape)
    image = torch.rand(1, 1, size, size)
    cases = {
        "reconstruction, 1 image": lambda net: net(one),
        "reconstruction, batch of 8": lambda net: net(batch),
        "one proximal network, 1 image": lambda net: net.prox[0](image),
    }
    report = {"params": {m: count_parameters(n) for m, n in networks.items()}, "cases": {}}
    with torch.no_grad():
        for case, call in cases.items():
            medians = alternating_medians({m: (lambda n=n: call(n)) for m, n in networks.items()}, repeats)
            report["cases"][case] = {**{m: round(s, 6) for m, s in medians.items()},
                                     "ratio": round(medians["equivariant"] / medians["ordinary"], 3)}
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128", help="image sizes, comma-separated (default 64,128)")
    parser.add_argument("--angles", type=int, default=60, help="angles over the full turn (default 60)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each network per case")
    parser.add_argument("--json", default=None, help="write the report here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    report = {"setting": vars(args) | {"threads": torch.get_num_threads()}, "sizes": {}}
    for size in sizes:
        result = report["sizes"][size] = measure(size, args.angles, args.repeats)
        print(f"{size}x{size}: parameters {result['params']}")
        for case, entry in result["cases"].items():
            print(f"  {case:32s} equivariant {entry['equivariant'] * 1e3:8.2f} ms, ordinary "
                  f"{entry['ordinary'] * 1e3:8.2f} ms, ratio {entry['ratio']:.2f}")
    if args.json:
        atomic_write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
