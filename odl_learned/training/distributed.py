"""Multi-process data-parallel training (``torch.distributed`` + DDP, launched by torchrun).

One process per GPU (or several CPU processes) each hold a replica of the
model; every step each process trains on its own shard of the global batch
(:class:`~odl_learned.training.DeterministicBatchSampler` with ``rank`` and
``world_size``), :class:`~torch.nn.parallel.DistributedDataParallel` averages
the gradients, and the replicas stay identical. :class:`Trainer` does all of
this by itself when ``torch.distributed`` is initialised; a training script
only has to call :func:`init_distributed` first::

    # train.py
    from odl_learned.training import Trainer, TrainConfig, init_distributed, cleanup_distributed

    info = init_distributed()          # reads torchrun's environment variables
    try:
        trainer = Trainer(make_model(), make_dataset(), TrainConfig(num_steps=10_000),
                          checkpoint_dir="runs/unet")   # shared filesystem for resuming
        trainer.fit(resume=True)       # continues from runs/unet/last.pt if it exists
        trainer.export_weights("unet.pt")
    finally:
        cleanup_distributed()

Launch it with ``torchrun`` (``python -m torch.distributed.run`` is the same):

- one machine, 4 GPUs (or 4 CPU processes)::

      torchrun --standalone --nproc_per_node=4 train.py

- two machines with 8 GPUs each; run the same command on both, with
  ``HOST:PORT`` a reachable address of one of them (the rendezvous)::

      torchrun --nnodes=2 --nproc_per_node=8 --rdzv_id=unet42 \\
               --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 train.py

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` for every process; :func:`init_distributed` reads them, picks
the ``'nccl'`` backend on CUDA and ``'gloo'`` otherwise, and binds each process
to GPU ``LOCAL_RANK``. Without those variables (a plain ``python train.py``)
it does nothing and the same script trains in one process.

Conventions in a distributed run:

- ``TrainConfig.batch_size`` is per process: a step sees
  ``world_size * batch_size`` samples, and the gradients equal (up to
  rounding) those of one process with that larger batch.
- Only the main process (rank 0) shows progress and writes checkpoints and
  exported weights; every process calls the checkpointing code (the random
  generator states of all ranks are gathered into one checkpoint).
- For ``fit(resume=True)`` every process must be able to read the checkpoint
  directory (a shared filesystem).
- Validation is sharded over the processes and the metric sums are
  all-reduced, so every rank sees the same numbers.
- Ctrl-C (SIGINT, which torchrun forwards) is honoured at a step boundary on
  all ranks together: the checkpoint is written, then ``KeyboardInterrupt``.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = (
    "DistributedInfo",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "is_main_process",
    "get_rank",
    "get_world_size",
    "barrier",
    "all_reduce_sum",
    "all_reduce_max",
    "all_reduce_min",
    "all_gather_object",
    "wrap_ddp",
    "unwrap_model",
)


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process stands in a (possibly one-process) distributed run.

    Returned by :func:`init_distributed`.

    Attributes
    ----------
    rank : int
        Global rank of this process (0 when not distributed).
    local_rank : int
        Rank on this machine; the GPU index the process uses.
    world_size : int
        Number of processes.
    device : torch.device
        Where this process computes.
    backend : str or None
        ``'nccl'``, ``'gloo'``, or None when not distributed.

    Examples
    --------
    >>> info = DistributedInfo(rank=2, local_rank=0, world_size=4, device=torch.device("cpu"), backend="gloo")
    >>> info.is_main
    False
    >>> init_distributed().is_main  # one process: the main one
    True
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def _default_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def is_distributed() -> bool:
    """True if ``torch.distributed`` is initialised in this process.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_distributed()  # a plain Python process, not launched by torchrun
    False
    """
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank (0 when not distributed).

    Returns
    -------
    int

    Examples
    --------
    >>> get_rank()
    0
    """
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes (1 when not distributed).

    Returns
    -------
    int

    Examples
    --------
    >>> get_world_size()
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 and in a non-distributed run: the process that writes files.

    Examples
    --------
    >>> is_main_process()
    True
    """
    return get_rank() == 0


def init_distributed(backend: str | None = None, *,
                     timeout: datetime.timedelta | None = None) -> DistributedInfo:
    """Initialise ``torch.distributed`` from torchrun's environment variables.

    Parameters
    ----------
    backend : {'nccl', 'gloo'}, optional
        Default: ``'nccl'`` if CUDA is available, else ``'gloo'``.
    timeout : datetime.timedelta, optional
        Collective timeout (torch's default if not given).

    Returns
    -------
    info : DistributedInfo
        ``rank``, ``local_rank``, ``world_size``, the ``device`` this process
        should use (``cuda:LOCAL_RANK`` or the CPU) and the ``backend``
        (``None`` when not distributed).

    Notes
    -----
    Without ``RANK`` and ``WORLD_SIZE`` in the environment nothing is
    initialised and a one-process ``info`` is returned. Calling it again
    once initialised returns the current state.

    Examples
    --------
    >>> info = init_distributed()  # not under torchrun: one process
    >>> info.rank, info.world_size, info.backend
    (0, 1, None)
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if is_distributed():
        return DistributedInfo(dist.get_rank(), local_rank, dist.get_world_size(),
                               _default_device(local_rank), dist.get_backend())
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedInfo(0, 0, 1, _default_device(0), None)
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed support")
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"unknown backend {backend!r}; expected 'nccl' or 'gloo'")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA; use 'gloo' on the CPU")
    device = _default_device(local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://",
                              "rank": rank, "world_size": world_size}
    if timeout is not None:
        kwargs["timeout"] = timeout
    dist.init_process_group(**kwargs)
    return DistributedInfo(rank, local_rank, world_size, device, backend)


def cleanup_distributed() -> None:
    """Destroy the process group if there is one (call at the end of a script).

    Examples
    --------
    Without a process group it does nothing, so a script can always call it:

    >>> cleanup_distributed()
    >>> is_distributed()
    False
    """
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for all processes (no-op when not distributed).

    Examples
    --------
    >>> barrier() is None  # one process: returns at once
    True
    """
    if is_distributed():
        dist.barrier()


def _all_reduce(tensor: torch.Tensor, op: Any) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(tensor, op=op)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place, and return it (no-op when not distributed).

    Parameters
    ----------
    tensor : torch.Tensor
        This process's contribution; overwritten with the sum.

    Returns
    -------
    torch.Tensor
        ``tensor`` itself.

    Examples
    --------
    >>> t = torch.tensor([1.0, 2.0])
    >>> all_reduce_sum(t) is t, t.tolist()  # one process: the sum is its own value
    (True, [1.0, 2.0])
    """
    return _all_reduce(tensor, dist.ReduceOp.SUM)


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of ``tensor`` over all processes, in place (no-op when not distributed).

    Examples
    --------
    >>> all_reduce_max(torch.tensor([3, 1])).tolist()  # one process: its own value
    [3, 1]
    """
    return _all_reduce(tensor, dist.ReduceOp.MAX)


def all_reduce_min(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise minimum of ``tensor`` over all processes, in place (no-op when not distributed).

    Examples
    --------
    >>> all_reduce_min(torch.tensor([3, 1])).tolist()  # one process: its own value
    [3, 1]
    """
    return _all_reduce(tensor, dist.ReduceOp.MIN)


def all_gather_object(obj: Any) -> list[Any]:
    """Return ``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` alone).

    Parameters
    ----------
    obj : object
        A picklable object of this process.

    Returns
    -------
    list
        One object per rank, in rank order.

    Examples
    --------
    >>> all_gather_object({"rank": get_rank(), "loss": 0.5})
    [{'rank': 0, 'loss': 0.5}]
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel.

    The replicas start from rank 0's parameters and buffers (DDP broadcasts
    them at construction).

    Parameters
    ----------
    model : torch.nn.Module
        The replica of this process, already on ``device``.
    device : torch.device
        This process's device (:attr:`DistributedInfo.device`).

    Returns
    -------
    torch.nn.parallel.DistributedDataParallel

    Raises
    ------
    RuntimeError
        If ``torch.distributed`` is not initialised.

    Examples
    --------
    In one plain process there is nothing to wrap for:

    >>> wrap_ddp(nn.Linear(2, 2), torch.device("cpu"))
    Traceback (most recent call last):
    ...
    RuntimeError: torch.distributed is not initialised; call init_distributed() first
    """
    if not is_distributed():
        raise RuntimeError("torch.distributed is not initialised; call init_distributed() first")
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP (or ``torch.compile``) wrapper, else ``model`` itself.

    Parameters
    ----------
    model : torch.nn.Module
        A module, possibly wrapped (also several times).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> net = nn.Linear(2, 2)
    >>> unwrap_model(net) is net
    True

    ``torch.compile`` keeps the original as ``_orig_mod``; a stand-in for it:

    >>> class Compiled(nn.Module):
    ...     def __init__(self, module):
    ...         super().__init__()
    ...         self._orig_mod = module
    >>> unwrap_model(Compiled(Compiled(net))) is net
    True
    """
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
