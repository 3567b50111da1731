"""Choosing a reconstructor's parameter on a validation set."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odl_learned.reconstructors.base import Reconstructor

__all__ = ("grid_search", "GridSearchResult")


@dataclass(frozen=True)
class GridSearchResult:
    r"""Outcome of :func:`grid_search` (frozen).

    Parameters
    ----------
    best_param : object
        The parameter with the best mean score.
    best_index : int
        Its index in ``params``.
    best_score : float
        Its mean score.
    params : tuple
        The parameters tried, in the given order.
    scores : numpy.ndarray
        Scores, shape ``(len(params), len(pairs))``.

    Notes
    -----
    The mean score of parameter :math:`p_i` is
    :math:`\bar s_i = \frac{1}{N}\sum_{n} s_{i n}`.

    Examples
    --------
    >>> result = GridSearchResult(1.0, 1, 3.0, (0.5, 1.0), np.array([[1.0, 2.0], [3.0, 3.0]]))
    >>> result.mean_scores.tolist()
    [1.5, 3.0]
    >>> result.table()
    [(0.5, 1.5, 0.5), (1.0, 3.0, 0.0)]
    """

    best_param: Any
    best_index: int
    best_score: float
    params: tuple
    scores: np.ndarray

    @property
    def mean_scores(self) -> np.ndarray:
        """Mean score of each parameter over the validation pairs."""
        return self.scores.mean(axis=1)

    def table(self) -> list[tuple[Any, float, float]]:
        """Rows ``(param, mean, std)`` of the scores, in the order of ``params``.

        Returns
        -------
        list of tuple
            One ``(param, mean, std)`` per parameter, mean and standard
            deviation over the validation pairs.

        Examples
        --------
        >>> result = GridSearchResult(2, 0, 4.0, (2, 4), np.array([[3.0, 5.0], [1.0, 1.0]]))
        >>> result.table()
        [(2, 4.0, 1.0), (4, 1.0, 0.0)]
        >>> max(result.table(), key=lambda row: row[1])[0] == result.best_param
        True
        """
        return [(p, float(row.mean()), float(row.std())) for p, row in zip(self.params, self.scores)]


def grid_search(
    make_reconstructor: Callable[[Any], Reconstructor],
    params: Sequence[Hashable | Any],
    pairs: Sequence[tuple[Any, Any]],
    metric: Callable[[Any, Any], float],
    *,
    maximize: bool = True,
) -> GridSearchResult:
    r"""Pick the parameter whose reconstructions score best on validation pairs.

    Parameters
    ----------
    make_reconstructor : callable
        ``make_reconstructor(param)`` returns a :class:`Reconstructor`, e.g.
        ``lambda lam: TVReconstructor(op, lam)``.
    params : sequence
        Candidate parameters (e.g. regularisation parameters).
    pairs : sequence of (y, x_true)
        Validation data and ground truths. ``y`` is anything the
        reconstructor accepts (an ODL element or a batch).
    metric : callable
        ``metric(x_reco, x_true) -> float``, e.g. a PSNR.
    maximize : bool, optional
        True if larger scores are better (PSNR, SSIM), False for errors.

    Returns
    -------
    result : GridSearchResult
        Best parameter, its mean score and the table of all scores.

    Notes
    -----
    The chosen parameter is

    .. math::
        \hat p = \operatorname*{arg\,max}_{p} \frac{1}{N} \sum_{n=1}^N
        \mathrm{metric}(R_p(y_n), x_n)

    (``argmin`` for ``maximize=False``). Ties go to the first parameter in
    ``params``. A NaN score (e.g. a diverged reconstruction) counts as the
    worst possible score. Each reconstructor is built once and applied to all
    pairs, so set-up costs (operator norms) are paid once per parameter.

    References
    ----------
    .. [1] Hastie, T, Tibshirani, R and Friedman, J. *The Elements of
       Statistical Learning*. Springer, 2009, section 7.10 (validation).

    Examples
    --------
    Choose the scaling of a back-projection on a toy problem:

    >>> import odl
    >>> from odl_learned.reconstructors import LinearReconstructor
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> pairs = [(2.0 * space.one(), space.one())]
    >>> neg_error = lambda x, x_true: -float((x - x_true).norm())
    >>> result = grid_search(
    ...     lambda c: LinearReconstructor(odl.ScalingOperator(space, c)),
    ...     [0.25, 0.5, 1.0], pairs, neg_error)
    >>> result.best_param, result.best_score
    (0.5, 0.0)
    """
    if not callable(make_reconstructor):
        raise TypeError(f"make_reconstructor must be callable, got {type(make_reconstructor).__name__}")
    if not callable(metric):
        raise TypeError(f"metric must be callable, got {type(metric).__name__}")
    if not isinstance(maximize, bool):
        raise TypeError(f"maximize must be a bool, got {maximize!r}")
    params = tuple(params)
    pairs = list(pairs)
    if not params:
        raise ValueError("params is empty; expected at least one parameter")
    if not pairs:
        raise ValueError("pairs is empty; expected at least one (y, x_true) pair")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (y, x_true) pair, got {type(pair).__name__}")

    scores = np.empty((len(params), len(pairs)))
    for i, param in enumerate(params):
        reco = make_reconstructor(param)
        if not isinstance(reco, Reconstructor):
            raise TypeError(
                f"make_reconstructor({param!r}) returned {type(reco).__name__}, not a Reconstructor"
            )
        for j, (y, x_true) in enumerate(pairs):
            scores[i, j] = float(metric(reco(y), x_true))

    mean = scores.mean(axis=1)
    ranked = mean if maximize else -mean
    ranked = np.where(np.isnan(ranked), -np.inf, ranked)
    best = int(np.argmax(ranked))
    return GridSearchResult(
        best_param=params[best],
        best_index=best,
        best_score=float(mean[best]),
        params=params,
        scores=scores,
    )
