"""The hyper-parameters of one training run, as a frozen, validated dataclass.

:class:`TrainConfig` holds everything that defines a run of
:class:`~odl_learned.training.Trainer` (steps, batch size, optimiser, learning
rate schedule, loss, seed, how often to validate and to checkpoint). It is
immutable, checked at construction (a bad value raises ``ValueError`` naming the
field, a value of the wrong type ``TypeError``) and round-trips through JSON with
:meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict`, so that every
checkpoint can carry the config that made it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odl_learned._checks import check_choice, check_positive

__all__ = ("TrainConfig", "LOSSES", "LR_SCHEDULES", "OPTIMIZERS", "AMP_DTYPES")

LOSSES = ("mse", "l1", "psnr")
LR_SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adam", "adamw", "sgd")
AMP_DTYPES = ("float16", "bfloat16")


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_optional_positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return int(check_positive(name, value, integer=True))


def _check_float(name: str, value: Any, *, minimum: float, maximum: float = math.inf,
                 strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    low_ok = value > minimum if strict else value >= minimum
    if not (math.isfinite(value) and low_ok and value <= maximum):
        op = ">" if strict else ">="
        upper = f" and <= {maximum}" if math.isfinite(maximum) else ""
        raise ValueError(f"{name} must be a finite number {op} {minimum}{upper}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (immutable, validated).

    Parameters
    ----------
    num_steps : int
        Number of optimiser steps (the run length; not epochs).
    batch_size : int
        Samples per step *and per process*: with ``W`` data-parallel processes
        one step sees ``W * batch_size`` samples.
    learning_rate : float
        Peak learning rate.
    lr_schedule : {'cosine', 'constant'}
        ``'cosine'`` decays from ``learning_rate`` to
        ``min_lr_ratio * learning_rate`` over the steps after the warm-up.
    warmup_steps : int
        Linear warm-up steps at the start (``0``: none); at most ``num_steps``.
    min_lr_ratio : float
        Final learning rate of the cosine schedule, relative, in ``[0, 1]``.
    optimizer : {'adam', 'adamw', 'sgd'}
        ``'sgd'`` uses momentum 0.9.
    weight_decay : float
        Weight decay (decoupled for ``'adamw'``, an L2 term otherwise).
    grad_clip : float or None
        Clip the global gradient norm to this value; ``None``: no clipping.
    loss : {'mse', 'l1', 'psnr'}
        Training loss between network output and ground truth: mean over
        all pixels of the batch, or (``'psnr'``) minus the mean PSNR of its
        images (:func:`~odl_learned.training.trainer.negative_psnr_loss`).
    seed : int
        Seeds the sample order and the torch, NumPy and Python random
        generators at the start of a run. Same seed and same initial model:
        same losses.
    validate_every : int or None
        Validate every this many steps; ``None``: only after the last step.
        (Only used when a validation dataset is given.)
    checkpoint_every : int or None
        Write the ``last`` checkpoint every this many steps; ``None``: only
        after the last step and on interruption. (Only used with a
        checkpoint directory.)
    val_batch_size : int or None
        Batch size for validation; ``None``: ``batch_size``.
    num_workers : int
        :class:`torch.utils.data.DataLoader` worker processes (``0``: load in
        the main process).
    amp : bool
        Mixed precision (``torch.autocast`` and, for float16, a
        ``GradScaler``). Used only on CUDA; ignored on the CPU.
    amp_dtype : {'float16', 'bfloat16'}
        The reduced precision of ``amp``.
    deterministic : bool
        Ask torch for deterministic algorithms (cuDNN deterministic, no
        benchmark). Needed for bit-exact resumption on CUDA; the CPU is
        deterministic anyway.

    Raises
    ------
    ValueError
        A value out of range or an unknown choice; the message names the
        field.
    TypeError
        A value of the wrong type (e.g. ``num_steps=2.5``).

    Examples
    --------
    >>> cfg = TrainConfig(num_steps=100, batch_size=8, learning_rate=1e-3)
    >>> cfg.lr_schedule, cfg.loss
    ('cosine', 'mse')
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.replace(num_steps=200).num_steps
    200
    >>> TrainConfig(num_steps=0)
    Traceback (most recent call last):
    ...
    ValueError: num_steps must be a positive integer, got 0
    """

    num_steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = None
    loss: str = "mse"
    seed: int = 0
    validate_every: int | None = None
    checkpoint_every: int | None = None
    val_batch_size: int | None = None
    num_workers: int = 0
    amp: bool = False
    amp_dtype: str = "float16"
    deterministic: bool = False

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_("num_steps", int(check_positive("num_steps", self.num_steps, integer=True)))
        set_("batch_size", int(check_positive("batch_size", self.batch_size, integer=True)))
        set_("learning_rate", _check_float("learning_rate", self.learning_rate,
                                           minimum=0.0, strict=True))
        set_("lr_schedule", check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES))
        set_("warmup_steps", _check_int("warmup_steps", self.warmup_steps, minimum=0))
        if self.warmup_steps > self.num_steps:
            raise ValueError(
                f"warmup_steps must be <= num_steps ({self.num_steps}), got {self.warmup_steps}"
            )
        set_("min_lr_ratio", _check_float("min_lr_ratio", self.min_lr_ratio,
                                          minimum=0.0, maximum=1.0))
        set_("optimizer", check_choice("optimizer", self.optimizer, OPTIMIZERS))
        set_("weight_decay", _check_float("weight_decay", self.weight_decay, minimum=0.0))
        if self.grad_clip is not None:
            set_("grad_clip", _check_float("grad_clip", self.grad_clip, minimum=0.0, strict=True))
        set_("loss", check_choice("loss", self.loss, LOSSES))
        set_("seed", _check_int("seed", self.seed, minimum=0))
        set_("validate_every", _check_optional_positive_int("validate_every", self.validate_every))
        set_("checkpoint_every",
             _check_optional_positive_int("checkpoint_every", self.checkpoint_every))
        set_("val_batch_size", _check_optional_positive_int("val_batch_size", self.val_batch_size))
        set_("num_workers", _check_int("num_workers", self.num_workers, minimum=0))
        set_("amp", _check_bool("amp", self.amp))
        set_("amp_dtype", check_choice("amp_dtype", self.amp_dtype, AMP_DTYPES))
        set_("deterministic", _check_bool("deterministic", self.deterministic))

    def lr_factor(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based), relative to ``learning_rate``.

        Linear warm-up over ``warmup_steps`` steps, then constant or a cosine
        decay to ``min_lr_ratio`` (reached just after the last step).

        Examples
        --------
        >>> cfg = TrainConfig(num_steps=10, warmup_steps=2, lr_schedule="cosine")
        >>> [round(cfg.lr_factor(s), 3) for s in (0, 1, 2, 6, 9)]
        [0.5, 1.0, 1.0, 0.5, 0.038]
        """
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return 1.0
        t = min(1.0, (step - self.warmup_steps) / max(1, self.num_steps - self.warmup_steps))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-able ``dict`` (plain ints, floats, strings, None).

        Returns
        -------
        dict
            Field name to value, for every field.

        Examples
        --------
        >>> import json
        >>> d = TrainConfig(num_steps=5, grad_clip=1.0).to_dict()
        >>> d["num_steps"], d["grad_clip"], d["validate_every"]
        (5, 1.0, None)
        >>> TrainConfig(**json.loads(json.dumps(d))) == TrainConfig(num_steps=5, grad_clip=1.0)
        True
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Make a config from :meth:`to_dict`'s output; unknown keys raise ``ValueError``.

        Missing keys take their defaults.

        Parameters
        ----------
        data : mapping
            Field name to value (a subset of the fields).

        Returns
        -------
        TrainConfig
            The validated config.

        Examples
        --------
        >>> cfg = TrainConfig.from_dict({"num_steps": 50, "loss": "l1"})
        >>> cfg.num_steps, cfg.loss, cfg.batch_size == TrainConfig().batch_size
        (50, 'l1', True)
        >>> TrainConfig.from_dict({"num_step": 50})
        Traceback (most recent call last):
        ...
        ValueError: unknown TrainConfig field(s) 'num_step'; expected some of num_steps, ...
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping of field names to values, got "
                            f"{type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"unknown TrainConfig field(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(names)}"
            )
        return cls(**dict(data))

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with ``changes`` applied (and validated).

        Parameters
        ----------
        **changes
            New values of fields.

        Returns
        -------
        TrainConfig
            The new config; ``self`` is unchanged.

        Examples
        --------
        >>> cfg = TrainConfig(num_steps=100)
        >>> longer = cfg.replace(num_steps=200, seed=1)
        >>> longer.num_steps, longer.seed, cfg.num_steps
        (200, 1, 100)
        >>> cfg.replace(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be a positive integer, got 0
        """
        return dataclasses.replace(self, **changes)
