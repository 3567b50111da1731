"""``odl-learned benchmark {ct,mri,equivariance}``: evaluate methods on a reference problem.

``ct`` and ``mri`` print a table (PSNR, SSIM, seconds per image), and
optionally write the JSON report ``{"task", "setting", "methods": {name:
{"psnr", "ssim", "seconds_per_image", ...}}}`` and a figure of reconstructions
beside the ground truth.

``equivariance`` runs the "equivariance by design" study
(:mod:`odl_learned.evaluation.equivariance_study`): equivariant, ordinary and
rotation-augmented learned proximal gradient networks trained on ``N`` CT
images for each ``N`` in ``--sizes``, tested on upright and rotated images. It
prints a table, and writes the JSON report ``{"task": "equivariance",
"setting", "results": {method: {N: {"upright", "rotated", "rotated90",
"equivariance_error", "seconds_per_image", "params", ...}}}, "baselines"}`` and
a figure of PSNR against ``N``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from odl_learned._io import atomic_write_json
from odl_learned.evaluation.equivariance_study import STUDY_METHODS
from odl_learned.evaluation.methods import methods_for, parse_methods
from odl_learned.evaluation.problems import CT_PHANTOMS, MRI_PHANTOMS, SPLIT_SEEDS, ct_problem, mri_problem

__all__ = ("add_parser", "build_problem", "run_benchmark", "run_equivariance", "NUM_IMAGES")

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
        help="evaluate reconstruction methods on the CT or MRI reference problem, or run the equivariance study",
        description="Evaluate reconstruction methods on a seeded reference problem (see DESIGN: reference problems). "
        "CT: dival ellipses, 128x128, 30 angles, 5%% noise, operator normalised. "
        "MRI: held-out brain slices, 4x random Cartesian undersampling. "
        "equivariance: the 'equivariance by design' study (Celledoni et al. 2021): C4-equivariant, ordinary and "
        "rotation-augmented learned proximal gradient for CT over a full turn, trained on N images for each N "
        "in --sizes, tested on upright and rotated images (hours on a CPU; --quick: minutes).",
    )
    parser.add_argument("task", choices=("ct", "mri", "equivariance"), help="the reference problem, or the study")
    parser.add_argument("--quick", action="store_true", help="a small fixed subset of the test images "
                        "(equivariance: 64x64, N in 10,50, 200 steps, 8 test images)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE")
    parser.add_argument("--figure", metavar="FILE", help="write reconstructions of the first test image to FILE "
                        "(equivariance: PSNR against N)")
    parser.add_argument("--phantom", help=f"test images: CT {'|'.join(CT_PHANTOMS)} (default ellipses), "
                        f"MRI {'|'.join(MRI_PHANTOMS)} (default brain)")
    parser.add_argument("--num-images", type=int, help="number of test images (default: by phantom and --quick; "
                        "equivariance 50, --quick 8)")
    parser.add_argument("--noise", type=float, help="noise level relative to mean |y| (default CT 0.05, MRI 0.02)")
    parser.add_argument("--angles", type=int, help="CT: number of angles (default 30); equivariance: angles over the "
                        "full turn, divisible by 4 (default 60: the 30 directions of the CT problem, both sides)")
    parser.add_argument("--geometry", default="parallel", help="CT: parallel|fan (default parallel)")
    parser.add_argument("--acceleration", type=float, default=4.0, help="MRI: undersampling factor (default 4)")
    parser.add_argument("--pattern", default="random", help="MRI: random|equispaced|radial (default random)")
    parser.add_argument("--coils", type=int, default=1, help="MRI: number of coils (default 1)")
    parser.add_argument("--size", type=int, help="image size (default 128; equivariance --quick 64)")
    parser.add_argument("--methods", help="comma-separated methods (default all): CT "
                        f"{','.join(methods_for('ct'))}; MRI {','.join(methods_for('mri'))}; "
                        f"equivariance {','.join(STUDY_METHODS)}")
    parser.add_argument("--tune", action="store_true",
                        help="choose each regularisation parameter by grid search on validation images first")
    parser.add_argument("--sizes", metavar="N,N,...", help="equivariance: training-set sizes "
                        "(default 10,50,200,1000; --quick 10,50)")
    parser.add_argument("--steps", type=int, help="equivariance: optimiser steps per training run, the same for "
                        "every method and N (default 2000; --quick 200)")
    parser.add_argument("--device", help="equivariance: torch device for training and testing, e.g. cpu or cuda "
                        "(default cuda if available)")
    parser.add_argument("--weights", action="append", metavar="METHOD=PATH", default=None,
                        help="CT/MRI: evaluate a learned method with these weights (.pt from odl-learned train, "
                        "its .json beside it) instead of the shipped ones; repeatable")
    parser.add_argument("--retrain", action="store_true",
                        help="CT/MRI: first train every selected learned method (odl-learned train, into "
                        "--train-dir), then evaluate those weights instead of the shipped ones")
    parser.add_argument("--train-dir", default="runs/retrain", help="--retrain: run folders (default runs/retrain)")
    parser.add_argument("--train-args", default="", metavar="'OPTIONS'",
                        help="--retrain: options for odl-learned train, e.g. '--max-minutes 30 --num-train 8000' "
                        "(a single option without a value needs the = form: --train-args=--quiet)")
    parser.add_argument("--seed", type=int, help="equivariance: seed of the initial weights, the sample order and "
                        "the augmentation (default 0), to see how much a result depends on it")
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
    if args.task not in ("ct", "mri"):
        raise ValueError(f"build_problem builds the ct and mri problems, not {args.task!r}")
    phantom = args.phantom or ("ellipses" if args.task == "ct" else "brain")
    if phantom not in NUM_IMAGES or (args.task == "ct") != (phantom in CT_PHANTOMS):
        choices = CT_PHANTOMS if args.task == "ct" else MRI_PHANTOMS
        raise ValueError(f"unknown phantom {phantom!r} for task {args.task!r}; expected one of {', '.join(choices)}")
    num_images = args.num_images or NUM_IMAGES[phantom][0 if args.quick else 1]
    seed = SPLIT_SEEDS[split]
    if args.task == "ct":
        noise = 0.05 if args.noise is None else args.noise
        angles = 30 if getattr(args, "angles", None) is None else args.angles
        return ct_problem(phantom=phantom, num_images=num_images, size=_size(args), num_angles=angles,
                          noise_level=noise, seed=seed, geometry=getattr(args, "geometry", "parallel"))
    noise = 0.02 if args.noise is None else args.noise
    split_phantom = "brain" if phantom == "brain" else phantom
    return mri_problem(phantom=split_phantom, num_images=num_images, size=_size(args), acceleration=args.acceleration,
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
    from odl_learned.reconstructors.learned_methods import load_pretrained

    if args.task == "equivariance":
        return run_equivariance(args)
    given = [f"--{name}" for name in ("sizes", "steps", "device", "seed") if getattr(args, name, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to the equivariance task only")
    methods = parse_methods(args.methods, args.task)
    weights = _parse_weights(getattr(args, "weights", None), args.task)
    if args.methods is None:  # methods given weights are evaluated even if none ship
        methods += [name for name in weights if name not in methods]
    elif any(name not in methods for name in weights):
        raise ValueError(f"--weights names {', '.join(n for n in weights if n not in methods)}, "
                         f"which is not among --methods {args.methods}")
    if getattr(args, "retrain", False):
        weights.update(_retrain(args, [name for name in methods if name not in weights]))
    problem = build_problem(args)
    params, tuning = {}, {}
    if getattr(args, "tune", False):
        validation = build_problem(args, split="validation")
        for name in methods:
            best, table = tune(problem, validation, name)
            if best is not None:
                params[name], tuning[name] = best, table
    reconstructors = {name: load_pretrained(name, problem.op, problem.extras, path=path)
                      for name, path in weights.items()}
    results = evaluate(problem, methods, params=params, progress=sys.stderr.isatty(), reconstructors=reconstructors)
    report = {
        "task": problem.task,
        "setting": problem.setting,
        "methods": {name: result.summary() for name, result in results.items()},
    }
    if weights:
        report["weights"] = {name: str(path) for name, path in weights.items()}
    if tuning:
        report["tuning"] = {"split": "validation", "metric": "psnr", "scores": tuning}
    print(report_table(report))
    if args.json:
        atomic_write_json(args.json, report)
    if getattr(args, "figure", None):
        from odl_learned.evaluation.figures import save_reconstruction_figure

        truth = problem.pairs[0][1].asarray()
        save_reconstruction_figure(
            args.figure, truth, {n: r.images[0] for n, r in results.items()},
            psnr={n: float(r.psnr[0]) for n, r in results.items()}, title=f"{problem.task.upper()} test image 1",
        )
    return report


def _parse_weights(entries: list[str] | None, task: str) -> dict[str, str]:
    """``['lpd=runs/ct_lpd/ct_lpd.pt']`` -> ``{'lpd': 'runs/ct_lpd/ct_lpd.pt'}``, checked."""
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS

    learned = [name for name, method in LEARNED_METHODS.items() if method.task == task]
    weights: dict[str, str] = {}
    for entry in entries or ():
        name, sep, path = entry.partition("=")
        name = name.strip().lower()
        if not sep or not path:
            raise ValueError(f"--weights expects METHOD=PATH, got {entry!r}")
        if name not in learned:
            raise ValueError(f"--weights: {name!r} is not a learned method for task {task!r}; "
                             f"expected one of {', '.join(learned)}")
        if not os.path.isfile(path):
            raise ValueError(f"--weights: no such weights file: {path!r}")
        weights[name] = path
    return weights


def _retrain(args: argparse.Namespace, methods: list[str]) -> dict[str, str]:
    """Train each learned method among ``methods`` with ``odl-learned train``; return its weights' paths."""
    from odl_learned.cli.main import build_parser
    from odl_learned.cli.train import run_train
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS

    learned = [name for name in methods if name in LEARNED_METHODS]
    if not learned:
        raise ValueError("--retrain: none of the selected methods is learned")
    weights = {}
    for name in learned:
        out = os.path.join(args.train_dir, LEARNED_METHODS[name].key)
        argv = ["train", name, "--task", args.task, "--size", str(_size(args)), "--out", out,
                *shlex.split(args.train_args)]
        weights[name] = run_train(build_parser().parse_args(argv))["weights"]
    return weights


def _size(args: argparse.Namespace) -> int:
    return 128 if getattr(args, "size", None) is None else args.size


def _parse_sizes(text: str) -> tuple[int, ...]:
    """``'10,50,200'`` -> ``(10, 50, 200)``, with a clear error for anything else."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--sizes must be comma-separated positive integers, e.g. 10,50,200, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--sizes must be comma-separated positive integers, e.g. 10,50,200, got {text!r}")
    return sizes


def _check_device(name: str) -> str:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device must be a torch device such as cpu or cuda, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu")
    return str(device)


def run_equivariance(args: argparse.Namespace) -> dict:
    """Run the equivariance study described by ``args``; print the table, write JSON and figure.

    The options map onto :class:`~odl_learned.evaluation.equivariance_study.StudySetting`
    (``--quick`` starts from :meth:`~odl_learned.evaluation.equivariance_study.StudySetting.quick`):
    ``--size``, ``--angles`` (``num_angles``), ``--noise``, ``--sizes``,
    ``--steps``, ``--num-images`` (test images), ``--methods``, ``--device``, ``--seed``.

    Examples
    --------
    >>> from odl_learned.cli.main import main
    >>> main(["benchmark", "equivariance", "--quick", "--size", "16", "--sizes", "2", "--steps", "1",
    ...       "--num-images", "1", "--methods", "ordinary", "--device", "cpu"])  # doctest: +ELLIPSIS
    | method | N | params | upright PSNR / SSIM | ...
    ...
    0
    >>> main(["benchmark", "equivariance", "--angles", "30"])
    2
    """
    from odl_learned.evaluation.equivariance_study import (
        STUDY_METHODS,
        StudySetting,
        run_study,
        save_study_figure,
        study_table,
    )

    if args.phantom not in (None, "ellipses"):
        raise ValueError(f"the equivariance study uses the ellipses phantom only, got --phantom {args.phantom!r}")
    if getattr(args, "tune", False):
        raise ValueError("--tune does not apply to the equivariance task (its methods are trained, not tuned)")
    if getattr(args, "weights", None) or getattr(args, "retrain", False):
        raise ValueError("--weights and --retrain are for the ct and mri tasks; the equivariance study trains its own")
    if (args.acceleration, args.pattern, args.coils) != (4.0, "random", 1):
        raise ValueError("--acceleration, --pattern and --coils are MRI options; the equivariance study is CT")
    if getattr(args, "geometry", "parallel") != "parallel":
        raise ValueError("the equivariance study uses a parallel beam over the full turn; --geometry must be parallel")
    changes: dict = {}
    if args.size is not None:
        changes["size"] = args.size
    if args.angles is not None:
        changes["num_angles"] = args.angles
    if args.noise is not None:
        changes["noise_level"] = args.noise
    if args.sizes is not None:
        changes["sizes"] = _parse_sizes(args.sizes)
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.num_images is not None:
        changes["num_test"] = args.num_images
        changes["num_equivariance"] = max(1, min(3, args.num_images))
    if args.methods is not None:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        unknown = [m for m in methods if m not in STUDY_METHODS]
        if unknown or not methods:
            raise ValueError(f"unknown method {unknown[0] if unknown else args.methods!r} for task 'equivariance'; "
                             f"expected some of {', '.join(STUDY_METHODS)}")
        changes["methods"] = methods
    if args.device is not None:
        changes["device"] = _check_device(args.device)
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    setting = StudySetting.quick(**changes) if args.quick else StudySetting(**changes)
    report = run_study(setting, progress=sys.stderr.isatty())
    print(study_table(report))
    if args.json:
        atomic_write_json(args.json, report)
    if getattr(args, "figure", None):
        save_study_figure(args.figure, report)
    return report
