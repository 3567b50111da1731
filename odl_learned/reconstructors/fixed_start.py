"""A classical reconstructor as the fixed first step of a network, computed once per data item."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch
from torch import nn

from odl_learned._checks import check_positive
from odl_learned.reconstructors.base import Reconstructor

__all__ = ("FixedStart",)


class FixedStart(nn.Module):
    r"""The map :math:`y \mapsto R(y)` of a reconstructor :math:`R` as a ``torch.nn.Module``, memoised.

    An unrolled network can start from a variational reconstruction instead of
    :math:`A^* y` (e.g. the variational network started from TV, ``varnet-tv``).
    :math:`R` has no trainable parameters, so during training it is the same map at
    every step; as it costs far more than a network step (a TV solve by PDHG is about
    0.5 s per 128 x 128 MRI slice), each result is kept, keyed by the bytes of its data
    item, and computed only the first time that item is seen (the training set of a
    reference problem is a few hundred fixed items). ``functools.lru_cache`` cannot
    do this: tensors hash by identity, and a data loader returns new tensors each epoch.

    Parameters
    ----------
    reconstructor : Reconstructor
        :math:`R`, called on a batch of data (see
        :class:`~odl_learned.reconstructors.Reconstructor`).
    max_items : int, optional
        Results kept (least recently used dropped first); 1024 slices of 128 x 128
        complex64 take 128 MiB.

    Attributes
    ----------
    hits, misses : int
        Items served from the memory and items computed.

    Notes
    -----
    :math:`R` is not differentiated (variational reconstructions by an iterative
    solver have no derivative here): data that require a gradient raise
    ``RuntimeError``, rather than silently treating :math:`R(y)` as a constant.

    Examples
    --------
    >>> import odl
    >>> from odl_learned.reconstructors import TVReconstructor
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> start = FixedStart(TVReconstructor(odl.IdentityOperator(space), lam=1e-3, num_iter=20))
    >>> y = torch.rand(3, 8, 8, dtype=torch.float64)
    >>> x0 = start(y)
    >>> x0.shape, start.misses
    (torch.Size([3, 8, 8]), 3)
    >>> torch.equal(start(y[1:]), x0[1:]), start.hits  # seen before: not solved again
    (True, 2)
    """

    def __init__(self, reconstructor: Reconstructor, max_items: int = 1024) -> None:
        super().__init__()
        if not isinstance(reconstructor, Reconstructor):
            raise TypeError(f"reconstructor must be a Reconstructor, got {type(reconstructor).__name__}")
        check_positive("max_items", max_items, integer=True)
        self.reconstructor = reconstructor
        self.max_items = max_items
        self._memory: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(item: torch.Tensor) -> tuple:
        data = item.detach().cpu().contiguous()
        # the raw bytes as uint8: NumPy has no bfloat16, so data.numpy() would fail for it
        raw = data.reshape(-1).view(torch.uint8).numpy().tobytes()
        return tuple(data.shape), str(data.dtype), hashlib.sha1(raw).hexdigest()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Return :math:`R(y_i)` for each item ``y_i`` of the batch ``y`` (first axis)."""
        if not isinstance(y, torch.Tensor) or y.ndim < 1:
            raise TypeError("y must be a batch of data as a torch.Tensor with the items along the first axis")
        if y.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(
                f"the start {self.reconstructor.name} is not differentiable with respect to the data; "
                "call it on data that do not require a gradient"
            )
        keys = [self._key(item) for item in y]
        found = {}
        for i, key in enumerate(keys):
            if key in self._memory:
                self._memory.move_to_end(key)
                found[i] = self._memory[key]
        missing = [i for i in range(len(keys)) if i not in found]
        if missing:
            with torch.no_grad():
                solved = self.reconstructor(y[missing].detach().cpu())
            for i, x in zip(missing, solved):
                found[i] = self._memory[keys[i]] = x.clone()
                if len(self._memory) > self.max_items:
                    self._memory.popitem(last=False)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return torch.stack([found[i] for i in range(len(keys))]).to(y.device)

    def extra_repr(self) -> str:
        return f"reconstructor={self.reconstructor.name}, max_items={self.max_items}"
