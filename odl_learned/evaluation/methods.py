"""The methods the benchmarks compare, by name, and how each is set up for a problem.

Every method is a :class:`MethodSpec`: a name, the tasks it applies to, and a
``build(problem, param)`` that returns a
:class:`~odl_learned.reconstructors.Reconstructor` for an
:class:`~odl_learned.evaluation.problems.InverseProblem`. Methods with a
regularisation parameter carry a default (chosen by
``odl-learned benchmark TASK --tune``, which runs
:func:`~odl_learned.reconstructors.grid_search` on validation images that never
appear in the test set) and the grid it was chosen from.

The CT operator of the reference problem is normalised, ``A / ||A||``; the
regularisation parameters below refer to that operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from odl_learned._checks import check_choice
from odl_learned.evaluation.problems import InverseProblem
from odl_learned.reconstructors import (
    LinearReconstructor,
    Reconstructor,
    TGVReconstructor,
    TVReconstructor,
    WaveletL1Reconstructor,
    ZeroFilledReconstructor,
)

__all__ = ("MethodSpec", "METHODS", "methods_for", "parse_methods")


@dataclass(frozen=True)
class MethodSpec:
    """A reconstruction method as the benchmarks know it.

    Attributes
    ----------
    name : str
        Name used on the command line (``--methods``) and in reports.
    tasks : tuple of str
        Tasks (``'ct'``, ``'mri'``) the method applies to.
    builder : callable
        ``builder(problem, param)`` returns a reconstructor.
    default_param : dict
        Default parameter per task (key ``'ct'``), or per task and phantom
        (key ``'ct:ellipses'``, which wins); empty for parameter-free methods.
    grid : tuple of float
        Candidate parameters for ``--tune``: factors applied to the default,
        or the candidates themselves if ``relative_grid`` is False.
    relative_grid : bool
        Whether ``grid`` holds factors (True) or values (False).
    summary : str
        One line for ``--help`` and reports.

    Examples
    --------
    A method that scales the data back, with a parameter chosen per task:

    >>> import odl
    >>> from odl_learned.evaluation.problems import InverseProblem
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> problem = InverseProblem("ct", odl.ScalingOperator(space, 2.0), [], {"phantom": "ellipses"})
    >>> spec = MethodSpec(
    ...     "scaled", ("ct",),
    ...     lambda problem, param: LinearReconstructor(odl.ScalingOperator(space, param), name="scaled"),
    ...     {"ct": 0.5}, grid=(0.5, 1.0, 2.0))
    >>> spec.default_for(problem), spec.candidates(problem)
    (0.5, [0.25, 0.5, 1.0])
    >>> float(spec.build(problem)(space.one()).asarray()[0, 0])
    0.5
    """

    name: str
    tasks: tuple[str, ...]
    builder: Callable[[InverseProblem, float | None], Reconstructor]
    default_param: dict
    grid: tuple[float, ...] = ()
    summary: str = ""
    relative_grid: bool = True

    def build(self, problem: InverseProblem, param: float | None = None) -> Reconstructor:
        """Return the reconstructor for ``problem`` (default parameter if ``param`` is None).

        Examples
        --------
        >>> from odl_learned.evaluation.problems import ct_problem
        >>> problem = ct_problem(num_images=1, size=32, fine_size=64)
        >>> METHODS["fbp"].build(problem).name
        'fbp'
        """
        if problem.task not in self.tasks:
            raise ValueError(f"method {self.name!r} applies to tasks {self.tasks}, not {problem.task!r}")
        if param is None:
            param = self.default_for(problem)
        return self.builder(problem, param)

    def default_for(self, problem: InverseProblem) -> float | None:
        """The default parameter for ``problem`` (by task and phantom), or None.

        Examples
        --------
        >>> from odl_learned.evaluation.problems import ct_problem
        >>> METHODS["fbp"].default_for(ct_problem(phantom="shepp-logan", num_images=1, size=32, fine_size=64))
        1.0
        """
        key = f"{problem.task}:{problem.setting.get('phantom')}"
        return self.default_param.get(key, self.default_param.get(problem.task))

    def candidates(self, problem: InverseProblem) -> list[float]:
        """Parameters that ``--tune`` tries for ``problem``.

        Examples
        --------
        >>> from odl_learned.evaluation.problems import ct_problem
        >>> METHODS["fbp"].candidates(ct_problem(num_images=1, size=32, fine_size=64))
        [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
        """
        default = self.default_for(problem)
        if default is None:
            return []
        if not self.relative_grid:
            return list(self.grid)
        return [float(f"{default * factor:.3g}") for factor in self.grid]


# The iteration counts of the variational methods: enough for the images of the
# reference problems to stop changing visibly (PSNR within 0.05 dB of 1000 iterations).
NUM_ITER = 300
#: PDHG step-size ratio tau / sigma per task (see TVReconstructor's ``step_ratio``).
STEP_RATIO = {"ct": 10.0, "mri": 10.0}
GRID = (0.25, 0.5, 1.0, 2.0, 4.0)


def _fbp(problem: InverseProblem, param: float | None) -> Reconstructor:
    from odl_learned.operators import ct

    ray_trafo, norm = problem.extras["ray_trafo"], problem.extras["norm"]
    # the data belong to A / ||A||, so FBP of A applies to ||A|| * y
    fbp_op = ct.fbp(ray_trafo, "Hann", param) * norm
    return LinearReconstructor(fbp_op, op=problem.op, name="fbp")


def _zero_filled(problem: InverseProblem, param: float | None) -> Reconstructor:
    return ZeroFilledReconstructor(problem.op, name="zero-filled")


def _tv(problem: InverseProblem, param: float | None) -> Reconstructor:
    return TVReconstructor(problem.op, param, num_iter=NUM_ITER, step_ratio=STEP_RATIO[problem.task],
                           magnitude=problem.task == "mri", name="tv")


def _tgv(problem: InverseProblem, param: float | None) -> Reconstructor:
    return TGVReconstructor(problem.op, param, num_iter=NUM_ITER, step_ratio=STEP_RATIO[problem.task],
                            magnitude=problem.task == "mri", name="tgv")


def _wavelet(problem: InverseProblem, param: float | None) -> Reconstructor:
    return WaveletL1Reconstructor(
        problem.op, param, wavelet="db4", num_iter=NUM_ITER, magnitude=problem.task == "mri",
        name="wavelet"
    )


#: All methods by name. Parameters: chosen by ``odl-learned benchmark ct --tune`` and
#: ``odl-learned benchmark mri --tune`` (random ellipses / brain slices of the validation split).
METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("fbp", ("ct",), _fbp, {"ct": 1.0, "ct:ellipses": 0.4, "ct:real": 0.4},
                   (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0), relative_grid=False,
                   summary="filtered back-projection, Hann filter; parameter: frequency scaling"),
        MethodSpec("zero-filled", ("mri",), _zero_filled, {}, summary="inverse FFT of zero-filled k-space"),
        MethodSpec("tv", ("ct", "mri"), _tv, {"ct": 3e-4, "ct:ellipses": 5e-3, "ct:real": 5e-3, "mri": 5e-5}, GRID,
                   summary="total variation, PDHG, non-negativity for CT"),
        MethodSpec("tgv", ("ct", "mri"), _tgv, {"ct": 3e-4, "ct:ellipses": 5e-3, "ct:real": 5e-3, "mri": 5e-5}, GRID,
                   summary="second-order TGV, PDHG"),
        MethodSpec("wavelet", ("ct", "mri"), _wavelet, {"ct": 1e-2, "mri": 2.5e-5}, GRID,
                   summary="db4 wavelet-L1, FISTA"),
    )
}


def _learned(name: str) -> Callable[[InverseProblem, float | None], Reconstructor]:
    def build(problem: InverseProblem, param: float | None) -> Reconstructor:
        from odl_learned.reconstructors.learned_methods import load_pretrained

        return load_pretrained(name, problem.op, problem.extras)

    return build


def _add_learned_methods() -> None:
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS

    for method in LEARNED_METHODS.values():
        METHODS[method.name] = MethodSpec(method.name, (method.task,), _learned(method.name), {},
                                          summary=method.summary + " (shipped weights)")


_add_learned_methods()


def methods_for(task: str, *, available_only: bool = False) -> list[str]:
    """Names of the methods that apply to ``task``.

    With ``available_only``, learned methods are listed only where their
    weights ship with this installation.

    Examples
    --------
    >>> methods_for("mri")[:4]
    ['zero-filled', 'tv', 'tgv', 'wavelet']
    """
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS, has_weights

    task = check_choice("task", task, ("ct", "mri"))
    names = [name for name, spec in METHODS.items() if task in spec.tasks]
    if available_only:
        names = [n for n in names if n not in LEARNED_METHODS or has_weights(n)]
    return names


def parse_methods(text: str | Sequence[str] | None, task: str) -> list[str]:
    """Turn ``'fbp,tv'`` (or a list, or None for all) into checked method names.

    Examples
    --------
    >>> parse_methods("fbp, tv", "ct")
    ['fbp', 'tv']
    >>> parse_methods("fbp", "mri")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'fbp' for task 'mri'; expected one of zero-filled, tv, tgv, wavelet, varnet, varnet-tv
    """
    available = methods_for(task)
    if text is None:
        return methods_for(task, available_only=True)
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ValueError(f"no method given; expected some of {', '.join(available)}")
    for name in names:
        if name not in available:
            raise ValueError(f"unknown method {name!r} for task {task!r}; expected one of {', '.join(available)}")
    return list(dict.fromkeys(names))

