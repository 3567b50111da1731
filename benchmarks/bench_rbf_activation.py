"""Cost of the variational network's RBF activation: compiled kernels against the eager loop.

The activation :math:`\\phi_c(z) = \\sum_j w_{cj} e^{-(z - \\mu_j)^2 / (2\\sigma^2)}`
(31 Gaussians, ``odl_learned.nets.varnet``) runs either as a loop over the
centres (eager) or as two kernels compiled by ``torch.compile`` (fused; on a CPU
the default for maps of at least 2^21 entries). Timed alternately in one process,
after a warm-up call that includes the one-off compilation:

- the activation alone, forward and backward, on a ``(batch, 24, size, size)`` map;
- one training step of the variational network (10 stages, 24 filters 11x11, Adam)
  on ``batch`` single-coil images, data from a 4x Cartesian mask.

Run: ``python benchmarks/bench_rbf_activation.py [--size 128] [--batch 8] [--repeats 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import alternating_medians  # noqa: E402

from odl_learned._io import atomic_write_json  # noqa: E402
from odl_learned.nets import varnet  # noqa: E402

MODES = ("eager", "fused")


def _with_mode(mode: str, call):
    """``call`` run with the activation forced to ``mode``."""
    def run():
        before = varnet._RBFSum.fused
        varnet._RBFSum.fused = mode == "fused"
        try:
            call()
        finally:
            varnet._RBFSum.fused = before
    return run


def _activation_case(size: int, batch: int, filters: int):
    phi = varnet.RBFActivation(filters)
    z = torch.randn(batch, filters, size, size, requires_grad=True)

    def call():
        phi(z).square().sum().backward()
    return call


def _training_step_case(size: int, batch: int, filters: int, stages: int):
    mask = (torch.rand(size, size) < 0.25).to(torch.complex64)
    forward_op = lambda x: mask * torch.fft.fft2(x, norm="ortho")  # noqa: E731
    adjoint_op = lambda y: torch.fft.ifft2(mask * y, norm="ortho")  # noqa: E731
    network = varnet.VariationalNetwork(forward_op, adjoint_op, num_stages=stages, num_filters=filters)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    truth = torch.rand(batch, 1, size, size)
    data = forward_op(truth.to(torch.complex64))

    def call():
        optimizer.zero_grad()
        (network.magnitude(data) - truth).square().mean().backward()
        optimizer.step()
    return call


def measure(size: int, batch: int, repeats: int, filters: int = 24, stages: int = 10) -> dict:
    """Median seconds per call of each mode and the ratios, eager over fused."""
    torch.manual_seed(0)
    cases = {
        "activation, forward and backward": _activation_case(size, batch, filters),
        f"training step, {stages} stages": _training_step_case(size, batch, filters, stages),
    }
    report = {}
    for case, call in cases.items():
        medians = alternating_medians({mode: _with_mode(mode, call) for mode in MODES}, repeats)
        report[case] = {**{m: round(s, 4) for m, s in medians.items()},
                        "speed_up": round(medians["eager"] / medians["fused"], 2)}
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--filters", type=int, default=24, help="filters per stage (default 24)")
    parser.add_argument("--stages", type=int, default=10, help="stages of the network (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each mode per case")
    parser.add_argument("--json", default=None, help="write the report here")
    args = parser.parse_args(argv)
    report = {"setting": vars(args) | {"threads": torch.get_num_threads()},
              "cases": measure(args.size, args.batch, args.repeats, args.filters, args.stages)}
    for case, entry in report["cases"].items():
        print(f"{case:36s} eager {entry['eager']:8.3f} s, fused {entry['fused']:8.3f} s, "
              f"speed-up {entry['speed_up']:.2f}x")
    if args.json:
        atomic_write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
