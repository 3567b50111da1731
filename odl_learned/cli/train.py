"""``odl-learned train METHOD --task ct|mri``: train a learned method on its reference problem.

Checkpoints go to ``--out`` (atomically, every ``--checkpoint-every`` steps and
on Ctrl-C); ``--resume`` continues a run exactly where it stopped, across
sessions; ``--max-minutes`` stops cleanly after a time budget (the run can be
resumed later with more steps or time). At the end the weights are exported
to ``OUT/TASK_METHOD.pt`` with a JSON beside them that records the
architecture, the training configuration and the budget used: the pair that
``odl-learned benchmark`` loads (copy it to ``odl_learned/weights/`` to ship it).

Started by ``torchrun`` the same command trains data-parallel (DDP), one process
per GPU or several CPU processes, on one machine or several::

    torchrun --standalone --nproc_per_node=4 -m odl_learned.cli.main train lpd --task ct
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_id=lpd1 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 -m odl_learned.cli.main train lpd --task ct --out /shared/runs/lpd

``--batch-size`` is per process. Rank 0 generates the CT training pairs of
``--cache-dir`` first and the other processes then read them; only rank 0 writes
checkpoints, weights and the info file, which records ``world_size``. The time
budget's resizing is agreed between the processes (the smallest run any of them
affords), so they always run the same number of steps. ``--out`` (and
``--cache-dir``) must be on a filesystem all machines share for ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable

from odl_learned._io import atomic_write_json

__all__ = ("add_parser", "run_train")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_parser(parser.add_subparsers())
    >>> parser.parse_args(["train", "lpd", "--task", "ct", "--steps", "10"]).steps
    10
    """
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS
    from odl_learned.training.config import LOSSES

    parser = subparsers.add_parser(
        "train",
        help="train a learned method on the CT or MRI reference problem (resumable)",
        description="Train a learned method on the training split of its reference problem and export its weights. "
        "Methods: " + "; ".join(f"{m.name} ({m.task}): {m.summary}" for m in LEARNED_METHODS.values()),
    )
    parser.add_argument("method", help=f"one of {', '.join(LEARNED_METHODS)}")
    parser.add_argument("--task", required=True, choices=("ct", "mri"), help="reference problem")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    parser.add_argument("--batch-size", type=int, help="batch size per process (default: the method's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the method's)")
    parser.add_argument("--loss", choices=LOSSES,
                        help="training loss; psnr: minus the mean PSNR of a batch's images (default: the method's)")
    parser.add_argument("--num-train", type=int, default=32000,
                        help="CT: training images (dival uses 32000; default 32000); MRI: all training slices")
    parser.add_argument("--num-val", type=int, default=16, help="validation images (default 16)")
    parser.add_argument("--size", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--out", default=None, help="run folder for checkpoints and weights (default runs/TASK_METHOD)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--init", metavar="WEIGHTS", help="start from these weights (.pt), e.g. to fine-tune shipped ones")
    parser.add_argument("--max-minutes", type=float,
                        help="time budget: every 100 steps the run is resized (at most to --steps) so that it "
                        "(and its learning-rate schedule) ends within it; a hard stop at the budget saves a "
                        "resumable checkpoint")
    parser.add_argument("--cache-dir", help="CT: cache the generated training pairs on disk here (memory-mapped)")
    parser.add_argument("--augment", type=int, default=1,
                        help="MRI: copies of each training slice, odd ones mirrored, each with its own noise "
                        "(default 1: none)")
    parser.add_argument("--validate-every", type=int, default=250, help="validate every N steps (default 250)")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="checkpoint every N steps (default 250)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (bfloat16) on CUDA")
    parser.add_argument("--seed", type=int, default=0, help="seed of sample order and initialisation (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)
    return parser


def _datasets(args: argparse.Namespace):
    from odl_learned.data import pairs

    if args.task == "ct":
        train = pairs.ct_ellipse_pairs("train", args.num_train, size=args.size, cache_dir=args.cache_dir)
        val = pairs.ct_ellipse_pairs("validation", args.num_val, size=args.size)
    else:
        train = pairs.mri_brain_pairs("train", size=args.size, augment=args.augment)
        val = pairs.mri_brain_pairs("validation", min(args.num_val, 8), size=args.size)
    return train, val


def run_train(args: argparse.Namespace) -> dict:
    """Train ``args.method``; return the exported weights' info.

    Examples
    --------
    >>> import tempfile
    >>> from odl_learned.cli.main import main
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +ELLIPSIS
    ...     main(["train", "lpd", "--task", "ct", "--steps", "1", "--batch-size", "1", "--num-train", "2",
    ...           "--num-val", "1", "--size", "32", "--num-workers", "0", "--out", d, "--quiet"])
    exported ...
    0
    """
    from odl_learned.reconstructors.learned_methods import LEARNED_METHODS
    from odl_learned.training.distributed import cleanup_distributed, init_distributed, is_distributed

    if args.method not in LEARNED_METHODS:
        raise ValueError(f"unknown method {args.method!r}; expected one of {', '.join(LEARNED_METHODS)}")
    method = LEARNED_METHODS[args.method]
    if method.task != args.task:
        raise ValueError(f"method {args.method!r} is for task {method.task!r}, not {args.task!r}")
    if args.augment != 1 and args.task != "mri":
        raise ValueError(f"--augment is for --task mri (CT draws new images instead), got --task {args.task}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise ValueError(f"--max-minutes must be positive, got {args.max_minutes}")
    out = args.out or os.path.join("runs", method.key)
    import torch

    own_group = not is_distributed()
    # one process unless started by torchrun; CPU processes talk by gloo even where CUDA exists
    cpu = args.device is not None and torch.device(args.device).type == "cpu"
    process = init_distributed("gloo" if cpu else None)
    try:
        return _train(args, method, out, process)
    finally:
        if own_group:
            cleanup_distributed()


def _train(args: argparse.Namespace, method, out: str, process) -> dict:
    import torch

    from odl_learned.reconstructors.learned_methods import build_network
    from odl_learned.training import Trainer, TrainConfig
    from odl_learned.training.distributed import barrier

    device = torch.device(args.device) if args.device else process.device  # cuda:LOCAL_RANK or the CPU
    if device.type == "cuda" and device.index is None and process.world_size > 1:
        device = process.device
    # rank 0 generates and caches the CT pairs first; the others then read its cache
    in_turn = args.cache_dir is not None and process.world_size > 1
    if in_turn and not process.is_main:
        barrier()
    train_set, val_set = _datasets(args)
    if in_turn and process.is_main:
        barrier()
    torch.manual_seed(args.seed)
    network = build_network(args.method, train_set.op, train_set.extras)
    if args.init:
        if not os.path.exists(args.init):
            raise FileNotFoundError(f"no such weights file: {args.init!r}")
        network.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
        args.init_info = _init_info(args.init)
    settings = dict(method.train)
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    if args.lr is not None:
        settings["learning_rate"] = args.lr
    if args.loss is not None:
        settings["loss"] = args.loss
    config = TrainConfig(
        num_steps=args.steps, seed=args.seed, num_workers=args.num_workers,
        validate_every=min(args.validate_every, args.steps), checkpoint_every=min(args.checkpoint_every, args.steps),
        amp=args.amp, amp_dtype="bfloat16", warmup_steps=min(100, args.steps // 10), **settings,
    )
    callbacks = []
    stopped_by_budget = []
    if args.max_minutes is not None:
        callbacks.append(_TimeBudget(60 * args.max_minutes, stopped_by_budget))
    kwargs = dict(val_dataset=val_set, device=device, callbacks=callbacks,
                  progress=not args.quiet and sys.stderr.isatty())
    resumable = args.resume and os.path.exists(os.path.join(out, "last.pt"))
    if resumable:
        trainer = Trainer.resume(out, network, train_set, config, **kwargs)
    else:
        trainer = Trainer(network, train_set, config, checkpoint_dir=out, **kwargs)
    try:
        history = trainer.fit()
    except KeyboardInterrupt:
        if not stopped_by_budget:
            raise
        history = trainer.history
    info = _export(trainer, method, args, out, device, history, train_set, config)
    if process.is_main:
        print(f"exported {info['weights']} after {info['steps']} steps "
              f"(validation PSNR {info.get('val_psnr', float('nan')):.2f} dB)")
    return info


class _TimeBudget:
    """Fit a run into a time budget: resize it as the step time becomes known, stop it at the budget.

    Every ``calibrate_at`` steps (after 10 start-up steps) the time per step of
    the last ``calibrate_at`` steps predicts how many steps the rest of the
    budget affords (keeping 10% for validation, checkpoints and export), and
    the run is resized to that, schedule included, but never beyond the steps
    asked for. Checking again, not once, keeps the schedule fitted when the
    machine slows down during the run (e.g. another training starts beside it)
    or speeds up (e.g. the first epoch of ``varnet-tv`` also solves the TV starts).
    In a data-parallel run the processes agree, after every step, on both
    decisions: the smallest length any of them affords, and a stop as soon as
    any of them is past the budget (their clocks differ a little; differing
    lengths would leave one process waiting for the others forever, and every
    process must know that its stop was the budget's, not an interruption).
    """

    def __init__(self, seconds: float, stopped: list, *, calibrate_at: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.stopped = stopped
        self.calibrate_at = calibrate_at
        self.clock = clock
        self.start = clock()
        self.mark: tuple[int, float] | None = None
        self.limit: int | None = None

    def __call__(self, trainer, step: int, loss: float) -> None:
        now = self.clock() - self.start
        if self.limit is None:
            self.limit = trainer.config.num_steps  # the steps asked for
        if self.mark is None and step >= 10:
            self.mark = (step, now)  # the first steps (start-up, compilation) are not typical
        elif self.mark is not None and step >= self.mark[0] + self.calibrate_at:
            per_step = (now - self.mark[1]) / (step - self.mark[0])
            self.mark = (step, now)
            affordable = min(self.limit, max(step, step + int((0.9 * self.seconds - now) / per_step)))
            affordable = _agree(trainer, affordable, "min")  # every process calibrates at the same steps
            if affordable != trainer.config.num_steps:
                trainer.resize(affordable)
        over = _agree(trainer, int(now > self.seconds), "max")
        if over and not self.stopped:
            self.stopped.append(step)
            trainer.request_stop()


def _agree(trainer, value: int, how: str) -> int:
    """The smallest or largest (``how``) ``value`` of all processes of a data-parallel run (``value`` in one)."""
    if not trainer.distributed:
        return value
    import torch

    from odl_learned.training.distributed import all_reduce_max, all_reduce_min

    reduce = all_reduce_min if how == "min" else all_reduce_max
    return int(reduce(torch.tensor([value], dtype=torch.int64, device=trainer.device)))


def _command() -> str | None:
    """The command line that ran this training, as ``odl-learned ...`` (None inside other programs)."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if program in ("odl-learned", "main.py", "__main__.py"):
        return "odl-learned " + " ".join(sys.argv[1:])
    return None


#: The training budget a run adds to that of the weights it started from (``total_<key>``).
_BUDGET_KEYS = ("steps", "samples_seen", "wall_seconds")


def _init_info(weights: str) -> dict:
    """What the starting weights had seen, from the info file beside them (if any)."""
    info = {"weights": os.path.basename(weights)}
    path = os.path.splitext(weights)[0] + ".json"
    if os.path.exists(path):
        with open(path) as f:
            before = json.load(f)
        keys = [f"{total}{key}" for key in _BUDGET_KEYS for total in ("total_", "")]
        for key in (*keys, "device", "train_config", "val_psnr", "init"):
            if key in before:
                info[key] = before[key]
    return info


def _export(trainer, method, args, out, device, history, train_set, config) -> dict:
    """Export the weights and write the info file beside them (rank 0); return the info."""
    import torch

    from odl_learned.nets import count_parameters

    weights = os.path.join(out, f"{method.key}.pt")
    trainer.export_weights(weights)  # rank 0 only
    info_path = os.path.splitext(weights)[0] + ".json"
    info = {
        "method": method.name,
        "task": method.task,
        "summary": method.summary,
        "arch": method.arch,
        "params": count_parameters(trainer.model),
        "train_config": config.to_dict(),
        "steps": int(trainer.step),
        "samples_seen": int(trainer.step) * trainer.samples_per_step,
        "world_size": trainer.world_size,
        "num_train_images": len(train_set),
        "problem": train_set.setting,
        "wall_seconds": round(trainer.elapsed_seconds, 1),  # training time, resumed runs included
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "command": _command(),
        "weights": weights,
    }
    init = getattr(args, "init_info", None)
    if init is not None:
        # fine-tuned from earlier weights: keep their history so the budget reported is the whole one
        info["init"] = init
        for key in _BUDGET_KEYS:
            info[f"total_{key}"] = round(info[key] + init.get(f"total_{key}", init.get(key, 0)), 1)
    if history.get("val_psnr"):
        info["val_psnr"] = round(float(history["val_psnr"][-1]), 3)
    if trainer.is_main:
        atomic_write_json(info_path, info, default=str)
    return info
