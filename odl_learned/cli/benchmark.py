"""``odl-learned benchmark {ct,mri}``: evaluate methods on a reference problem.

Prints a table (PSNR, SSIM, seconds per image), and optionally writes the JSON
report ``{"task", "setting", "methods": {name: {"psnr", "ssim",
"seconds_per_image", ...}}}`` and a figure of reconstructions beside the
ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from odl_learned.evaluation.methods import methods_for, parse_methods
from odl_learned.evaluation.problems import CT_PHANTOMS, MRI_PHANTOMS, SPLIT_SEEDS, ct_problem, mri_problem

__all__ = ("add_parser", "build_problem", "run_benchmark", "NUM_IMAGES")

#: Test images per phantom: (with --quick, without).
NUM_IMAGES = {"ellipses": (3, 50), "shepp-logan": (1, 1), "real": (2, 2), "brain": (3, 8)}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``benchmark`` subcommand to ``subparsers``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> sub = parser.add_subparsers()
    >>> _ = add_parser(sub)
    >>> parser.parse_args(["benchmark", "mri", "--acceleration", "8"]).acceleration
    8.0
    """
    parser = subparsers.add_parser(
        "benchmark",
        help="evaluate reconstruction methods on the CT or MRI reference problem",
        description="Evaluate reconstruction methods on a seeded reference problem (see DESIGN: reference problems). "
        "CT: dival ellipses, 128x128, 30 angles, 5%% noise, operator normalised. "
        "MRI: held-out brain slices, 4x random Cartesian undersampling.",
    )
    parser.add_argument("task", choices=("ct", "mri"), help="the reference problem")
    parser.add_argument("--quick", action="store_true", help="a small fixed subset of the test images")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE")
    parser.add_argument("--figure", metavar="FILE", help="write reconstructions of the first test image to FILE")
    parser.add_argument("--phantom", help=f"test images: CT {'|'.join(CT_PHANTOMS)} (default ellipses), "
                        f"MRI {'|'.join(MRI_PHANTOMS)} (default brain)")
    parser.add_argument("--num-images", type=int, help="number of test images (default: by phantom and --quick)")
    parser.add_argument("--noise", type=float, help="noise level relative to mean |y| (default CT 0.05, MRI 0.02)")
    parser.add_argument("--angles", type=int, default=30, help="CT: number of angles (default 30)")
    parser.add_argument("--geometry", default="parallel", help="CT: parallel|fan (default parallel)")
    parser.add_argument("--acceleration", type=float, default=4.0, help="MRI: undersampling factor (default 4)")
    parser.add_argument("--pattern", default="random", help="MRI: random|equispaced|radial (default random)")
    parser.add_argument("--coils", type=int, default=1, help="MRI: number of coils (default 1)")
    parser.add_argument("--size", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--methods", help="comma-separated methods (default all): CT "
                        f"{','.join(methods_for('ct'))}; MRI {','.join(methods_for('mri'))}")
    parser.add_argument("--tune", action="store_true",
                        help="choose each regularisation parameter by grid search on validation images first")
    parser.set_defaults(func=run_benchmark)
    return parser


def build_problem(args: argparse.Namespace, *, split: str = "test"):
    """Return the :class:`~odl_learned.evaluation.problems.InverseProblem` the arguments describe.

    Examples
    --------
    >>> args = argparse.Namespace(task="ct", phantom="shepp-logan", quick=True, num_images=None, noise=None,
    ...                           angles=30, size=32, acceleration=4, pattern="random", coils=1)
    >>> build_problem(args).setting["phantom"]
    'shepp-logan'
    """
    phantom = args.phantom or ("ellipses" if args.task == "ct" else "brain")
    if phantom not in NUM_IMAGES or (args.task == "ct") != (phantom in CT_PHANTOMS):
        choices = CT_PHANTOMS if args.task == "ct" else MRI_PHANTOMS
        raise ValueError(f"unknown phantom {phantom!r} for task {args.task!r}; expected one of {', '.join(choices)}")
    num_images = args.num_images or NUM_IMAGES[phantom][0 if args.quick else 1]
    seed = SPLIT_SEEDS[split]
    if args.task == "ct":
        noise = 0.05 if args.noise is None else args.noise
        return ct_problem(phantom=phantom, num_images=num_images, size=args.size, num_angles=args.angles,
                          noise_level=noise, seed=seed, geometry=getattr(args, "geometry", "parallel"))
    noise = 0.02 if args.noise is None else args.noise
    split_phantom = "brain" if phantom == "brain" else phantom
    return mri_problem(phantom=split_phantom, num_images=num_images, size=args.size, acceleration=args.acceleration,
                       pattern=args.pattern, num_coils=args.coils, noise_level=noise, seed=seed,
                       split="validation" if split == "validation" else "test")


def run_benchmark(args: argparse.Namespace) -> dict:
    """Run the benchmark described by ``args``; print the table, write JSON and figure.

    Examples
    --------
    >>> from odl_learned.cli.main import main
    >>> main(["benchmark", "ct", "--phantom", "shepp-logan", "--size", "32", "--methods", "fbp"])  # doctest: +ELLIPSIS
    | method | PSNR (dB) | SSIM | s / image |
    ...
    0
    """
    from odl_learned.evaluation.runner import evaluate, report_table, tune

    methods = parse_methods(args.methods, args.task)
    problem = build_problem(args)
    params, tuning = {}, {}
    if getattr(args, "tune", False):
        validation = build_problem(args, split="validation")
        for name in methods:
            best, table = tune(problem, validation, name)
            if best is not None:
                params[name], tuning[name] = best, table
    results = evaluate(problem, methods, params=params, progress=sys.stderr.isatty())
    report = {
        "task": problem.task,
        "setting": problem.setting,
        "methods": {name: result.summary() for name, result in results.items()},
    }
    if tuning:
        report["tuning"] = {"split": "validation", "metric": "psnr", "scores": tuning}
    print(report_table(report))
    if args.json:
        _write_json(args.json, report)
    if getattr(args, "figure", None):
        from odl_learned.evaluation.figures import save_reconstruction_figure

        truth = problem.pairs[0][1].asarray()
        save_reconstruction_figure(
            args.figure, truth, {n: r.images[0] for n, r in results.items()},
            psnr={n: float(r.psnr[0]) for n, r in results.items()}, title=f"{problem.task.upper()} test image 1",
        )
    return report


def _write_json(path: str, report: dict) -> None:
    # written beside and renamed, so a report file is never half-written
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
