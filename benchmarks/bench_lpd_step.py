"""Training-step time of learned primal-dual: our ray transform vs deepinv's ``Tomography``, side by side.

The network is the same (``odl_learned.nets.LearnedPrimalDual``, Adler & Oktem's
architecture, 253k parameters); only the operator differs:

- ours: the default ``odl_learned.operators.ct.ray_transform`` (ASTRA's
  projection matrix applied with torch sparse products on the whole batch)
  and its adjoint, through the bridge;
- deepinv 0.5: ``deepinv.physics.Tomography`` (``A`` and ``A_adjoint``, a
  torch Radon transform by rotation and interpolation), with
  ``normalize=True`` as deepinv sets it by default.

One step is forward, MSE loss, backward and an Adam update on a batch of
random images, 128x128, 30 angles. The two are timed alternately in one
process (median of ``--repeats`` steps each), and the operator's share of the
step is the time of the operator calls alone (10 forward and 10 adjoint
calls, with their backward) divided by the step time.

deepinv is not a dependency. To run this side by side here:
``pip install --no-deps --target /tmp/dinv deepinv natsort h5py`` and run with
``PYTHONPATH=/tmp/dinv:benchmarks/torchvision_standin``. The stand-in is needed
because PyPI's torchvision does not import beside the CPU torch wheel and
deepinv imports torchvision at start-up (``Tomography`` does not use it);
installing deepinv normally would replace the CPU torch by a CUDA build.

Run: ``python benchmarks/bench_lpd_step.py [--batch 8] [--repeats 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import odl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import seconds  # noqa: E402

from odl_learned._io import atomic_write_json  # noqa: E402
from odl_learned.bridge import OperatorModule  # noqa: E402
from odl_learned.nets import LearnedPrimalDual, count_parameters  # noqa: E402
from odl_learned.operators import ct  # noqa: E402


def _ours(size: int, angles: int):
    space = odl.uniform_discr([-size / 2, -size / 2], [size / 2, size / 2], (size, size), dtype="float32")
    ray_trafo = ct.ray_transform(space, angles)
    op = ray_trafo / float(ray_trafo.norm(estimate=True, xstart=space.one()))
    return OperatorModule(op), OperatorModule(op.adjoint)


def _deepinv(size: int, angles: int):
    from deepinv.physics import Tomography

    physics = Tomography(angles=angles, img_width=size, circle=False, device="cpu", normalize=True)
    return physics.A, physics.A_adjoint


def _step_fn(forward, adjoint, batch: int, size: int):
    torch.manual_seed(0)
    net = LearnedPrimalDual(forward, adjoint, image_shape=(size, size))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, size, size)
    with torch.no_grad():
        y = forward(x)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(y), x)
        loss.backward()
        optimizer.step()

    def operators_only():
        # what the operators cost inside one step: 10 forward and 10 adjoint calls with backward
        h = x.clone().requires_grad_(True)
        g = y.clone().requires_grad_(True)
        total = sum(forward(h).sum() + adjoint(g).sum() for _ in range(net.num_iter))
        total.backward()

    return step, operators_only, count_parameters(net)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--angles", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    candidates = {"odl_learned": _ours(args.size, args.angles), "deepinv": _deepinv(args.size, args.angles)}
    fns = {name: _step_fn(*ops, args.batch, args.size) for name, ops in candidates.items()}
    for step, operators_only, _ in fns.values():  # warm-up
        step()
        operators_only()
    results = {name: {"step": [], "operators": []} for name in fns}
    for _ in range(args.repeats):  # alternate, so both see the same machine load
        for name, (step, operators_only, _) in fns.items():
            results[name]["step"].append(seconds(step))
            results[name]["operators"].append(seconds(operators_only))
    report = {"setting": vars(args) | {"threads": torch.get_num_threads()}}
    for name, (_, _, params) in fns.items():
        step = statistics.median(results[name]["step"])
        ops = statistics.median(results[name]["operators"])
        report[name] = {"seconds_per_step": round(step, 4), "operator_seconds": round(ops, 4),
                        "operator_share": round(ops / step, 3), "params": params}
        print(f"{name:12s} {step:.3f} s/step, operators {ops:.3f} s ({100 * ops / step:.0f}% of the step), "
              f"{params} parameters")
    ratio = report["deepinv"]["seconds_per_step"] / report["odl_learned"]["seconds_per_step"]
    report["speedup"] = round(ratio, 2)
    print(f"odl_learned's LPD training step is {ratio:.2f}x faster than the same network on deepinv's Tomography")
    if args.json:
        atomic_write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
