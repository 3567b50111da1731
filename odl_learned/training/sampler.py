"""A deterministic, resumable, shardable batch sampler.

Training reads the dataset as one endless *stream* of sample indices: epoch
``e`` contributes a permutation of ``range(num_samples)`` drawn from a generator
seeded with ``(seed, e)`` only, and the stream is those permutations one after
another. Step ``s`` of a run with ``W`` processes and per-process batch size
``B`` takes the ``W * B`` stream positions starting at ``start + s * W * B``;
process ``r`` takes the ``r``-th block of ``B`` of them (the
:class:`~torch.utils.data.DistributedSampler` idea, without padding). A batch may
straddle two epochs.

Because a batch is a pure function of ``(seed, position)``, the sampler's whole
state is one integer, the stream position; restoring it restores the order of
all later batches exactly, whether the run was interrupted or not, and with one
process the batches do not depend on how many workers load them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from odl_learned._checks import check_positive
from odl_learned.training.rng import derive_seed

__all__ = ("DeterministicBatchSampler",)

_SAMPLER_KEY = 1  # separates the sample-order stream from other derived seeds


class DeterministicBatchSampler(Sampler[list[int]]):
    """Yield ``num_batches`` index batches from the seeded sample stream.

    For :class:`torch.utils.data.DataLoader`'s ``batch_sampler`` argument.

    Parameters
    ----------
    num_samples : int
        Length of the dataset.
    batch_size : int
        Indices per batch (per process).
    seed : int
        Seed of the per-epoch permutations.
    num_batches : int
        How many batches to yield (the steps still to run).
    start : int, optional
        Stream position of the first batch, in samples (``step * W * B``
        when resuming after ``step`` steps).
    rank, world_size : int, optional
        This process's shard of each global batch.

    Examples
    --------
    >>> list(DeterministicBatchSampler(5, 2, seed=0, num_batches=4))
    [[1, 2], [0, 4], [3, 0], [3, 4]]
    >>> later = DeterministicBatchSampler(5, 2, seed=0, num_batches=2, start=4)
    >>> list(later)  # the same stream, resumed after two batches
    [[3, 0], [3, 4]]
    >>> [list(DeterministicBatchSampler(5, 1, seed=0, num_batches=2, rank=r, world_size=2))
    ...  for r in (0, 1)]  # two processes split each global batch of 2
    [[[1], [0]], [[2], [4]]]
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, num_batches: int, *,
                 start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.num_samples = int(check_positive("num_samples", num_samples, integer=True))
        self.batch_size = int(check_positive("batch_size", batch_size, integer=True))
        self.world_size = int(check_positive("world_size", world_size, integer=True))
        if num_batches < 0:
            raise ValueError(f"num_batches must be >= 0, got {num_batches}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {rank}")
        self.seed = int(seed)
        self.num_batches = int(num_batches)
        self.start = int(start)
        self.rank = int(rank)
        self._epoch = -1
        self._perm: list[int] = []

    @property
    def samples_per_step(self) -> int:
        """Stream positions one step consumes over all processes, ``W * B``."""
        return self.world_size * self.batch_size

    def permutation(self, epoch: int) -> list[int]:
        """The sample order of ``epoch`` (a pure function of ``seed`` and ``epoch``).

        Parameters
        ----------
        epoch : int
            Epoch index, 0-based.

        Returns
        -------
        list of int
            A permutation of ``range(num_samples)``.

        Examples
        --------
        >>> sampler = DeterministicBatchSampler(5, 2, seed=0, num_batches=4)
        >>> sampler.permutation(0), sampler.permutation(1)
        ([1, 2, 0, 4, 3], [0, 3, 4, 1, 2])
        >>> DeterministicBatchSampler(5, 3, seed=0, num_batches=1).permutation(1)  # not batch-size dependent
        [0, 3, 4, 1, 2]
        """
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, _SAMPLER_KEY, epoch))
            self._perm = torch.randperm(self.num_samples, generator=gen).tolist()
            self._epoch = epoch
        return self._perm

    def indices(self, position: int, count: int) -> list[int]:
        """The ``count`` sample indices at stream positions ``position, ...``.

        Parameters
        ----------
        position : int
            First stream position (``epoch * num_samples + offset``).
        count : int
            Number of indices; they may run across epoch boundaries.

        Returns
        -------
        list of int

        Examples
        --------
        >>> sampler = DeterministicBatchSampler(5, 2, seed=0, num_batches=4)
        >>> sampler.indices(3, 4)  # the end of epoch 0, then the start of epoch 1
        [4, 3, 0, 3]
        >>> sampler.indices(0, 10) == sampler.permutation(0) + sampler.permutation(1)
        True
        """
        out: list[int] = []
        while count > 0:
            epoch, offset = divmod(position, self.num_samples)
            take = min(count, self.num_samples - offset)
            out.extend(self.permutation(epoch)[offset:offset + take])
            position += take
            count -= take
        return out

    def batch(self, step: int) -> list[int]:
        """This process's indices for the ``step``-th batch after ``start``.

        Parameters
        ----------
        step : int
            Batch index, 0-based, counted from ``start``.

        Returns
        -------
        list of int
            ``batch_size`` sample indices.

        Examples
        --------
        >>> sampler = DeterministicBatchSampler(5, 2, seed=0, num_batches=4)
        >>> sampler.batch(2)
        [3, 0]
        >>> [DeterministicBatchSampler(5, 1, seed=0, num_batches=4, rank=r, world_size=2).batch(1)
        ...  for r in (0, 1)]  # the two halves of the global batch [0, 4]
        [[0], [4]]
        """
        position = self.start + step * self.samples_per_step + self.rank * self.batch_size
        return self.indices(position, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.num_batches):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.num_batches
