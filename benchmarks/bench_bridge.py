"""Speed of the bridge, measured side by side in one process.

1. Forward + backward of a batch of CT images through our ``OperatorModule``
   (default ray transform: ASTRA's projection matrix applied with torch) vs
   ODL's ``odl.contrib.torch.OperatorModule`` around the ``astra_cpu`` ray
   transform (one ASTRA call per image).
2. A torch-native operator through ``OperatorModule`` vs the bare torch
   function it wraps (the bridge's overhead).

Run: ``python benchmarks/bench_bridge.py [--batch 32] [--size 128] [--angles 30] [--repeats 7]``.
The two of each pair are timed alternately after one warm-up call each; prints
medians and the ratios; ``--json FILE`` writes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import odl
import torch
from odl.contrib.torch import OperatorModule as OdlContribOperatorModule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import alternating_medians  # noqa: E402

from odl_learned._io import atomic_write_json  # noqa: E402
from odl_learned.bridge import OperatorModule, TorchNativeOperator  # noqa: E402
from odl_learned.operators import ct  # noqa: E402


class _Fourier(TorchNativeOperator):
    """A torch-native linear operator: the orthonormal 2D FFT's real part."""

    def torch_call(self, x):
        return torch.fft.fft2(x, norm="ortho").real


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
    ct_times = alternating_medians({"ours": _forward_backward(ours, x), "theirs": _forward_backward(theirs, x)},
                                   args.repeats)
    t_ours, t_theirs = ct_times["ours"], ct_times["theirs"]

    torch_space = odl.uniform_discr([0, 0], [1, 1], (n, n), impl="pytorch", dtype="float32")
    native = _Fourier(torch_space, torch_space, linear=True)
    wrapped = OperatorModule(native)
    native_times = alternating_medians({"wrapped": _forward_backward(wrapped, x),
                                        "bare": _forward_backward(native.torch_call, x)}, args.repeats)
    t_wrapped, t_bare = native_times["wrapped"], native_times["bare"]

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
        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
