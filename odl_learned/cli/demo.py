"""``odl-learned demo``: reconstruct held-out CT and MRI test images, print a table, save a figure."""

from __future__ import annotations

import argparse
import os
import time

__all__ = ("add_parser", "run_demo")

CT_METHODS = ("fbp", "tv", "fbp-unet", "fbp-dncnn", "lgd", "lpd")
MRI_METHODS = ("zero-filled", "tv", "varnet", "varnet-tv")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``subparsers``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_parser(parser.add_subparsers())
    >>> parser.parse_args(["demo", "--out", "x"]).out
    'x'
    """
    parser = subparsers.add_parser(
        "demo",
        help="reconstruct CT and MRI test images with classical and learned methods; print a table, save figures",
        description="Reconstruct held-out CT (random ellipses, 30 angles, 5%% noise) and MRI (brain slices, 4x "
        "random Cartesian) test images with classical methods (FBP, TV, zero-filled) and learned ones with their "
        "shipped weights (FBP+U-Net, FBP+DnCNN, learned gradient descent, learned primal-dual, variational networks); "
        "print PSNR, SSIM and seconds per image, and write demo_ct.png, demo_mri.png and their JSON reports to --out. "
        "Takes about a minute on 2 CPU cores, with no download.",
    )
    parser.add_argument("--out", default="odl_learned_demo", help="output folder (default ./odl_learned_demo)")
    parser.add_argument("--num-images", type=int, default=2, help="test images per task (default 2)")
    parser.set_defaults(func=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> dict:
    """Run the demo described by ``args``; return the reports by task.

    Examples
    --------
    >>> import tempfile
    >>> from odl_learned.cli.main import main
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     main(["demo", "--out", d])
    0
    """
    from odl_learned.cli.benchmark import run_benchmark
    from odl_learned.cli.main import build_parser

    if args.num_images < 1:
        raise ValueError(f"--num-images must be a positive integer, got {args.num_images}")
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    reports = {}
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS, has_weights

    for task, methods in (("ct", CT_METHODS), ("mri", MRI_METHODS)):
        # learned methods appear where their weights ship with this installation
        methods = [m for m in methods if m not in LEARNED_METHODS or has_weights(m)]
        print(f"\n{task.upper()}: held-out test images, methods {', '.join(methods)}")
        # the benchmark's own parser supplies every other option's default
        bench_args = build_parser().parse_args([
            "benchmark", task, "--quick", "--num-images", str(args.num_images), "--methods", ",".join(methods),
            "--json", os.path.join(args.out, f"demo_{task}.json"),
            "--figure", os.path.join(args.out, f"demo_{task}.png"),
        ])
        reports[task] = run_benchmark(bench_args)
    print(f"\nfigures and reports in {os.path.abspath(args.out)} ({time.perf_counter() - start:.0f} s)")
    return reports
