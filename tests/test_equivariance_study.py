"""The equivariance study (``odl-learned benchmark equivariance``): end to end, exactness, augmentation."""

from __future__ import annotations

import json

import numpy as np
import odl
import pytest
import torch

from odl_learned.cli.main import main
from odl_learned.evaluation.equivariance_study import (
    STUDY_METHODS,
    QuarterTurnAugmentation,
    StudyProblem,
    StudySetting,
    build_network,
    evaluate_network,
    quarter_turn_ray_transform,
    rotate_pair,
    time_networks,
)
from odl_learned.operators import ct, groups

SIZES = ("2", "4")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The quick study, shrunk to run in seconds: 32 x 32, N in 2 and 4, 3 steps, 3 test images."""
    folder = tmp_path_factory.mktemp("equivariance")
    json_path, figure_path = folder / "report.json", folder / "psnr.png"
    code = main(["benchmark", "equivariance", "--quick", "--size", "32", "--sizes", ",".join(SIZES), "--steps", "3",
                 "--num-images", "3", "--device", "cpu", "--json", str(json_path), "--figure", str(figure_path)])
    return code, json_path, figure_path


def test_quick_study_writes_json_and_figure(study, capsys):
    code, json_path, figure_path = study
    assert code == 0
    report = json.loads(json_path.read_text())
    assert report["task"] == "equivariance"
    setting = report["setting"]
    assert setting["size"] == 32 and setting["num_angles"] == 60 and setting["sizes"] == [2, 4]
    assert setting["steps"] == 3 and setting["num_test"] == 3
    assert "full turn" in setting["problem"]["geometry"]
    assert set(report["results"]) == set(STUDY_METHODS)
    for method, runs in report["results"].items():
        assert set(runs) == set(SIZES), method
        for entry in runs.values():
            for test_set in ("upright", "rotated", "rotated90"):
                assert set(entry[test_set]) == {"psnr", "ssim"}
                assert np.isfinite(entry[test_set]["psnr"]) and -1 <= entry[test_set]["ssim"] <= 1
            assert entry["seconds_per_image"] > 0 and entry["seconds_per_image_batched"] > 0 and entry["params"] > 0
            assert np.isfinite(entry["equivariance_error"])
    assert "fbp" in report["baselines"]
    assert "side by side" in setting["test_time"]
    assert figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_equivariant_is_exact_and_the_others_are_not(study):
    results = json.loads(study[1].read_text())["results"]
    for n in SIZES:
        eq, ordinary, augmented = (results[m][n] for m in STUDY_METHODS)
        assert eq["equivariance_error"] < 1e-4
        assert ordinary["equivariance_error"] > 100 * eq["equivariance_error"]
        assert augmented["equivariance_error"] > 100 * eq["equivariance_error"]
        # exactly equivariant: quarter-turned test images score as the upright ones
        assert abs(eq["rotated90"]["psnr"] - eq["upright"]["psnr"]) < 1e-3
        # matched parameter counts
        assert ordinary["params"] == augmented["params"]
        assert abs(ordinary["params"] - eq["params"]) < 0.02 * eq["params"]


@pytest.fixture(scope="module")
def problem():
    return StudyProblem(StudySetting(size=32, num_angles=16, noise_level=0.0, fine_size=64))


def test_operator_fbp_and_networks_commute_with_quarter_turns(problem):
    space = problem.space
    x = groups.smooth_test_image(space)
    rotation, shift = groups.Rotation90(space, 1), groups.sinogram_rotation(problem.ray_trafo, 4)
    assert groups.equivariance_check(problem.ray_trafo, rotation, shift, x) < 1e-6
    assert groups.equivariance_check(problem.ray_trafo.adjoint, shift, rotation, problem.ray_trafo(x)) < 1e-6
    assert groups.equivariance_check(problem.fbp_op, shift, rotation, problem.op(x)) < 1e-6
    # ASTRA's own matrix is equivariant only to its float32 kernel's rounding: the reason for the symmetrisation
    astra = ct.ray_transform(space, geometry=problem.ray_trafo.geometry)
    astra_error = groups.equivariance_check(astra, rotation, groups.sinogram_rotation(astra, 4), x)
    assert astra_error > 10 * groups.equivariance_check(problem.ray_trafo, rotation, shift, x)
    assert float((astra(x) - problem.ray_trafo(x)).norm() / astra(x).norm()) < 1e-4

    ys, xs = (torch.from_numpy(a) for a in problem.pairs(2, 2).arrays())
    torch.manual_seed(0)
    errors = {method: evaluate_network(build_network(method, problem.op, num_iter=2), problem.op,
                                       {"upright": (ys, xs)}, num_equivariance=2)["equivariance_error"]
              for method in ("equivariant", "ordinary")}
    assert errors["equivariant"] < 1e-5 < 1e-2 < errors["ordinary"]


def test_augmentation_gives_consistent_pairs(problem):
    pairs = problem.pairs(0, 3)  # noise-free here
    augmented = QuarterTurnAugmentation(pairs, problem.op, seed=5)
    assert len(augmented) == 12
    for base in range(3):  # every image in every orientation once
        assert sorted(augmented.turns(base + 3 * c) for c in range(4)) == [0, 1, 2, 3]
    assert [augmented.turns(j) for j in range(12)] == [augmented.turns(j) for j in range(12)]  # seeded
    for j in range(12):
        y, x = augmented[j]
        y0, x0 = pairs[j % 3]
        k = augmented.turns(j)
        assert torch.equal(x, torch.rot90(x0, k, dims=(-2, -1)))
        # the measurement of the turned image (fine grid, no inverse crime) is the shifted data
        assert float((problem.measure(x) - y).norm() / y.norm()) < 1e-5
        # and the operator the networks use agrees with the shift exactly
        clean = torch.from_numpy(problem.op(x0[0].numpy()).asarray())
        turned = torch.from_numpy(problem.op(x[0].numpy()).asarray())
        assert float((turned - torch.roll(clean, 4 * k, dims=0)).norm() / clean.norm()) < 1e-6


def test_rotated_test_images_are_new_ground_truths_without_cut_corners(problem):
    _, upright = problem.pairs(2, 2).arrays()
    _, same = problem.pairs(2, 2, angles=[0.0, 0.0]).arrays()
    np.testing.assert_allclose(same, upright, atol=1e-6)  # angle 0: the upright images
    _, turned = problem.pairs(2, 2, angles=[np.pi / 2, np.pi]).arrays()
    np.testing.assert_allclose(turned[0], np.rot90(upright[0], 1, axes=(-2, -1)), atol=1e-6)
    np.testing.assert_allclose(turned[1], np.rot90(upright[1], 2, axes=(-2, -1)), atol=1e-6)
    ys, rotated = problem.pairs(2, 2, angles=[0.5, 2.0]).arrays()
    assert rotated.min() == 0 and rotated.max() == 1
    corners = rotated[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners > 0).mean() > 0.5  # the ellipses reach into the corners, as upright
    clean = problem.measure(torch.from_numpy(rotated))  # data measured afresh (noise-free here)
    assert torch.allclose(clean, torch.from_numpy(ys), rtol=1e-5, atol=1e-6)


def test_augmentation_turns_the_noise_with_the_data():
    space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    op = quarter_turn_ray_transform(space, 8)
    y, x = torch.randn(1, 8, 25), torch.randn(1, 16, 16)
    y_turned, x_turned = rotate_pair(y, x, op, 3)
    assert torch.equal(y_turned, torch.roll(y, 6, dims=-2)) and torch.equal(x_turned, torch.rot90(x, 3, dims=(-2, -1)))
    assert rotate_pair(y, x, op, 4) == (y, x)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "equivariance", "--angles", "30"], "divisible by 4"),
        (["benchmark", "equivariance", "--sizes", "10,a"], "--sizes"),
        (["benchmark", "equivariance", "--methods", "equivariant,magic"], "unknown method 'magic'"),
        (["benchmark", "equivariance", "--phantom", "shepp-logan"], "ellipses phantom only"),
        (["benchmark", "equivariance", "--steps", "0"], "steps"),
        (["benchmark", "ct", "--steps", "5"], "equivariance task only"),
    ],
)
def test_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_setting_rejects_bad_values():
    with pytest.raises(ValueError, match="distinct"):
        StudySetting(sizes=(10, 10))
    with pytest.raises(ValueError, match="at least size"):
        StudySetting(size=64, fine_size=32)
    with pytest.raises(TypeError, match="integer"):
        StudySetting(steps=2.5)
    with pytest.raises(ValueError, match="full turn|2 pi"):
        space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
        quarter_turn_ray_transform(space, geometry=ct.make_geometry(space, 8))  # half turn


def test_time_networks_times_them_in_turn():
    calls = []

    def network(name):
        def call(y):
            calls.append((name, len(y)))
            return y
        return call

    ys = torch.zeros(3, 1, 2, 2)
    times = time_networks({"a": network("a"), "b": network("b")}, ys, rounds=2, num_single=2)
    warmup = [("a", 3), ("a", 1)] * 2 + [("b", 3), ("b", 1)] * 2
    one_round = [("a", 1), ("a", 1), ("a", 3), ("b", 1), ("b", 1), ("b", 3)]
    assert calls == warmup + one_round * 2
    assert all(t >= 0 for entry in times.values() for t in entry.values())
    with pytest.raises(ValueError, match="rounds"):
        time_networks({"a": network("a")}, ys, rounds=0)
