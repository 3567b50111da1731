"""The example scripts run (in their ``--quick`` form) and show what they claim."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY = ROOT / "doc" / "_static" / "gallery"
NAMES = ("ct_operators", "bridge_training_loop", "torch_operator_in_odl_solver", "mri_masks", "tv_vs_fbp",
         "lista_sparse_coding", "equivariance", "direct_map")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"odl_learned_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, tmp_path: Path) -> dict:
    result = load(name).main(["--out", str(tmp_path), "--quick"])
    figure = Path(result["figure"])
    assert figure.parent == tmp_path
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    return result


def test_ct_operators(tmp_path):
    result = run("ct_operators", tmp_path)
    assert result["dot_test_error"] < 1e-4
    assert result["psnr_fbp"] > 15


def test_bridge_training_loop_decreases_loss(tmp_path):
    result = run("bridge_training_loop", tmp_path)
    losses = result["losses"]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5])


def test_torch_functional_in_odl_solver(tmp_path):
    result = run("torch_operator_in_odl_solver", tmp_path)
    objective = np.array(result["objective"])
    # proximal gradient with step 1 / Lipschitz constant decreases f + g (f = 0 on iterates >= 0)
    assert np.all(np.diff(objective) <= 1e-5 * objective[:-1])
    assert objective[-1] < 0.9 * objective[0]
    assert result["psnr_reg"] > result["psnr_fbp"]


def test_mri_masks(tmp_path):
    result = run("mri_masks", tmp_path)
    for key, fraction in result["fractions"].items():
        acceleration = int(key.rsplit("-", 1)[1].rstrip("x"))
        assert abs(fraction - 1 / acceleration) < 0.02, key
    for pattern in ("random", "equispaced", "radial"):
        assert result["psnr"][f"{pattern}-4x"] > result["psnr"][f"{pattern}-8x"], pattern
    assert result["sos_full_error"] < 1e-5


def test_tv_beats_fbp(tmp_path):
    result = run("tv_vs_fbp", tmp_path)
    assert result["psnr_tv"] > result["psnr_fbp"]
    assert result["ssim_tv"] > result["ssim_fbp"]


def test_lista_beats_ista_with_as_many_iterations(tmp_path):
    result = run("lista_sparse_coding", tmp_path)
    # untrained LISTA is exactly 16 ISTA steps; training makes those 16 layers better
    assert abs(result["lista_untrained"] - result["ista_16"]) < 1e-4 * result["ista_16"]
    assert result["lista"] < 0.5 * result["ista_16"]


def test_direct_map_learns_small_inverse_but_not_beyond_its_training_images(tmp_path):
    result = run("direct_map", tmp_path)
    assert result["size"] == 16 and result["params"] == result["params_by_size"][16]
    assert result["psnr_direct"] > result["psnr_fbp"] + 1  # held-out ellipses, 16 x 16
    assert result["psnr_direct_shepp_logan"] < result["psnr_fbp_shepp_logan"]  # unlike its training images
    sizes = result["params_by_size"]
    assert sizes[128] > 3e8 and 12 < sizes[128] / sizes[64] <= 16  # layers of n^3 and n^4 weights


def test_equivariance_example(tmp_path):
    result = run("equivariance", tmp_path)
    assert result["sinogram_error"] < 1e-4  # A R = S A up to float32 rounding
    assert result["errors"]["fbp"] < 1e-3
    assert result["errors"]["equivariant network"] < 1e-5
    assert result["errors"]["ordinary CNN"] > 0.1


@pytest.mark.parametrize("name", NAMES)
def test_gallery_figure_is_small(name):
    figure = GALLERY / f"{name}.png"
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    assert figure.stat().st_size < 150 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_example_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out
