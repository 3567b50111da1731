"""The ``odl-learned`` command: help, benchmark JSON, reconstruct, and bad input (exit 2, no traceback)."""

import json
from pathlib import Path
import subprocess
import sys
import types

import numpy as np
import pytest

from odl_learned.cli.main import build_parser, main


def run_cli(*args):
    """Run the installed entry point's module as a user would, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "odl_learned.cli.main", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("command", ["demo", "benchmark", "reconstruct"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: odl-learned " + command in capsys.readouterr().out


def test_benchmark_ct_json_and_figure(tmp_path):
    out = tmp_path / "ct.json"
    fig = tmp_path / "ct.png"
    code = main(["benchmark", "ct", "--phantom", "shepp-logan", "--size", "64", "--methods", "fbp,tv",
                 "--json", str(out), "--figure", str(fig)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["task"] == "ct"
    assert report["setting"]["num_angles"] == 30
    assert set(report["methods"]) == {"fbp", "tv"}
    for entry in report["methods"].values():
        assert {"psnr", "ssim", "seconds_per_image"} <= set(entry)
    # the variational method must beat the analytic one clearly on this problem
    assert report["methods"]["tv"]["psnr"] > report["methods"]["fbp"]["psnr"] + 3
    assert fig.stat().st_size > 0


def test_benchmark_mri_tv_beats_zero_filled(tmp_path):
    out = tmp_path / "mri.json"
    code = main(["benchmark", "mri", "--num-images", "1", "--size", "64", "--methods", "zero-filled,tv",
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["setting"]["acceleration"] == 4
    assert report["methods"]["tv"]["psnr"] > report["methods"]["zero-filled"]["psnr"] + 1


def test_reconstruct_round_trip(tmp_path):
    from odl_learned.evaluation.problems import ct_problem

    problem = ct_problem(phantom="shepp-logan", num_images=1, size=64)
    y, x_true = problem.pairs[0]
    np.save(tmp_path / "y.npy", np.stack([y.asarray()] * 2))
    code = main(["reconstruct", "ct", str(tmp_path / "y.npy"), str(tmp_path / "x.npy"), "--method", "fbp",
                 "--size", "64"])
    assert code == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (2, 64, 64)
    from odl_learned.metrics import psnr

    assert psnr(x[0], x_true.asarray()) > 15


@pytest.mark.parametrize(
    "args, message",
    [
        (["benchmark", "ct", "--methods", "fbp,magic"], "unknown method 'magic'"),
        (["benchmark", "mri", "--methods", "fbp"], "unknown method 'fbp' for task 'mri'"),
        (["benchmark", "ct", "--phantom", "brain"], "unknown phantom 'brain'"),
        (["benchmark", "ct", "--noise", "-1"], "noise_level must be >= 0"),
        (["benchmark", "mri", "--acceleration", "0.5"], "acceleration"),
        (["benchmark", "mri", "--pattern", "spiral"], "pattern"),
        (["benchmark", "ct", "--angles", "0"], "num_angles"),
        (["benchmark", "ct", "--geometry", "cone"], "unknown geometry 'cone'"),
        (["reconstruct", "ct", "missing.npy", "x.npy"], "no such input file"),
        (["reconstruct", "ct", "y.txt", "x.npy"], "must be a .npy file"),
        (["train", "lpd", "--task", "ct", "--augment", "4"], "--augment is for --task mri"),
        (["benchmark", "ct", "--seed", "1"], "--seed apply to the equivariance task only"),
        (["benchmark", "ct", "--weights", "lpd"], "--weights expects METHOD=PATH"),
        (["benchmark", "ct", "--weights", "varnet=x.pt"], "'varnet' is not a learned method for task 'ct'"),
        (["benchmark", "ct", "--weights", "lpd=missing.pt"], "no such weights file"),
        (["benchmark", "ct", "--methods", "fbp,tv", "--retrain"], "none of the selected methods is learned"),
        (["benchmark", "equivariance", "--retrain"], "--weights and --retrain are for the ct and mri tasks"),
        (["train", "varnet", "--task", "mri", "--augment", "0"], "augment must be"),
    ],
)
def test_bad_input_exits_2_without_traceback(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("odl-learned: error: ")
    assert message in err
    assert "Traceback" not in err


def test_reconstruct_rejects_wrong_shape_and_nan(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    assert main(["reconstruct", "ct", str(tmp_path / "bad.npy"), str(tmp_path / "x.npy")]) == 2
    assert "expected (30, 183)" in capsys.readouterr().err
    y = np.zeros((30, 183))
    y[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", y)
    assert main(["reconstruct", "ct", str(tmp_path / "nan.npy"), str(tmp_path / "x.npy"), "--method", "fbp"]) == 2
    assert "NaN" in capsys.readouterr().err


def test_entry_point_process_reports_bad_input_cleanly():
    result = run_cli("benchmark", "ct", "--methods", "nope")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown method 'nope'" in result.stderr


def test_reconstruct_ct_from_dicom(tmp_path, capsys):
    from odl_learned.data import real_ct_sources

    pytest.importorskip("pydicom")
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / "CT_small.dcm"
    if not real_ct_sources():
        pytest.skip("pydicom's CT test file cannot be decoded here")
    assert main(["reconstruct", "ct", str(path), str(tmp_path / "x.npy"), "--method", "fbp", "--size", "64"]) == 0
    assert np.load(tmp_path / "x.npy").shape == (64, 64)
    psnr_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PSNR")][0]
    assert float(psnr_line.split(":")[1].split()[0]) > 20


def test_reconstruct_rejects_non_dicom_and_mri_dicom(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_text("not a DICOM file")
    assert main(["reconstruct", "ct", str(bad), str(tmp_path / "x.npy")]) == 2
    assert "not a readable DICOM file" in capsys.readouterr().err
    assert main(["reconstruct", "mri", str(bad), str(tmp_path / "x.npy")]) == 2
    assert "DICOM input is read for CT only" in capsys.readouterr().err


def test_train_init_continues_from_weights_and_keeps_their_budget(tmp_path, capsys):
    import torch

    common = ["--task", "ct", "--steps", "2", "--batch-size", "1", "--num-train", "2", "--num-val", "1",
              "--size", "32", "--num-workers", "0", "--quiet"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "lgd", *common, "--out", str(first)]) == 0
    start = torch.load(first / "ct_lgd.pt", weights_only=True)
    assert main(["train", "lgd", *common, "--lr", "1e-12", "--out", str(second),
                 "--init", str(first / "ct_lgd.pt")]) == 0
    after = torch.load(second / "ct_lgd.pt", weights_only=True)
    for name, value in start.items():  # (almost) no learning: the weights are the initial ones
        torch.testing.assert_close(after[name], value, msg=name)
    info = json.loads((second / "ct_lgd.json").read_text())
    assert info["steps"] == 2 and info["init"]["steps"] == 2
    assert info["total_steps"] == 4 and info["total_samples_seen"] == 4
    assert main(["train", "lgd", *common, "--out", str(tmp_path / "third"), "--init", str(tmp_path / "no.pt")]) == 2
    assert "no such weights file" in capsys.readouterr().err


def test_time_budget_shortens_the_run_again_when_steps_slow_down():
    from odl_learned.cli import train as train_cli

    clock = [0.0]

    class FakeTrainer:
        distributed = False

        def __init__(self):
            self.num_steps, self.stops = 100_000, 0
            self.config = self

        def resize(self, num_steps):
            assert num_steps <= 100_000  # never beyond the steps asked for
            self.num_steps = num_steps

        def request_stop(self):
            self.stops += 1

    trainer, stopped = FakeTrainer(), []
    budget = train_cli._TimeBudget(1000.0, stopped, calibrate_at=100, clock=lambda: clock[0])
    step = 0
    while step < trainer.num_steps and not stopped:
        step += 1
        clock[0] += 0.1 if step <= 1000 else 0.4  # four times slower after 1000 steps
        budget(trainer, step, 0.0)
    # first fitted to 0.1 s per step (about 9,000 steps); after the slow-down to what is left
    assert 2500 < trainer.num_steps < 3300 and not stopped
    assert clock[0] < 1000.0


def test_time_budget_lengthens_the_run_when_steps_speed_up():
    """A slow first epoch (e.g. TV starts being solved) must not cut the run to its pace."""
    from odl_learned.cli import train as train_cli

    clock = [0.0]
    trainer = types.SimpleNamespace(config=types.SimpleNamespace(num_steps=100_000), distributed=False)
    trainer.resize = lambda n: setattr(trainer.config, "num_steps", n)
    trainer.request_stop = lambda: None
    budget, step = train_cli._TimeBudget(1000.0, [], calibrate_at=100, clock=lambda: clock[0]), 0
    while step < trainer.config.num_steps:
        step += 1
        clock[0] += 0.4 if step <= 110 else 0.1  # four times faster after the first 110 steps
        budget(trainer, step, 0.0)
    # fitted first to 0.4 s per step (about 2,250 steps), then to 0.1 s: 90% of the budget used
    assert 0.85 * 1000 < clock[0] < 0.95 * 1000


def test_benchmark_retrain_then_given_weights(tmp_path):
    runs = tmp_path / "runs"
    first = tmp_path / "retrained.json"
    assert main(["benchmark", "ct", "--size", "32", "--num-images", "1", "--methods", "fbp,lgd", "--retrain",
                 "--train-dir", str(runs), "--train-args", "--steps 2 --batch-size 1 --num-train 2 --num-val 1 "
                 "--num-workers 0 --quiet", "--json", str(first)]) == 0
    weights = runs / "ct_lgd" / "ct_lgd.pt"
    report = json.loads(first.read_text())
    assert report["weights"] == {"lgd": str(weights)}
    assert report["methods"]["lgd"]["training"]["steps"] == 2  # the retrained weights, not the shipped ones
    again = tmp_path / "given.json"
    assert main(["benchmark", "ct", "--size", "32", "--num-images", "1", "--weights", f"lgd={weights}",
                 "--methods", "lgd", "--json", str(again)]) == 0
    assert json.loads(again.read_text())["methods"]["lgd"]["psnr"] == report["methods"]["lgd"]["psnr"]
