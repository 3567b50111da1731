"""Evaluate reconstruction methods on an inverse problem: metrics, timings, report.

The report is plain JSON:
``{"task", "setting", "methods": {name: {"psnr", "ssim", "seconds_per_image", ...}}}``.
PSNR and SSIM use the data range of each ground truth (as dival does) and are
averaged over the test images; ``seconds_per_image`` is the mean wall-clock
time of one reconstruction, set-up (operator norms, filters) excluded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from odl_learned.evaluation.methods import METHODS
from odl_learned.evaluation.problems import InverseProblem
from odl_learned.metrics import psnr, ssim
from odl_learned.reconstructors import Reconstructor, grid_search

__all__ = ("MethodResult", "evaluate", "evaluate_reconstructor", "tune", "report_table")


@dataclass
class MethodResult:
    """Metrics of one method on the test pairs, and its reconstructions.

    Attributes
    ----------
    name : str
        Method name.
    psnr, ssim : numpy.ndarray
        Per-image values.
    seconds : numpy.ndarray
        Per-image reconstruction time.
    images : list of numpy.ndarray
        The reconstructions (for figures).
    info : dict
        Extra report entries (parameter, number of parameters, ...).

    Examples
    --------
    Usually returned by :func:`evaluate_reconstructor`:

    >>> r = MethodResult("tv", np.array([30.0, 32.0]), np.array([0.8, 0.9]), np.array([1.0, 2.0]),
    ...                  info={"param": 1e-3})
    >>> float(r.psnr.mean()), r.summary()["param"]
    (31.0, 0.001)
    """

    name: str
    psnr: np.ndarray
    ssim: np.ndarray
    seconds: np.ndarray
    images: list = field(repr=False, default_factory=list)
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The JSON entry of this method: means, the PSNR of each image, and ``info``.

        Examples
        --------
        >>> r = MethodResult("fbp", np.array([20.0, 22.0]), np.array([0.5, 0.7]), np.array([0.1, 0.3]))
        >>> r.summary()
        {'psnr': 21.0, 'ssim': 0.6, 'seconds_per_image': 0.2, 'num_images': 2, 'psnr_per_image': [20.0, 22.0]}
        """
        entry = {
            "psnr": round(float(np.mean(self.psnr)), 3),
            "ssim": round(float(np.mean(self.ssim)), 4),
            "seconds_per_image": round(float(np.mean(self.seconds)), 4),
            "num_images": int(len(self.psnr)),
            # a mean hides a method that helps some images and harms others
            "psnr_per_image": [round(float(v), 2) for v in self.psnr],
        }
        entry.update(self.info)
        return entry


def evaluate_reconstructor(
    reconstructor: Callable, pairs: Sequence[tuple], *, name: str = "method", progress: bool = False
) -> MethodResult:
    """Reconstruct every ``y`` of ``pairs`` and score it against its ``x_true``.

    Parameters
    ----------
    reconstructor : callable
        ``reconstructor(y)`` returns an image (an ODL element or array).
    pairs : sequence of (y, x_true)
        Test data and ground truths.
    name : str, optional
        Label of the result.
    progress : bool, optional
        Show a tqdm bar.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> x = space.element(np.arange(64.0).reshape(8, 8))
    >>> result = evaluate_reconstructor(lambda y: y, [(x, x)], name="identity")
    >>> float(result.ssim[0])
    1.0
    """
    values_psnr, values_ssim, seconds, images = [], [], [], []
    for y, x_true in tqdm(pairs, desc=name, disable=not progress, leave=False):
        start = time.perf_counter()
        x = reconstructor(y)
        seconds.append(time.perf_counter() - start)
        x_arr = x.asarray() if hasattr(x, "asarray") else np.asarray(x)
        truth = x_true.asarray() if hasattr(x_true, "asarray") else np.asarray(x_true)
        images.append(np.asarray(x_arr, dtype=np.float32))
        values_psnr.append(psnr(x_arr, truth))
        values_ssim.append(ssim(x_arr, truth))
    return MethodResult(name, np.array(values_psnr), np.array(values_ssim), np.array(seconds), images)


def tune(problem: InverseProblem, validation: InverseProblem, method: str) -> tuple[float | None, dict]:
    """Choose ``method``'s parameter by PSNR on ``validation`` (grid search).

    Returns the best parameter (``None`` for parameter-free methods) and the
    table of mean PSNR per candidate.

    Examples
    --------
    >>> from odl_learned.evaluation.problems import ct_problem
    >>> val = ct_problem(num_images=1, size=32, fine_size=64, seed=1)
    >>> tune(val, val, "fbp")[0] <= 1.0
    True
    """
    spec = METHODS[method]
    candidates = spec.candidates(validation)
    if not candidates:
        return None, {}
    result = grid_search(lambda p: spec.build(validation, p), candidates, validation.pairs, psnr)
    table = {f"{p:.3g}": round(score, 3) for p, score, _ in result.table()}
    return float(result.best_param), table


def evaluate(
    problem: InverseProblem,
    methods: Sequence[str],
    *,
    params: Mapping[str, float] | None = None,
    progress: bool = True,
    reconstructors: Mapping[str, Reconstructor] | None = None,
) -> dict[str, MethodResult]:
    """Evaluate the named methods on ``problem``'s test pairs.

    Parameters
    ----------
    problem : InverseProblem
        Operator and test pairs.
    methods : sequence of str
        Names from :data:`~odl_learned.evaluation.methods.METHODS`.
    params : mapping, optional
        Parameter per method (default: each method's default).
    progress : bool, optional
        Show tqdm bars.
    reconstructors : mapping, optional
        Ready reconstructors for some of the methods, used instead of
        building them (e.g. learned ones with other weights than the shipped).

    Examples
    --------
    >>> from odl_learned.evaluation.problems import ct_problem
    >>> problem = ct_problem(num_images=1, size=32, fine_size=64)
    >>> results = evaluate(problem, ["fbp"], progress=False)
    >>> bool(results["fbp"].psnr[0] > 10)
    True
    """
    params = dict(params or {})
    results = {}
    for name in methods:
        spec = METHODS[name]
        given = (reconstructors or {}).get(name)
        reconstructor: Reconstructor = given if given is not None else spec.build(problem, params.get(name))
        result = evaluate_reconstructor(reconstructor, problem.pairs, name=name, progress=progress)
        param = params.get(name, spec.default_for(problem))
        if param is not None:
            result.info["param"] = param
        if hasattr(reconstructor, "num_parameters"):
            result.info["params"] = reconstructor.num_parameters()
            budget = reconstructor.training_info
            keys = ("steps", "samples_seen", "num_train_images", "wall_seconds", "device",
                    "total_steps", "total_samples_seen", "total_wall_seconds")
            result.info["training"] = {k: budget[k] for k in keys if k in budget}
        results[name] = result
    return results


def report_table(report: Mapping) -> str:
    """Format a benchmark report as a Markdown table.

    Examples
    --------
    >>> print(report_table({"methods": {"fbp": {"psnr": 20.0, "ssim": 0.5, "seconds_per_image": 0.01}}}))
    | method | PSNR (dB) | SSIM | s / image |
    |---|---|---|---|
    | fbp | 20.00 | 0.500 | 0.010 |
    """
    lines = ["| method | PSNR (dB) | SSIM | s / image |", "|---|---|---|---|"]
    for name, entry in report["methods"].items():
        lines.append(f"| {name} | {entry['psnr']:.2f} | {entry['ssim']:.3f} | {entry['seconds_per_image']:.3f} |")
    return "\n".join(lines)
