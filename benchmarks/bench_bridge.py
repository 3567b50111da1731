"""Speed of the bridge, measured side by side in one process.

1. Forward + backward of a batch of CT images through our ``OperatorModule``
   (default ray transform: ASTRA's projection matrix applied with torch) vs
   ODL's ``odl.contrib.torch.OperatorModule`` around the ``astra_cpu`` ray
   transform (one ASTRA call per image).
2. A torch-native operator through ``OperatorModule`` vs the bare torch
   function it wraps (the bridge's overhead).

Run: ``python benchmarks/bench_bridge.py [--batch 32] [--size 128] [--angles 30] [--repeats 7]``.
Prints medians and the ratios; ``--json FILE`` writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import odl
import torch
from odl.contrib.torch import OperatorModule as OdlContribOperatorModule

from odl_learned.bridge import OperatorModule, TorchNativeOperator
from odl_learned.operators import ct


class _Fourier(TorchNativeOperator):
    """A torch-native linear operator: the orthonormal 2D FFT's real part."""

    def torch_call(self, x):
        return torch.fft.fft2(x, norm="ortho").real


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: builds caches, matrices on first use
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _forward_backward(layer, x):
    def run():
        x.grad = None
        layer(x).pow(2).sum().backward()

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--angles", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    n = args.size
    space = odl.uniform_discr([-n / 2, -n / 2], [n / 2, n / 2], (n, n), dtype="float32")
    x = torch.rand(args.batch, 1, n, n, requires_grad=True)

    ours = OperatorModule(ct.ray_transform(space, args.angles))
    theirs = OdlContribOperatorModule(ct.ray_transform(space, args.angles, impl="astra_cpu"))
    t_ours = _median_seconds(_forward_backward(ours, x), args.repeats)
    t_theirs = _median_seconds(_forward_backward(theirs, x), args.repeats)

    torch_space = odl.uniform_discr([0, 0], [1, 1], (n, n), impl="pytorch", dtype="float32")
    native = _Fourier(torch_space, torch_space, linear=True)
    wrapped = OperatorModule(native)
    t_wrapped = _median_seconds(_forward_backward(wrapped, x), args.repeats)
    t_bare = _median_seconds(_forward_backward(native.torch_call, x), args.repeats)

    result = {
        "setting": {"batch": args.batch, "size": n, "angles": args.angles, "repeats": args.repeats,
                    "threads": torch.get_num_threads()},
        "ct_forward_backward_seconds": {"odl_learned": t_ours, "odl_contrib_astra_cpu": t_theirs},
        "ct_speedup_vs_odl_contrib": t_theirs / t_ours,
        "native_forward_backward_seconds": {"through_bridge": t_wrapped, "bare_torch": t_bare},
        "native_overhead_ratio": t_wrapped / t_bare,
    }
    print(f"CT {n}x{n}, {args.angles} angles, batch {args.batch}, forward+backward (median of {args.repeats}):")
    print(f"  odl_learned OperatorModule        {t_ours * 1e3:9.2f} ms")
    print(f"  odl.contrib.torch + astra_cpu     {t_theirs * 1e3:9.2f} ms")
    print(f"  speed-up                          {result['ct_speedup_vs_odl_contrib']:9.1f}x  (target >= 10x)")
    print("Torch-native operator, forward+backward:")
    print(f"  through OperatorModule            {t_wrapped * 1e3:9.2f} ms")
    print(f"  bare torch function               {t_bare * 1e3:9.2f} ms")
    print(f"  overhead ratio                    {result['native_overhead_ratio']:9.3f}   (target <= 1.05)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
