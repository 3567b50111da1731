"""Tests of odl_learned.training: config, seeding, exact resumption, atomic checkpoints, DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from odl_learned.training import (
    DeterministicBatchSampler,
    TrainConfig,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)
from odl_learned.training import checkpoint as checkpoint_module

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny 8 x 8 convolutions run fastest on one thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- a tiny learnable problem ---------------------------------------------------------------------

def make_data(n: int = 24, seed: int = 0) -> TensorDataset:
    """Pairs (y, x) of 1 x 8 x 8 images: y = 0.5 x + 0.2 + small fixed noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(n, 1, 10, 10, generator=gen), 3, stride=1)
    y = 0.5 * x + 0.2 + 0.01 * torch.randn(n, 1, 8, 8, generator=gen)
    return TensorDataset(y, x)


def make_model(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                         nn.Conv2d(8, 1, 3, padding=1))


def torch_psnr(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR with the data range of the ground truth (no ODL needed)."""
    data_range = true.flatten(1).amax(1) - true.flatten(1).amin(1)
    return 10 * torch.log10(data_range ** 2 / ((pred - true) ** 2).flatten(1).mean(1))


def weights_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# a run that uses everything the trajectory depends on: dropout (the torch RNG),
# batches straddling epochs (24 samples, batch 5), warm-up + cosine, clipping
RESUME_CONFIG = TrainConfig(num_steps=20, batch_size=5, learning_rate=0.02, warmup_steps=3,
                            lr_schedule="cosine", grad_clip=0.5, weight_decay=1e-4,
                            optimizer="adamw", seed=7, validate_every=5, checkpoint_every=4)


def run(config: TrainConfig, *, model_seed: int = 0, dropout: float = 0.2, **kwargs) -> Trainer:
    data = make_data()
    trainer = Trainer(make_model(model_seed, dropout), data, config, val_dataset=make_data(8, 1),
                      device="cpu", progress=False, **kwargs)
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def reference() -> Trainer:
    """The uninterrupted 20-step run."""
    return run(RESUME_CONFIG)


# --- 1. seeding and learning ----------------------------------------------------------------------

def test_same_seed_gives_identical_losses(reference):
    again = run(RESUME_CONFIG)
    assert again.history["loss"] == reference.history["loss"]
    assert weights_equal(again.model, reference.model)
    other = run(RESUME_CONFIG.replace(seed=8))
    assert other.history["loss"] != reference.history["loss"]


def test_loss_decreases_and_validation_improves():
    cfg = TrainConfig(num_steps=60, batch_size=8, learning_rate=0.01, seed=0, validate_every=30)
    trainer = run(cfg, dropout=0.0)
    losses = trainer.history["loss"]
    assert len(losses) == 60 and len(trainer.history["lr"]) == 60
    assert sum(losses[-5:]) / 5 < 0.2 * sum(losses[:5]) / 5
    assert trainer.history["val_step"] == [30, 60]
    psnr, ssim = trainer.history["val_psnr"], trainer.history["val_ssim"]
    assert psnr[1] > psnr[0] > 10 and 0 < ssim[0] <= 1 and 0 < ssim[1] <= 1
    # the cosine schedule ends near zero
    assert trainer.history["lr"][0] == pytest.approx(0.01)
    assert trainer.history["lr"][-1] < 1e-4


# --- 2. exact resumption --------------------------------------------------------------------------

def interrupt_at(step: int):
    def callback(trainer: Trainer, s: int, loss: float) -> None:
        if s == step:
            raise KeyboardInterrupt
    return callback


def test_interrupted_and_resumed_run_equals_uninterrupted(reference, tmp_path):
    first = Trainer(make_model(0, 0.2), make_data(), RESUME_CONFIG, val_dataset=make_data(8, 1),
                    checkpoint_dir=tmp_path, device="cpu", progress=False,
                    callbacks=[interrupt_at(9)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 9 and len(state["history"]["loss"]) == 9
    assert state["sampler"]["position"] == 9 * 5
    assert json.loads((tmp_path / "last.json").read_text())["config"] == RESUME_CONFIG.to_dict()

    # a different initial model: everything must come from the checkpoint; the data are
    # now loaded by two worker processes, which must not change the batches
    resumed = Trainer.resume(tmp_path, make_model(123, 0.2), make_data(),
                             RESUME_CONFIG.replace(num_workers=2), val_dataset=make_data(8, 1),
                             device="cpu", progress=False)
    assert resumed.step == 9
    history = resumed.fit()

    assert first.history["loss"] + history["loss"][9:] == reference.history["loss"]
    assert history["loss"] == reference.history["loss"]
    assert history["lr"] == reference.history["lr"]
    assert history["val_psnr"] == reference.history["val_psnr"]
    assert weights_equal(resumed.model, reference.model)
    assert resumed.best == reference.best


def test_training_time_survives_an_interruption(tmp_path):
    def slow(trainer: Trainer, step: int, loss: float) -> None:
        time.sleep(0.05)  # counted in the next step's time

    config = TrainConfig(num_steps=6, batch_size=4, checkpoint_every=100)
    first = Trainer(make_model(0, 0.0), make_data(), config, checkpoint_dir=tmp_path, device="cpu",
                    progress=False, callbacks=[slow, interrupt_at(3)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    before = load_checkpoint(tmp_path / "last.pt")["elapsed_seconds"]
    assert before == first.elapsed_seconds >= 0.1  # steps 2 and 3 include a sleep each
    resumed = Trainer.resume(tmp_path, make_model(0, 0.0), make_data(), config, device="cpu",
                             progress=False, callbacks=[slow])
    assert resumed.elapsed_seconds == before
    resumed.fit()
    assert resumed.elapsed_seconds >= before + 0.1  # steps 5 and 6: the count went on


def test_ctrl_c_stops_at_a_step_boundary_and_fit_resume_continues(reference, tmp_path):
    def send_sigint(trainer: Trainer, step: int, loss: float) -> None:
        if step == 6:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of the run

    first = Trainer(make_model(0, 0.2), make_data(), RESUME_CONFIG, val_dataset=make_data(8, 1),
                    checkpoint_dir=tmp_path, device="cpu", progress=False,
                    callbacks=[send_sigint])
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler restored
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6

    second = Trainer(make_model(5, 0.2), make_data(), RESUME_CONFIG, val_dataset=make_data(8, 1),
                     checkpoint_dir=tmp_path, device="cpu", progress=False)
    assert second.fit(resume=True)["loss"] == reference.history["loss"]
    assert weights_equal(second.model, reference.model)
    # finished: resuming again trains nothing more
    assert second.fit(resume=True)["loss"] == reference.history["loss"]


def test_resume_without_checkpoint_starts_fresh_and_changed_config_warns(reference, tmp_path):
    trainer = Trainer(make_model(0, 0.2), make_data(), RESUME_CONFIG, val_dataset=make_data(8, 1),
                      checkpoint_dir=tmp_path, device="cpu", progress=False)
    assert trainer.fit(resume=True)["loss"] == reference.history["loss"]
    with pytest.warns(UserWarning, match="learning_rate"):
        Trainer.resume(tmp_path, make_model(), make_data(),
                       RESUME_CONFIG.replace(learning_rate=0.1), device="cpu")
    with pytest.raises(ValueError, match="24 samples"):
        Trainer.resume(tmp_path, make_model(), make_data(n=10), device="cpu")


def test_extending_a_finished_run_equals_a_longer_run(tmp_path):
    short = TrainConfig(num_steps=9, batch_size=5, learning_rate=0.01, lr_schedule="constant",
                        seed=3)
    long = short.replace(num_steps=20)
    kw = dict(device="cpu", progress=False)
    reference = Trainer(make_model(0, 0.2), make_data(), long, **kw)
    reference.fit()
    Trainer(make_model(0, 0.2), make_data(), short, checkpoint_dir=tmp_path / "a", **kw).fit()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    extended = Trainer.resume(tmp_path / "a", make_model(1, 0.2), make_data(), long, **kw)
    assert extended.fit()["loss"] == reference.history["loss"]
    assert weights_equal(extended.model, reference.model)
    # a changed learning rate takes effect from the resumed step on (with a warning)
    with pytest.warns(UserWarning, match="learning_rate"):
        faster = Trainer.resume(tmp_path / "b", make_model(), make_data(),
                                long.replace(learning_rate=0.05), **kw)
    assert faster.fit()["lr"] == [0.01] * 9 + [0.05] * 11
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        Trainer.resume(tmp_path / "b", make_model(), make_data(), long.replace(optimizer="sgd"),
                       **kw)


def test_best_checkpoint_and_exported_weights(reference, tmp_path):
    trainer = run(RESUME_CONFIG, checkpoint_dir=tmp_path)
    best = load_checkpoint(tmp_path / "best.pt")
    psnrs = trainer.history["val_psnr"]
    assert trainer.best["metric"] == "psnr" and trainer.best["value"] == max(psnrs)
    assert best["step"] == trainer.history["val_step"][psnrs.index(max(psnrs))]
    path = trainer.export_weights(tmp_path / "weights.pt")
    weights = torch.load(path, weights_only=True)
    assert set(weights) == set(trainer.model.state_dict())
    assert path.stat().st_size < (tmp_path / "last.pt").stat().st_size
    model = make_model(99, 0.2)
    model.load_state_dict(weights)
    assert weights_equal(model, trainer.model)


# --- 3. atomic checkpoints ------------------------------------------------------------------------

def test_failed_write_keeps_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "config": {"seed": 0}, "w": torch.ones(3)})
    before = sorted(os.listdir(tmp_path))
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        real_save({"partial": torch.zeros(1000)}, f)  # some bytes reach the disk ...
        raise OSError("disk full")                      # ... then the write fails

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "config": {"seed": 0}, "w": torch.zeros(3)})
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == before == ["last.json", "last.pt"]
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 1


def test_trainer_checkpoint_failure_keeps_previous(tmp_path, monkeypatch):
    cfg = TrainConfig(num_steps=4, batch_size=4, checkpoint_every=2, seed=0)
    trainer = Trainer(make_model(), make_data(), cfg, checkpoint_dir=tmp_path, device="cpu",
                      progress=False)
    calls = []
    real_save = torch.save

    def save_then_fail_later(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt  # Ctrl-C while the step-4 checkpoint is written
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", save_then_fail_later)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last.json", "last.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


# --- 4. distributed data parallel (real torchrun, 2 CPU processes, gloo) --------------------------

DDP_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from odl_learned.training import (TrainConfig, Trainer, cleanup_distributed, init_distributed,
                                      is_main_process, load_checkpoint)

    out = sys.argv[1]
    info = init_distributed("gloo")  # CPU processes, also on a machine with one GPU
    assert info.world_size == 2 and info.backend == "gloo", info
    assert is_main_process() == (info.rank == 0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, 8, 8, generator=gen)
    data = TensorDataset(0.5 * x + 0.2, x)

    def model(seed):  # different initial weights on each rank: DDP must broadcast rank 0's
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 1, 3, padding=1))

    cfg = TrainConfig(num_steps=6, batch_size=4, learning_rate=0.01, seed=0, validate_every=3)
    net = model(info.rank)
    torch.save(net.state_dict(), f"{out}/init_{info.rank}.pt")
    def psnr(pred, true):
        data_range = true.flatten(1).amax(1) - true.flatten(1).amin(1)
        return 10 * torch.log10(data_range ** 2 / ((pred - true) ** 2).flatten(1).mean(1))

    kw = dict(val_dataset=data, device="cpu", metrics={"psnr": psnr}, progress=False)
    full = Trainer(net, data, cfg, **kw)
    full.fit()
    torch.save(full.model.state_dict(), f"{out}/final_{info.rank}.pt")

    # interrupted on every rank after step 2 (the stop is synchronised), then resumed
    stop = lambda trainer, step, loss: trainer.request_stop() if step == 2 else None
    part = Trainer(model(info.rank), data, cfg, checkpoint_dir=f"{out}/ckpt", callbacks=[stop],
                   **kw)
    try:
        part.fit()
        raise AssertionError("no KeyboardInterrupt")
    except KeyboardInterrupt:
        pass
    saved = load_checkpoint(f"{out}/ckpt/last.pt")
    resumed = Trainer(model(10 + info.rank), data, cfg, checkpoint_dir=f"{out}/ckpt", **kw)
    resumed.fit(resume=True)
    torch.save(resumed.model.state_dict(), f"{out}/resumed_{info.rank}.pt")
    with open(f"{out}/result_{info.rank}.json", "w") as f:
        json.dump({"full": full.history, "resumed": resumed.history, "stopped_at": saved["step"],
                   "num_rng": len(saved["rng"]), "world_size": saved["sampler"]["world_size"]}, f)
    cleanup_distributed()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_with_torchrun(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def load(name):
        return torch.load(tmp_path / name, weights_only=True)

    init0, final0, final1 = load("init_0.pt"), load("final_0.pt"), load("final_1.pt")
    assert not all(torch.equal(init0[k], load("init_1.pt")[k]) for k in init0)
    for k in final0:
        assert torch.equal(final0[k], final1[k])           # the replicas agree ...
    assert not any(torch.equal(final0[k], init0[k]) for k in final0)  # ... and have trained

    results = [json.loads((tmp_path / f"result_{r}.json").read_text()) for r in (0, 1)]
    assert results[0]["full"] == results[1]["full"]  # the same (all-reduced) losses and metrics
    assert results[0]["full"]["val_step"] == [3, 6]
    assert results[0]["stopped_at"] == 3  # requested after step 2, honoured at the next sync
    assert results[0]["num_rng"] == 2 and results[0]["world_size"] == 2
    # the interrupted and resumed data-parallel run equals the uninterrupted one
    for r in (0, 1):
        assert results[r]["resumed"]["loss"] == results[r]["full"]["loss"]
        resumed = load(f"resumed_{r}.pt")
        assert all(torch.equal(resumed[k], final0[k]) for k in final0)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "best.json", "best.pt", "last.json", "last.pt"]

    # 2 processes x batch 4 = one process with batch 8 (up to rounding)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, 8, 8, generator=gen)
    torch.manual_seed(0)
    single_model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(8, 1, 3, padding=1))
    single = Trainer(single_model, TensorDataset(0.5 * x + 0.2, x),
                     TrainConfig(num_steps=6, batch_size=8, learning_rate=0.01, seed=0),
                     device="cpu", progress=False)
    single.fit()
    assert single.history["loss"] == pytest.approx(results[0]["full"]["loss"], rel=1e-5)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(v, final0[k], rtol=1e-4, atol=1e-6)


def test_train_command_under_torchrun(tmp_path):
    """``odl-learned train`` started by torchrun trains data-parallel: rank 0 caches the data and
    exports once, a step sees both processes' batches, and the time budget (resizing and the hard
    stop) is agreed by the processes, so neither waits for the other at the end."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "odl_learned.cli.main",
           "train", "lgd", "--task", "ct", "--steps", "100000", "--batch-size", "1", "--num-train", "8",
           "--num-val", "2", "--size", "32", "--num-workers", "0", "--device", "cpu", "--out", str(out),
           "--cache-dir", str(tmp_path / "cache"), "--max-minutes", "0.1", "--validate-every", "50",
           "--checkpoint-every", "50", "--quiet"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("exported") == 1, proc.stdout
    info = json.loads((out / "ct_lgd.json").read_text())
    assert info["world_size"] == 2 and 0 < info["steps"] < 100000
    assert info["samples_seen"] == 2 * info["steps"]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one cache, written by rank 0
    weights = torch.load(out / "ct_lgd.pt", weights_only=True)
    last = load_checkpoint(out / "last.pt")
    assert last["step"] == info["steps"]
    model = last["model"]
    assert weights.keys() == model.keys() and all(torch.equal(weights[k], model[k]) for k in weights)

    # the budget's decisions, with clocks that disagree: rank 1 is twice as slow and jumps past the
    # budget at step 150; both processes must resize alike and stop at the same step
    script = tmp_path / "budget.py"
    script.write_text(BUDGET_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"budget_{r}.json").read_text()) for r in (0, 1)]
    # at step 110: rank 0 affords 110 + (45 - 11) / 0.1 = 450 steps, rank 1 110 + (45 - 22) / 0.2 = 225
    assert results[0] == results[1] == {"sizes": [225], "stopped": [150]}


BUDGET_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from odl_learned.cli.train import _TimeBudget
    from odl_learned.training import TrainConfig, cleanup_distributed, init_distributed

    info = init_distributed("gloo")

    class Run:  # what _TimeBudget sees of a Trainer
        distributed, device = True, torch.device("cpu")
        config = TrainConfig(num_steps=1000)
        sizes = []
        def resize(self, n):
            self.sizes.append(n)
            self.config = self.config.replace(num_steps=n)
        def request_stop(self):
            self.stop = True

    step = 0
    slowness = 0.1 if info.rank == 0 else 0.2
    clock = lambda: slowness * step + (100 if info.rank == 1 and step >= 150 else 0)
    stopped, run = [], Run()
    budget = _TimeBudget(50, stopped, clock=clock)
    run.stop = False
    while step < run.config.num_steps and not run.stop:
        step += 1
        budget(run, step, 0.0)
    with open(f"{sys.argv[1]}/budget_{info.rank}.json", "w") as f:
        json.dump({"sizes": run.sizes, "stopped": stopped}, f)
    cleanup_distributed()
""")


# --- mixed precision and exact resumption on CUDA ------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", ["float16", "bfloat16"])
def test_cuda_amp_training_resumes_exactly(tmp_path, amp_dtype):
    cfg = TrainConfig(num_steps=12, batch_size=8, learning_rate=0.01, amp=True, amp_dtype=amp_dtype,
                      grad_clip=1.0, deterministic=True, checkpoint_every=5, validate_every=6,
                      seed=1)
    kw = dict(val_dataset=make_data(8, 1), device="cuda", metrics={"psnr": torch_psnr},
              progress=False)
    ref = Trainer(make_model(0, 0.2), make_data(), cfg, **kw)
    ref.fit()
    assert ref.use_amp and ref.scaler.is_enabled() == (amp_dtype == "float16")
    assert next(ref.model.parameters()).device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(ref.history["loss"])))

    part = Trainer(make_model(0, 0.2), make_data(), cfg, checkpoint_dir=tmp_path,
                   callbacks=[interrupt_at(5)], **kw)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 5 and "cuda" in state["rng"][0]
    assert bool(state["scaler"]) == (amp_dtype == "float16")
    resumed = Trainer.resume(tmp_path, make_model(3, 0.2), make_data(), **kw)
    assert resumed.fit()["loss"] == ref.history["loss"]
    assert weights_equal(resumed.model, ref.model)


# --- 5. bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("num_steps", 0), ("batch_size", -1), ("learning_rate", 0.0), ("learning_rate", float("nan")),
    ("lr_schedule", "step"), ("warmup_steps", -1), ("min_lr_ratio", 1.5), ("optimizer", "lbfgs"),
    ("weight_decay", -0.1), ("grad_clip", 0.0), ("loss", "huber"), ("seed", -1),
    ("validate_every", 0), ("checkpoint_every", -5), ("val_batch_size", 0), ("num_workers", -1),
    ("amp_dtype", "int8"),
])
def test_bad_config_value_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_config_types_dict_round_trip_and_warmup_bound():
    with pytest.raises(TypeError, match="num_steps"):
        TrainConfig(num_steps=2.5)
    with pytest.raises(TypeError, match="amp"):
        TrainConfig(amp="yes")
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(num_steps=5, warmup_steps=6)
    with pytest.raises(ValueError, match="'epochs'"):
        TrainConfig.from_dict({"num_steps": 5, "epochs": 3})
    cfg = TrainConfig(num_steps=5, grad_clip=1, lr_schedule="Constant")
    assert cfg.grad_clip == 1.0 and cfg.lr_schedule == "constant"
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(AttributeError):
        cfg.num_steps = 3  # frozen


def test_trainer_input_checks():
    cfg = TrainConfig(num_steps=2, batch_size=2)
    with pytest.raises(TypeError, match="pair"):
        Trainer(make_model(), TensorDataset(torch.zeros(4, 1, 8, 8)), cfg, device="cpu")
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(make_model(), make_data(), {"num_steps": 2}, device="cpu")
    with pytest.raises(ValueError, match="empty"):
        Trainer(make_model(), TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8)), cfg)
    with pytest.raises(ValueError, match="distributed=True"):
        Trainer(make_model(), make_data(), cfg, device="cpu", distributed=True)
    wrong = TensorDataset(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 6, 6))
    with pytest.raises(ValueError, match="shape of x"):
        Trainer(make_model(), wrong, cfg, device="cpu", progress=False).fit()
    with pytest.raises(ValueError, match="checkpoint_dir"):
        Trainer(make_model(), make_data(), cfg, device="cpu").fit(resume=True)


def test_diverging_loss_raises():
    data = TensorDataset(torch.full((4, 1, 8, 8), float("inf")), torch.zeros(4, 1, 8, 8))
    trainer = Trainer(make_model(), data, TrainConfig(num_steps=3, batch_size=2), device="cpu",
                      progress=False)
    with pytest.raises(FloatingPointError, match="step 1"):
        trainer.fit()


def test_sampler_shards_partition_each_global_batch():
    full = list(DeterministicBatchSampler(10, 6, seed=3, num_batches=5))
    shards = [list(DeterministicBatchSampler(10, 3, seed=3, num_batches=5, rank=r, world_size=2))
              for r in range(2)]
    assert [a + b for a, b in zip(*shards)] == full
    # every epoch is a permutation
    stream = [i for batch in full for i in batch]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))


def test_fit_outside_the_main_thread_works():
    result = {}
    cfg = TrainConfig(num_steps=3, batch_size=4)

    def target():
        result["loss"] = Trainer(make_model(), make_data(), cfg, device="cpu",
                                 progress=False).fit()["loss"]

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert len(result["loss"]) == 3


def test_negative_psnr_loss_is_minus_mean_psnr_with_its_gradient():
    from odl_learned.metrics import psnr
    from odl_learned.training import negative_psnr_loss

    gen = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 6, 5, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 3.0],
                                                                                   dtype=torch.float64)[:, None, None, None]
    pred = (x + 0.05 * torch.randn(x.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    loss = negative_psnr_loss(pred, x)
    assert torch.isclose(loss, torch.tensor(-psnr(pred.detach(), x, batch=True).mean(), dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda p: negative_psnr_loss(p, x), (pred,))
    # each image counts by its relative error: scaling one image and its error leaves the loss unchanged
    scale = torch.tensor([1.0, 10.0, 1.0, 1.0], dtype=torch.float64)[:, None, None, None]
    assert torch.isclose(negative_psnr_loss(pred * scale, x * scale), loss)


def test_resize_during_fit_lengthens_the_run_with_the_same_sample_order():
    """A callback that lengthens the run mid-fit: the loader continues the same sample sequence."""
    cfg = TrainConfig(num_steps=4, batch_size=4, lr_schedule="constant", num_workers=0)
    grow = lambda trainer, step, loss: trainer.resize(9) if step == 2 else None  # noqa: E731
    grown = Trainer(make_model(), make_data(), cfg, callbacks=[grow], device="cpu", progress=False)
    grown.fit()
    straight = Trainer(make_model(), make_data(), cfg.replace(num_steps=9), device="cpu", progress=False)
    straight.fit()
    assert grown.step == 9 and grown.samples_seen == 36
    # constant learning rate: lengthening changes nothing else, so the losses are those of a 9-step run
    assert grown.history["loss"] == straight.history["loss"]
    with pytest.raises(ValueError, match="num_steps must be an integer >= 9"):
        grown.resize(5)
