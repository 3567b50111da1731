"""``odl-learned reconstruct``: reconstruct data from a .npy file with a named method."""

from __future__ import annotations

import argparse
import os

import numpy as np

__all__ = ("add_parser", "run_reconstruct")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``reconstruct`` subcommand to ``subparsers``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_parser(parser.add_subparsers())
    >>> parser.parse_args(["reconstruct", "ct", "y.npy", "x.npy"]).method
    'tv'
    """
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct data from a .npy file with one method of the reference problem",
        description="Read data (CT: a sinogram (30, 183) or a batch (B, 30, 183) for the normalised ray transform of "
        "the reference problem; MRI: complex k-space (128, 128) or (B, 128, 128)) and write the reconstruction "
        "as .npy. CT also takes a DICOM slice (.dcm): it is resampled to --size, its data are simulated as in the "
        "reference problem (projection from a 400x400 upscaling, --noise Gaussian noise), reconstructed, and the "
        "PSNR against the slice is printed. Use 'odl-learned benchmark TASK --help' for the problems' settings.",
    )
    parser.add_argument("task", choices=("ct", "mri"), help="the reference problem whose operator made the data")
    parser.add_argument("input", help="data as .npy")
    parser.add_argument("output", help="where to write the image(s) as .npy")
    parser.add_argument("--method", default="tv", help="method name (default tv); see 'benchmark --help'")
    parser.add_argument("--param", type=float, help="regularisation parameter (default: the method's)")
    parser.add_argument("--angles", type=int, default=30, help="CT: number of angles (default 30)")
    parser.add_argument("--acceleration", type=float, default=4.0, help="MRI: undersampling factor (default 4)")
    parser.add_argument("--pattern", default="random", help="MRI: sampling pattern (default random)")
    parser.add_argument("--coils", type=int, default=1, help="MRI: number of coils (default 1)")
    parser.add_argument("--size", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--noise", type=float, default=0.05,
                        help="CT from DICOM: simulated noise relative to mean |y| (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="CT from DICOM: seed of the simulated noise")
    parser.set_defaults(func=run_reconstruct)
    return parser


def run_reconstruct(args: argparse.Namespace) -> np.ndarray:
    """Reconstruct ``args.input`` with ``args.method``; write ``args.output``.

    Examples
    --------
    >>> import tempfile, os
    >>> from odl_learned.cli.main import main
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "y.npy"), np.zeros((2, 2)))
    ...     main(["reconstruct", "ct", os.path.join(d, "y.npy"), os.path.join(d, "x.npy")])
    2
    """
    from odl_learned.cli.benchmark import build_problem
    from odl_learned.evaluation.methods import METHODS, parse_methods

    (method,) = parse_methods(args.method, args.task)
    is_dicom = args.input.lower().endswith(".dcm")
    if is_dicom and args.task != "ct":
        raise ValueError("DICOM input is read for CT only; for MRI give k-space as .npy")
    if not (args.input.endswith(".npy") or is_dicom):
        raise ValueError(f"input must be a .npy file (or .dcm for CT), got {args.input!r}")
    if not os.path.exists(args.input):
        raise FileNotFoundError(f"no such input file: {args.input!r}")
    problem_args = argparse.Namespace(
        task=args.task, phantom=None, quick=True, num_images=1, noise=0.0, angles=args.angles, size=args.size,
        acceleration=args.acceleration, pattern=args.pattern, coils=args.coils,
    )
    problem = build_problem(problem_args)
    truth = None
    if is_dicom:
        truth, data = _simulate_ct_data(args, problem)
    else:
        data = np.load(args.input, allow_pickle=False)
    shape = tuple(problem.op.range.shape)
    if data.shape != shape and data.shape[1:] != shape:
        raise ValueError(f"input has shape {data.shape}; expected {shape} or (B, *{shape}) for this {args.task} problem")
    if args.task == "ct" and np.iscomplexobj(data):
        raise ValueError(f"CT data must be real, got dtype {data.dtype}")
    reconstructor = METHODS[method].build(problem, args.param)
    if data.shape == shape:
        image = reconstructor(problem.op.range.element(_as_range_array(data, problem.op.range))).asarray()
    else:
        image = np.stack([reconstructor(problem.op.range.element(_as_range_array(d, problem.op.range))).asarray()
                          for d in data])
    image = np.asarray(image, dtype=np.float32)
    np.save(args.output, image)
    print(f"wrote {args.output}: {method} reconstruction, shape {image.shape}")
    if truth is not None:
        from odl_learned.metrics import psnr

        print(f"PSNR against the DICOM slice: {psnr(image, truth):.2f} dB")
    return image


def _simulate_ct_data(args: argparse.Namespace, problem) -> tuple[np.ndarray, np.ndarray]:
    """Read the DICOM slice and measure it as the reference problem does (no inverse crime)."""
    from odl_learned.data import read_ct_dicom
    from odl_learned.evaluation.problems import measure_ct

    truth = read_ct_dicom(args.input, problem.op.domain.shape)
    y = measure_ct(problem.op.domain.element(truth), problem.extras, noise_level=args.noise, seed=args.seed)
    return truth, y.asarray()


def _as_range_array(arr: np.ndarray, space):
    if not np.all(np.isfinite(arr)):
        raise ValueError("input data contain NaN or Inf; expected finite values")
    if getattr(space, "impl", "numpy") == "pytorch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(arr.astype(space.dtype)))
    return arr.astype(space.dtype)
