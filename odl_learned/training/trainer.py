"""The training loop: any ``nn.Module`` mapping a batch ``y`` to a batch ``x``.

:class:`Trainer` knows nothing of ODL: it trains a plain
:class:`torch.nn.Module` on a dataset of ``(y, x)`` tensor pairs (each without
a batch axis) with the loss, optimiser and learning-rate schedule of a
:class:`~odl_learned.training.TrainConfig`, and returns a history of the losses
and validation metrics. It takes care of

- reproducibility: the sample order is a seeded permutation per epoch indexed
  by the step (:class:`~odl_learned.training.DeterministicBatchSampler`), and
  the torch, NumPy and Python generators are seeded at the start; the same
  seed and the same initial model give the same losses;
- checkpoints (atomic files, :mod:`~odl_learned.training.checkpoint`): ``last``
  every ``checkpoint_every`` steps, at the end and on Ctrl-C, and ``best`` by
  validation PSNR; resuming restores model, optimiser, scheduler, scaler,
  sampler position and generator states, so that an interrupted and resumed
  run has *exactly* the losses and weights of an uninterrupted one;
- validation with PSNR and SSIM (:mod:`odl_learned.metrics`, data range of
  each ground truth), gradient clipping, mixed precision on CUDA, a tqdm
  progress bar, and data-parallel training over several processes
  (:mod:`~odl_learned.training.distributed`).

Bit-exact resumption assumes that ``dataset[i]`` depends on ``i`` only (as
for datasets of precomputed or index-seeded pairs); randomness drawn in
:class:`~torch.utils.data.DataLoader` worker processes is not part of the
checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from odl_learned.training import distributed as _dist
from odl_learned.training.checkpoint import atomic_torch_save, load_checkpoint, save_checkpoint
from odl_learned.training.config import TrainConfig
from odl_learned.training.rng import derive_seed, get_rng_state, seed_everything, set_rng_state
from odl_learned.training.sampler import DeterministicBatchSampler

__all__ = ("Trainer", "Metric", "Callback", "default_metrics", "negative_psnr_loss")

#: ``metric(x_pred, x_true)`` on CPU float tensors ``(B, C, ...)`` -> per-image values ``(B,)``
Metric = Callable[[torch.Tensor, torch.Tensor], Any]
#: ``callback(trainer, step, loss)``, called after every step
Callback = Callable[["Trainer", int, float], None]

CHECKPOINT_FORMAT = 1
_GLOBAL_RNG_KEY = 2  # derive_seed keys: 1 is the sample order
_LOADER_KEY = 3
_SIGNAL_DEBOUNCE_S = 2.0  # torchrun forwards the terminal's SIGINT: one press, two signals
#: config fields that may change between an interrupted run and its resumption
#: without changing the losses
_HARMLESS_FIELDS = frozenset(
    {"validate_every", "checkpoint_every", "val_batch_size", "num_workers"})


def default_metrics() -> dict[str, Metric]:
    """PSNR and SSIM of :mod:`odl_learned.metrics`, per image, data range of the ground truth.

    SSIM needs images of at least 7 x 7 pixels; pass ``metrics={'psnr': ...}``
    to :class:`Trainer` for smaller ones.

    Returns
    -------
    dict of str to callable
        ``{'psnr': ..., 'ssim': ...}``, each ``metric(x_pred, x_true)`` on
        batches ``(B, C, ...)`` returning per-image values ``(B,)``.

    Examples
    --------
    >>> metrics = default_metrics()
    >>> sorted(metrics)
    ['psnr', 'ssim']
    >>> true = torch.zeros(2, 1, 8, 8)
    >>> true[..., 4:] = 1.0  # data range 1
    >>> np.asarray(metrics["ssim"](true, true)).tolist()  # identical images
    [1.0, 1.0]
    >>> np.round(metrics["psnr"](true + 0.1, true), 4).tolist()  # MSE 0.01: 10 log10(1 / 0.01)
    [20.0, 20.0]
    """
    from odl_learned.metrics import psnr, ssim  # imported late: only validation needs it

    return {
        "psnr": lambda pred, true: psnr(pred, true, batch=True),
        "ssim": lambda pred, true: ssim(pred, true, batch=True),
    }


def _check_pair_dataset(name: str, dataset: Any) -> None:
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"{name} must be a map-style dataset (__len__ and __getitem__), got "
                        f"{type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty")
    item = dataset[0]
    if not (isinstance(item, (tuple, list)) and len(item) == 2
            and all(isinstance(t, torch.Tensor) for t in item)):
        kind = type(item).__name__ if not isinstance(item, (tuple, list)) else \
            f"{type(item).__name__} of {[type(t).__name__ for t in item]}"
        raise TypeError(f"{name}[0] must be a pair (y, x) of tensors without a batch axis, "
                        f"got {kind}")


def _make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9,
                           weight_decay=cfg.weight_decay)


def negative_psnr_loss(pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Minus the mean PSNR of a batch, in dB: :math:`-\frac1B \sum_i 10 \log_{10}(R_i^2 / \mathrm{MSE}_i)`.

    :math:`R_i` is the range of ground truth ``x[i]`` (as in
    :func:`odl_learned.metrics.psnr`), a constant for the network. Unlike the MSE of
    the whole batch, which is dominated by its worst images, each image counts by its
    relative error, so a network is not rewarded for a small gain on hard images that
    costs much more on easy ones (the benchmark's score is the mean PSNR). Written in
    torch because :func:`odl_learned.metrics.psnr` works on NumPy arrays, without a
    gradient.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    >>> pred = x + torch.tensor([[0.1, -0.1], [0.2, 0.2]])  # MSE 0.01 and 0.04, ranges 1 and 2
    >>> round(float(negative_psnr_loss(pred, x)), 4)  # both 20 dB
    -20.0
    """
    dims = tuple(range(1, x.ndim))
    mse = ((pred - x) ** 2).mean(dim=dims)
    peak = (x.amax(dim=dims) - x.amin(dim=dims)).clamp_min(torch.finfo(x.dtype).tiny)
    return (10.0 * torch.log10(mse.clamp_min(1e-20) / peak**2)).mean()


_LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss, "psnr": negative_psnr_loss}


def _make_loss(cfg: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return _LOSSES[cfg.loss]


class Trainer:
    """Train ``model`` so that ``model(y) ~ x`` on a dataset of ``(y, x)`` pairs.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch ``y`` of shape ``(B, *y.shape)`` to a batch of the shape
        of ``x``. Moved to ``device``; trained in place.
    train_dataset : map-style dataset
        ``dataset[i]`` is a pair ``(y, x)`` of tensors without a batch axis.
    config : TrainConfig
        The hyper-parameters.
    val_dataset : map-style dataset, optional
        Pairs to validate on (loss and ``metrics``), every
        ``config.validate_every`` steps and after the last step.
    checkpoint_dir : str or os.PathLike, optional
        Where ``last.pt`` and ``best.pt`` (and their ``.json`` sidecars) go.
        Without it nothing is written.
    device : str or torch.device, optional
        Default: ``cuda:LOCAL_RANK`` when distributed on CUDA, else ``cuda``
        if available, else the CPU.
    metrics : mapping of str to callable, optional
        ``metric(x_pred, x_true) -> values (B,)`` on CPU float tensors.
        Default: :func:`default_metrics` (``'psnr'``, ``'ssim'``). The
        ``best`` checkpoint is chosen by ``'psnr'`` if present, else by the
        validation loss.
    callbacks : sequence of callable, optional
        ``callback(trainer, step, loss)`` after every step (after validation
        and checkpointing of that step). It may call :meth:`request_stop`.
    progress : bool, optional
        Show a tqdm progress bar (main process only).
    distributed : bool, optional
        Data-parallel over the processes of ``torch.distributed``. Default:
        whether it is initialised (see :func:`init_distributed`).

    Attributes
    ----------
    step : int
        Steps done so far.
    elapsed_seconds : float
        Wall-clock seconds spent training (in :meth:`fit`) up to the last
        finished step, over the whole run: a resumed run continues the count
        kept in the checkpoint.
    history : dict
        ``'loss'`` and ``'lr'``: per step; ``'val_step'``, ``'val_loss'`` and
        ``'val_<metric>'``: per validation (the mean over the validation set).
    best : dict or None
        ``{'metric', 'value', 'step'}`` of the best validation so far.

    Notes
    -----
    ``fit`` seeds the global torch, NumPy and Python generators at the start
    of a fresh run (with a seed derived from ``config.seed`` and the rank).
    While ``fit`` runs in the main thread, a Ctrl-C (SIGINT) finishes the
    current step, writes ``last.pt`` and then raises ``KeyboardInterrupt``; a
    second Ctrl-C (after two seconds) interrupts at once, without a
    checkpoint. A ``KeyboardInterrupt`` raised by a callback also writes the
    checkpoint (single-process runs) before propagating.

    In a distributed run every process constructs the Trainer (the model is
    wrapped in DDP) and calls :meth:`fit`, :meth:`validate` and
    :meth:`save_checkpoint`; only rank 0 writes files and shows progress.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.rand(16, 1, 8, 8)
    >>> data = TensorDataset(2 * x, x)  # learn y -> y / 2
    >>> model = nn.Conv2d(1, 1, 3, padding=1)
    >>> cfg = TrainConfig(num_steps=30, batch_size=4, learning_rate=0.05)
    >>> trainer = Trainer(model, data, cfg, val_dataset=data, device="cpu", progress=False)
    >>> history = trainer.fit()
    >>> len(history["loss"]), history["val_step"]
    (30, [30])
    >>> bool(history["loss"][-1] < history["loss"][0])
    True
    """

    LAST = "last.pt"
    BEST = "best.pt"

    def __init__(self, model: nn.Module, train_dataset: Dataset, config: TrainConfig, *,
                 val_dataset: Dataset | None = None,
                 checkpoint_dir: str | Path | None = None,
                 device: str | torch.device | None = None,
                 metrics: Mapping[str, Metric] | None = None,
                 callbacks: Sequence[Callback] = (),
                 progress: bool = True,
                 distributed: bool | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        _check_pair_dataset("train_dataset", train_dataset)
        if val_dataset is not None:
            _check_pair_dataset("val_dataset", val_dataset)
        if metrics is not None and not (isinstance(metrics, Mapping)
                                        and all(callable(m) for m in metrics.values())):
            raise TypeError("metrics must be a mapping of names to callables metric(pred, true)")
        if any(not callable(cb) for cb in callbacks):
            raise TypeError("callbacks must be callables callback(trainer, step, loss)")

        self.config = config
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.metrics: dict[str, Metric] = dict(metrics) if metrics is not None else {}
        self._default_metrics = metrics is None
        self.callbacks = list(callbacks)
        self.progress = bool(progress)

        self.distributed = _dist.is_distributed() if distributed is None else bool(distributed)
        if self.distributed and not _dist.is_distributed():
            raise ValueError("distributed=True needs an initialised torch.distributed; call "
                             "init_distributed() first (under torchrun)")
        self.rank = _dist.get_rank() if self.distributed else 0
        self.world_size = _dist.get_world_size() if self.distributed else 1

        if device is None:
            if self.distributed:
                device = _dist.init_distributed().device
            else:
                device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        model = model.to(self.device)
        self.model = _dist.unwrap_model(model)  # the plain module: state, validation, export
        # the module as given (e.g. torch.compile-d) computes the training steps
        self._train_model = _dist.wrap_ddp(model, self.device) if self.distributed else model

        self.optimizer = _make_optimizer(self.model.parameters(), config)
        # a plain function (not a callable object) so that the scheduler's state
        # never overrides the schedule of the config in use
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: self.config.lr_factor(step))
        self.use_amp = bool(config.amp and self.device.type == "cuda")
        self._amp_dtype = torch.float16 if config.amp_dtype == "float16" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self._amp_dtype == torch.float16)
        self.loss_fn = _make_loss(config)

        self.step = 0
        self.elapsed_seconds = 0.0
        self.samples_seen = 0  # position in the sample stream (all processes together)
        self.history: dict[str, list[float]] = {"loss": [], "lr": []}
        self.best: dict[str, Any] | None = None
        self._started = False
        self._stop_requested = False
        self._sigint = False
        self._last_saved_step: int | None = None

    # --- small helpers -----------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """True in the process that writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def samples_per_step(self) -> int:
        """Samples one step consumes over all processes."""
        return self.world_size * self.config.batch_size

    def resize(self, num_steps: int) -> None:
        """End the run after ``num_steps`` steps instead, fewer or more (schedule included).

        For a time budget: the learning-rate schedule (e.g. cosine) is
        recomputed for the new length, so a run fitted to a budget still ends
        with its schedule completed rather than stopped half-way. ``num_steps``
        must be at least the current step (and at least 1).

        Examples
        --------
        >>> import torch
        >>> data = [(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))] * 4
        >>> trainer = Trainer(torch.nn.Conv2d(1, 1, 1), data, TrainConfig(num_steps=10, batch_size=2),
        ...                   progress=False)
        >>> trainer.resize(3)
        >>> len(trainer.fit()["loss"])
        3
        >>> trainer.resize(5)
        >>> len(trainer.fit()["loss"])
        5
        """
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < max(self.step, 1):
            raise ValueError(f"num_steps must be an integer >= {max(self.step, 1)}, got {num_steps!r}")
        self.config = self.config.replace(num_steps=num_steps)

    def request_stop(self) -> None:
        """Ask :meth:`fit` to stop after this step, write ``last.pt``, then raise KeyboardInterrupt.

        Examples
        --------
        A callback that stops the run after two steps; a later :meth:`fit`
        continues it:

        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> stop_at_2 = lambda trainer, step, loss: trainer.request_stop() if step == 2 else None
        >>> trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, TrainConfig(num_steps=5, batch_size=2),
        ...                   callbacks=[stop_at_2], device="cpu", progress=False)
        >>> try:
        ...     trainer.fit()
        ... except KeyboardInterrupt:
        ...     print("stopped after step", trainer.step)
        stopped after step 2
        >>> trainer.callbacks.clear()
        >>> len(trainer.fit()["loss"])
        5
        """
        self._stop_requested = True

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=self.device.type == "cuda")

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.use_amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return DataLoader(dataset, num_workers=self.config.num_workers,
                          pin_memory=self.device.type == "cuda", **kwargs)

    # --- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The complete training state (what a checkpoint holds).

        Keys: ``format``, ``model``, ``optimizer``, ``scheduler``, ``scaler``,
        ``step``, ``sampler`` (stream ``position``, ``seed``, ``num_samples``,
        ``batch_size``, ``world_size``), ``rng`` (one generator state per
        process), ``history``, ``best`` and ``config`` (a dict). In a
        distributed run every process must call it (the generator states are
        gathered).

        Returns
        -------
        dict
            Tensors and plain containers only (``torch.load(...,
            weights_only=True)`` reads it back).

        Examples
        --------
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, TrainConfig(num_steps=3, batch_size=2),
        ...                   device="cpu", progress=False)
        >>> _ = trainer.fit()
        >>> state = trainer.state_dict()
        >>> state["step"], state["sampler"]["position"], len(state["history"]["loss"])
        (3, 6, 3)
        >>> state["config"]["batch_size"]
        2
        """
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "elapsed_seconds": self.elapsed_seconds,
            "sampler": {
                "position": self.samples_seen,
                "seed": self.config.seed,
                "num_samples": len(self.train_dataset),
                "batch_size": self.config.batch_size,
                "world_size": self.world_size,
            },
            "rng": _dist.all_gather_object(get_rng_state()) if self.distributed
            else [get_rng_state()],
            "history": {key: list(values) for key, values in self.history.items()},
            "best": dict(self.best) if self.best is not None else None,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (or a loaded checkpoint).

        The next :meth:`fit` continues from it. The generator states are
        restored at once. A config that differs from the saved one in fields
        that change the losses gives a warning; a training set of another
        length raises ``ValueError``.

        Parameters
        ----------
        state : mapping
            A training state, as :meth:`state_dict` returns it.

        Examples
        --------
        A trainer restored from another's state continues exactly as the
        original does:

        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> cfg = TrainConfig(num_steps=6, batch_size=2)
        >>> import copy
        >>> saved = []  # a deep copy: the state's tensors are the live ones
        >>> def keep_step_3(trainer, step, loss):
        ...     if step == 3:
        ...         saved.append(copy.deepcopy(trainer.state_dict()))
        >>> original = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, cfg, callbacks=[keep_step_3],
        ...                    device="cpu", progress=False)
        >>> history = original.fit()
        >>> restored = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, cfg, device="cpu", progress=False)
        >>> restored.load_state_dict(saved[0])
        >>> restored.step
        3
        >>> restored.fit()["loss"] == history["loss"]
        True
        """
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown checkpoint format {state.get('format')!r}; expected "
                             f"{CHECKPOINT_FORMAT}")
        sampler = state["sampler"]
        if sampler["num_samples"] != len(self.train_dataset):
            raise ValueError(
                f"the checkpoint was trained on {sampler['num_samples']} samples but "
                f"train_dataset has {len(self.train_dataset)}; expected the same dataset"
            )
        saved = state.get("config", {})
        if saved.get("optimizer", self.config.optimizer) != self.config.optimizer:
            raise ValueError(f"the checkpoint was trained with optimizer {saved['optimizer']!r}; "
                             f"cannot continue it with {self.config.optimizer!r}")
        current = self.config.to_dict()
        harmless = set(_HARMLESS_FIELDS)
        if current["lr_schedule"] == saved.get("lr_schedule") == "constant":
            harmless.add("num_steps")  # extending a constant-rate run changes nothing before
        changed = sorted(k for k in current if k in saved and saved[k] != current[k]
                         and k not in harmless)
        if changed:
            warnings.warn(
                "resuming with a config that differs from the checkpoint's in "
                + ", ".join(f"{k} ({saved[k]!r} -> {current[k]!r})" for k in changed)
                + "; the continued run will not match an uninterrupted one",
                stacklevel=2,
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # the optimiser's saved hyper-parameters give way to this config's (the same values
        # when the config is unchanged): learning rate schedule and weight decay
        self.scheduler.base_lrs = [self.config.learning_rate] * len(self.optimizer.param_groups)
        factor = self.config.lr_factor(self.scheduler.last_epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["initial_lr"] = base_lr
            group["lr"] = base_lr * factor
            group["weight_decay"] = self.config.weight_decay
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.elapsed_seconds = float(state.get("elapsed_seconds", 0.0))  # absent in older checkpoints
        self.samples_seen = int(sampler["position"])
        self.history = {key: list(values) for key, values in state["history"].items()}
        self.best = dict(state["best"]) if state.get("best") is not None else None
        rng = state.get("rng") or []
        if len(rng) == self.world_size:
            set_rng_state(rng[self.rank])
        else:
            warnings.warn(
                f"the checkpoint holds generator states of {len(rng)} process(es), this run has "
                f"{self.world_size}; reseeding them (the continued run is reproducible but "
                "differs from an uninterrupted one)", stacklevel=2)
            seed_everything(derive_seed(self.config.seed, _GLOBAL_RNG_KEY, self.rank, self.step))
        self._started = True
        self._last_saved_step = self.step

    def save_checkpoint(self, name: str = LAST) -> Path | None:
        """Write the training state to ``checkpoint_dir / name`` (atomically).

        Returns the path on the main process, ``None`` elsewhere. In a
        distributed run every process must call it.

        Parameters
        ----------
        name : str, optional
            File name in ``checkpoint_dir`` (default ``'last.pt'``).

        Returns
        -------
        pathlib.Path or None

        Examples
        --------
        >>> import os, tempfile
        >>> from odl_learned.training import load_checkpoint
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, TrainConfig(num_steps=2, batch_size=2),
        ...                       checkpoint_dir=tmp, device="cpu", progress=False)
        ...     path = trainer.save_checkpoint("start.pt")
        ...     files = sorted(os.listdir(tmp))
        ...     step = load_checkpoint(path)["step"]
        >>> files, step
        (['start.json', 'start.pt'], 0)
        """
        if self.checkpoint_dir is None:
            raise ValueError("no checkpoint_dir was given to this Trainer")
        state = self.state_dict()  # collective in a distributed run
        path = save_checkpoint(self.checkpoint_dir / name, state) if self.is_main else None
        if name == self.LAST:
            self._last_saved_step = self.step
        if self.distributed:
            _dist.barrier()  # the file exists for every process once this returns
        return path

    def export_weights(self, path: str | Path) -> Path | None:
        """Write only the model's ``state_dict`` (CPU tensors) to ``path``, atomically.

        A small file to ship or to load with
        ``model.load_state_dict(torch.load(path, weights_only=True))``.
        Returns the path on the main process, ``None`` elsewhere.

        Parameters
        ----------
        path : str or os.PathLike
            Target file; parent directories are made.

        Returns
        -------
        pathlib.Path or None

        Examples
        --------
        >>> import os, tempfile
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, TrainConfig(num_steps=2, batch_size=2),
        ...                   device="cpu", progress=False)
        >>> _ = trainer.fit()
        >>> copy = nn.Conv2d(1, 1, 3, padding=1)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = trainer.export_weights(os.path.join(tmp, "conv.pt"))
        ...     copy.load_state_dict(torch.load(path, weights_only=True))
        <All keys matched successfully>
        >>> torch.equal(copy.weight, trainer.model.weight)
        True
        """
        if not self.is_main:
            return None
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return atomic_torch_save(weights, path)

    @classmethod
    def resume(cls, checkpoint_dir: str | Path, model: nn.Module, train_dataset: Dataset,
               config: TrainConfig | None = None, *, checkpoint: str = LAST,
               **kwargs: Any) -> Trainer:
        """Make a Trainer from ``checkpoint_dir / checkpoint``; :meth:`fit` then continues.

        Parameters
        ----------
        checkpoint_dir : str or os.PathLike
            A ``checkpoint_dir`` of an earlier run (also this one's).
        model, train_dataset :
            As for :class:`Trainer`; the model's weights are replaced by the
            checkpoint's.
        config : TrainConfig, optional
            Default: the checkpoint's. A larger ``num_steps`` extends the
            run (and, with the cosine schedule, changes it from then on).
        checkpoint : str, optional
            File name in ``checkpoint_dir`` (``'last.pt'`` or ``'best.pt'``).
        **kwargs
            Other :class:`Trainer` arguments.

        Returns
        -------
        Trainer
            At the checkpoint's step.

        Examples
        --------
        >>> import tempfile
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> cfg = TrainConfig(num_steps=3, batch_size=2, lr_schedule="constant")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     first = Trainer(nn.Conv2d(1, 1, 3, padding=1), data, cfg, checkpoint_dir=tmp,
        ...                     device="cpu", progress=False)
        ...     _ = first.fit()  # writes last.pt at the end
        ...     trainer = Trainer.resume(tmp, nn.Conv2d(1, 1, 3, padding=1), data,
        ...                              cfg.replace(num_steps=5), device="cpu", progress=False)
        ...     start = trainer.step
        ...     history = trainer.fit()
        >>> start, len(history["loss"])
        (3, 5)
        >>> history["loss"][:3] == first.history["loss"]
        True
        """
        state = load_checkpoint(Path(checkpoint_dir) / checkpoint)
        if config is None:
            config = TrainConfig.from_dict(state["config"])
        trainer = cls(model, train_dataset, config, checkpoint_dir=checkpoint_dir, **kwargs)
        trainer.load_state_dict(state)
        return trainer

    # --- validation ------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self, dataset: Dataset | None = None) -> dict[str, float]:
        """Mean loss and metrics over ``dataset`` (default: ``val_dataset``).

        The model is evaluated in ``eval`` mode without touching the random
        generators' states (so validating never changes the training
        trajectory). Distributed: each process evaluates a shard and the sums
        are all-reduced; every process gets the same result (every process
        must call it).

        Parameters
        ----------
        dataset : map-style dataset, optional
            Pairs ``(y, x)``; default: ``val_dataset``.

        Returns
        -------
        dict of str to float
            ``'loss'`` and one entry per metric, means over the images.

        Examples
        --------
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> halve = nn.Conv2d(1, 1, 1, bias=False)
        >>> _ = nn.init.constant_(halve.weight, 0.5)  # the exact solution y -> y / 2
        >>> max_error = lambda pred, true: (pred - true).flatten(1).abs().amax(1)  # per image
        >>> trainer = Trainer(halve, data, TrainConfig(num_steps=1, batch_size=2),
        ...                   metrics={"max_error": max_error}, device="cpu", progress=False)
        >>> trainer.validate(data)
        {'loss': 0.0, 'max_error': 0.0}
        """
        dataset = self.val_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("no val_dataset to validate on")
        if self._default_metrics and not self.metrics:
            self.metrics = default_metrics()
        names = list(self.metrics)
        shard = Subset(dataset, range(self.rank, len(dataset), self.world_size)) \
            if self.world_size > 1 else dataset
        batch_size = self.config.val_batch_size or self.config.batch_size
        sums = torch.zeros(2 + len(names), dtype=torch.float64)  # count, loss, metrics
        was_training = self.model.training
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                for y, x in self._loader(shard, batch_size=batch_size, shuffle=False):
                    y, x = self._to_device(y), self._to_device(x)
                    with self._autocast():
                        pred = self.model(y)
                    pred = pred.float()
                    n = x.shape[0]
                    sums[0] += n
                    sums[1] += float(self.loss_fn(pred, x.float())) * n
                    pred_cpu, x_cpu = pred.detach().cpu(), x.detach().float().cpu()
                    for i, name in enumerate(names):
                        values = np.asarray(self.metrics[name](pred_cpu, x_cpu), dtype=np.float64)
                        sums[2 + i] += values.sum() if values.ndim else float(values) * n
        finally:
            self.model.train(was_training)
        if self.distributed:
            sums = _dist.all_reduce_sum(sums.to(self.device)).cpu()
        count = max(float(sums[0]), 1.0)
        result = {"loss": float(sums[1]) / count}
        result.update({name: float(sums[2 + i]) / count for i, name in enumerate(names)})
        return result

    def _record_validation(self) -> dict[str, float]:
        result = self.validate()
        self.history.setdefault("val_step", []).append(self.step)
        for name, value in result.items():
            self.history.setdefault(f"val_{name}", []).append(value)
        metric, sign = ("psnr", 1.0) if "psnr" in result else ("loss", -1.0)
        value = result[metric]
        if self.best is None or sign * value > sign * self.best["value"]:
            self.best = {"metric": metric, "value": value, "step": self.step}
            if self.checkpoint_dir is not None:
                self.save_checkpoint(self.BEST)
        return result

    # --- training --------------------------------------------------------------------------------

    def _start_fresh(self) -> None:
        seed_everything(derive_seed(self.config.seed, _GLOBAL_RNG_KEY, self.rank))
        self._started = True

    def _resume_from_dir(self) -> bool:
        if self.checkpoint_dir is None:
            raise ValueError("fit(resume=True) needs a checkpoint_dir")
        path = self.checkpoint_dir / self.LAST
        if self._started or not path.is_file():
            return False
        self.load_state_dict(load_checkpoint(path))
        return True

    def _train_loader(self, num_batches: int) -> DataLoader:
        sampler = DeterministicBatchSampler(
            len(self.train_dataset), self.config.batch_size, self.config.seed, num_batches,
            start=self.samples_seen, rank=self.rank, world_size=self.world_size)
        # the loader's own generator: creating its iterator never draws from the global one
        generator = torch.Generator().manual_seed(
            derive_seed(self.config.seed, _LOADER_KEY, self.rank, self.samples_seen))
        return self._loader(self.train_dataset, batch_sampler=sampler, generator=generator)

    def _train_step(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        model = self._train_model
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        lr = float(self.optimizer.param_groups[0]["lr"])
        with self._autocast():
            pred = model(y)
        if pred.shape != x.shape:
            raise ValueError(f"the model maps y of shape {tuple(y.shape)} to shape "
                             f"{tuple(pred.shape)}; expected the shape of x, {tuple(x.shape)}")
        loss = self.loss_fn(pred.float(), x.float())
        self.scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scaler.is_enabled():
            # the scaler skips the optimiser's step on overflow; the schedule still follows
            # the step count (torch warns about that once)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\)")
                self.scheduler.step()
        else:
            self.scheduler.step()
        return loss.detach(), lr

    def _reduce_step(self, loss: torch.Tensor) -> tuple[float, bool]:
        """Mean loss over the processes and whether any of them was asked to stop."""
        if not self.distributed:
            return float(loss), self._stop_requested
        buf = torch.stack([loss.float(), torch.tensor(float(self._stop_requested),
                                                      device=loss.device)])
        _dist.all_reduce_sum(buf)
        return float(buf[0]) / self.world_size, bool(buf[1] > 0)

    def _due(self, every: int | None) -> bool:
        return self.step == self.config.num_steps or (every is not None and self.step % every == 0)

    def fit(self, *, resume: bool = False) -> dict[str, list[float]]:
        """Train until ``config.num_steps`` steps are done; return :attr:`history`.

        Parameters
        ----------
        resume : bool, optional
            Continue from ``checkpoint_dir / 'last.pt'`` if it exists (else
            start afresh). A Trainer that has trained or loaded a state
            continues from it anyway.

        Returns
        -------
        history : dict of lists
            See :attr:`history`; it covers the whole run, including the
            steps before a resumption.

        Raises
        ------
        KeyboardInterrupt
            After Ctrl-C, :meth:`request_stop` or a callback's
            ``KeyboardInterrupt``; ``last.pt`` is written first (if there is
            a ``checkpoint_dir``).
        FloatingPointError
            The loss became NaN or infinite (nothing is saved).

        Examples
        --------
        >>> from torch.utils.data import TensorDataset
        >>> x = torch.linspace(0, 1, 8 * 64).reshape(8, 1, 8, 8)
        >>> data = TensorDataset(2 * x, x)
        >>> _ = torch.manual_seed(0)
        >>> trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), data,
        ...                   TrainConfig(num_steps=20, batch_size=4, learning_rate=0.05, validate_every=10),
        ...                   val_dataset=data, metrics={}, device="cpu", progress=False)
        >>> history = trainer.fit()
        >>> len(history["loss"]), history["val_step"], trainer.step
        (20, [10, 20], 20)
        >>> bool(history["val_loss"][-1] < history["val_loss"][0])
        True
        >>> trainer.fit() is trainer.history  # done: nothing more to train
        True
        """
        cfg = self.config
        if resume:
            self._resume_from_dir()
        if not self._started:
            self._start_fresh()
        if cfg.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        self._stop_requested = self._sigint = False
        remaining = cfg.num_steps - self.step
        if remaining <= 0:
            return self.history
        bar = tqdm(total=cfg.num_steps, initial=self.step, desc="training", unit="step",
                   disable=not (self.progress and self.is_main), dynamic_ncols=True)
        consistent = True   # the state is that of a step boundary
        stop = False        # a (synchronised) stop request
        try:
            with _stop_on_sigint(self):
                batches = iter(self._train_loader(remaining))
                clock = time.monotonic()
                while self.step < self.config.num_steps:  # resize() may change it
                    consistent = False
                    try:
                        y, x = next(batches)
                    except StopIteration:  # resize() lengthened the run: batches for the rest
                        batches = iter(self._train_loader(self.config.num_steps - self.step))
                        bar.total = self.config.num_steps
                        y, x = next(batches)
                    loss, lr = self._train_step(self._to_device(y), self._to_device(x))
                    loss_value, stop = self._reduce_step(loss)
                    self.step += 1
                    self.samples_seen += self.samples_per_step
                    now = time.monotonic()
                    self.elapsed_seconds += now - clock
                    clock = now
                    self.history["loss"].append(loss_value)
                    self.history["lr"].append(lr)
                    consistent = True
                    if not math.isfinite(loss_value):
                        raise FloatingPointError(
                            f"the training loss is {loss_value} at step {self.step}; try a "
                            "smaller learning_rate or grad_clip")
                    bar.update(1)
                    postfix = {"loss": f"{loss_value:.3g}", "lr": f"{lr:.2g}"}
                    if self.val_dataset is not None and self._due(cfg.validate_every):
                        val = self._record_validation()
                        postfix.update({f"val_{k}": f"{v:.4g}" for k, v in val.items()})
                    bar.set_postfix(postfix, refresh=False)
                    if self.checkpoint_dir is not None and self._due(cfg.checkpoint_every):
                        self.save_checkpoint()
                    for callback in self.callbacks:
                        callback(self, self.step, loss_value)
                    if not self.distributed:
                        stop = self._stop_requested
                    if stop and self.step < self.config.num_steps:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self._on_interrupt(consistent, stop)
            raise
        finally:
            bar.close()
        if self._sigint:
            raise KeyboardInterrupt  # Ctrl-C during the last step: the run is complete and saved
        return self.history

    def _on_interrupt(self, consistent: bool, synchronised: bool) -> None:
        if self.checkpoint_dir is None:
            return
        if not consistent or (self.distributed and not synchronised):
            where = "in the middle of a step" if not consistent else \
                "on one process only (use request_stop() or Ctrl-C in distributed runs)"
            last = f"step {self._last_saved_step}" if self._last_saved_step is not None else "none"
            warnings.warn(f"training was interrupted {where}; no checkpoint written "
                          f"(last checkpoint: {last})", stacklevel=3)
            return
        path = self.checkpoint_dir / self.LAST
        if self._last_saved_step != self.step:
            self.save_checkpoint()
        if self.is_main:
            tqdm.write(f"interrupted after step {self.step}; checkpoint {path}; continue with "
                       "Trainer.resume(...) or fit(resume=True)")


@contextlib.contextmanager
def _stop_on_sigint(trainer: Trainer) -> Iterator[None]:
    """While active (main thread only), SIGINT asks ``trainer`` to stop at the next step boundary.

    A further SIGINT more than two seconds later raises ``KeyboardInterrupt`` at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
            trainer._sigint = True
            trainer.request_stop()
        elif now - first[0] > _SIGNAL_DEBOUNCE_S:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
