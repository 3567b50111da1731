"""Evaluation: the reference problems, the methods by name, metrics and reports.

- :mod:`~odl_learned.evaluation.problems`: CT and MRI reference problems.
- :mod:`~odl_learned.evaluation.methods`: the benchmark's method registry.
- :mod:`~odl_learned.evaluation.runner`: evaluate, tune, report.
- :mod:`~odl_learned.evaluation.figures`: reconstructions beside the truth.
"""

from odl_learned.evaluation.figures import save_reconstruction_figure
from odl_learned.evaluation.methods import METHODS, MethodSpec, methods_for, parse_methods
from odl_learned.evaluation.problems import CT_PHANTOMS, MRI_PHANTOMS, SPLIT_SEEDS, InverseProblem, ct_problem, mri_problem
from odl_learned.evaluation.runner import MethodResult, evaluate, evaluate_reconstructor, report_table, tune

__all__ = (
    "InverseProblem",
    "ct_problem",
    "mri_problem",
    "CT_PHANTOMS",
    "MRI_PHANTOMS",
    "SPLIT_SEEDS",
    "METHODS",
    "MethodSpec",
    "methods_for",
    "parse_methods",
    "MethodResult",
    "evaluate",
    "evaluate_reconstructor",
    "tune",
    "report_table",
    "save_reconstruction_figure",
)
