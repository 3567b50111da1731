"""Generic training of torch networks: ``model(y) ~ x`` on ``(y, x)`` pairs.

Plain torch, no ODL operators: anything that maps a batch ``y`` to a batch
``x`` (a post-processing U-Net, an unrolled solver wrapped by the bridge, ...)
is trained the same way.

- :mod:`~odl_learned.training.config`: :class:`TrainConfig`, the validated,
  JSON-able hyper-parameters.
- :mod:`~odl_learned.training.trainer`: :class:`Trainer`, the loop (seeded,
  validated with PSNR/SSIM, checkpointed, resumable bit for bit).
- :mod:`~odl_learned.training.checkpoint`: atomic :func:`save_checkpoint` /
  :func:`load_checkpoint`.
- :mod:`~odl_learned.training.sampler`: :class:`DeterministicBatchSampler`,
  the seeded, resumable, shardable sample order.
- :mod:`~odl_learned.training.rng`: seeding and saving the random generators.
- :mod:`~odl_learned.training.distributed`: data-parallel training launched by
  ``torchrun`` (single- and multi-node commands in its docstring).
"""

from odl_learned.training.checkpoint import (
    atomic_torch_save,
    checkpoint_json_path,
    load_checkpoint,
    save_checkpoint,
)
from odl_learned.training.config import TrainConfig
from odl_learned.training.distributed import (
    DistributedInfo,
    cleanup_distributed,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
)
from odl_learned.training.rng import derive_seed, get_rng_state, seed_everything, set_rng_state
from odl_learned.training.sampler import DeterministicBatchSampler
from odl_learned.training.trainer import Trainer, default_metrics, negative_psnr_loss

__all__ = (
    "TrainConfig",
    "Trainer",
    "default_metrics",
    "negative_psnr_loss",
    "save_checkpoint",
    "load_checkpoint",
    "atomic_torch_save",
    "checkpoint_json_path",
    "DeterministicBatchSampler",
    "derive_seed",
    "seed_everything",
    "get_rng_state",
    "set_rng_state",
    "DistributedInfo",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "is_main_process",
    "get_rank",
    "get_world_size",
)
