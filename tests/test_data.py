"""Tests of odl_learned.data: phantoms, MRI test images and real slices."""

from __future__ import annotations

import sys

import numpy as np
import odl
import pytest
import torch
from skimage.transform import resize

from odl_learned.data import (
    BRAIN_SPLITS,
    add_phase,
    brain_slice_indices,
    brain_slices,
    brain_volume,
    ellipse_parameters,
    ellipses_image,
    fine_space,
    mri_phantom,
    random_ellipses,
    random_ellipses_batch,
    random_ellipses_pair,
    random_phase,
    real_ct_slices,
    real_ct_sources,
    shepp_logan,
    upsample,
)


@pytest.fixture(scope="module")
def space():
    return odl.uniform_discr([-64, -64], [64, 64], (64, 64), dtype="float32")


# --- ellipse parameters: dival's distribution -----------------------------------------------

def test_anchors_parameter_moments():
    n = 40000
    v, a1, a2, cx, cy, rot = ellipse_parameters(n, rng=123).T

    def within(sample, mean, std, k=5.0):
        return abs(sample.mean() - mean) < k * std / np.sqrt(n)

    # v = U(-0.5, 0.5) * Exp(0.4): mean 0, variance E[U^2] E[X^2] = (1/12) * 2 * 0.4^2
    var_v = 2 * 0.4**2 / 12
    assert within(v, 0.0, np.sqrt(var_v))
    assert abs(v.var() / var_v - 1) < 0.05
    assert np.abs(v).max() > 0.5  # unbounded: the exponential factor exceeds 1 sometimes
    # half-axes 0.2 * Exp(1): mean 0.2, standard deviation 0.2, never clipped
    for a in (a1, a2):
        assert within(a, 0.2, 0.2)
        assert abs(a.std() - 0.2) < 0.01
        assert a.min() > 0 and a.max() > 1.0
    # centres U(-1, 1): mean 0, variance 1/3; rotation U(0, 2 pi): mean pi
    for c in (cx, cy):
        assert within(c, 0.0, np.sqrt(1 / 3))
        assert abs(c.var() - 1 / 3) < 0.01
        assert -1 <= c.min() and c.max() <= 1
    assert within(rot, np.pi, 2 * np.pi / np.sqrt(12))
    assert 0 <= rot.min() and rot.max() <= 2 * np.pi


def test_anchors_parameters_reproduce_dival_draw_order():
    # dival's generator draws from one RandomState in this order (per image)
    r = np.random.RandomState(42)
    v = r.uniform(-0.5, 0.5, (50,)) * r.exponential(0.4, (50,))
    a1, a2 = 0.2 * r.exponential(1.0, (50,)), 0.2 * r.exponential(1.0, (50,))
    x, y = r.uniform(-1.0, 1.0, (50,)), r.uniform(-1.0, 1.0, (50,))
    rot = r.uniform(0.0, 2 * np.pi, (50,))
    expected = np.stack((v, a1, a2, x, y, rot), axis=1)
    np.testing.assert_array_equal(ellipse_parameters(rng=np.random.RandomState(42)), expected)


def test_zero_background_parameters():
    counts, values = [], []
    rng = np.random.default_rng(0)
    for _ in range(400):
        params = ellipse_parameters(rng=rng, variant="zero_background")
        assert params.shape == (70, 6)
        active = params[:, 0] != 0
        counts.append(active.sum())
        values.append(params[active, 0])
        assert np.all(np.abs(params[:, 3:5]) <= 0.9)
    values = np.concatenate(values)
    assert abs(np.mean(counts) - 40) < 5 * np.sqrt(40 / 400)  # Poisson(40)
    assert -0.4 <= values.min() and values.max() <= 1.0
    assert abs(values.mean() - 0.3) < 0.01  # U(-0.4, 1)


def test_ellipse_parameters_errors():
    with pytest.raises(ValueError, match="variant"):
        ellipse_parameters(variant="dival3")
    with pytest.raises(ValueError, match="num_ellipses"):
        ellipse_parameters(0)


# --- rendered phantoms --------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["anchors", "zero_background"])
def test_random_ellipses_range_and_seeds(space, variant):
    x = random_ellipses(space, seed=3, variant=variant)
    assert x in space
    arr = x.asarray()
    assert arr.min() == 0.0 and arr.max() == 1.0
    assert len(np.unique(arr)) > 10  # many overlapping ellipses, not a blank image
    np.testing.assert_array_equal(random_ellipses(space, seed=3, variant=variant).asarray(), arr)
    assert not np.allclose(random_ellipses(space, seed=4, variant=variant).asarray(), arr)
    assert not np.allclose(random_ellipses(space, seed=3, index=1, variant=variant).asarray(), arr)


def test_zero_background_keeps_background_at_zero(space):
    arr = random_ellipses(space, seed=0, variant="zero_background").asarray()
    background = ellipses_image(space, np.zeros((1, 6)) + [0, 1e-3, 1e-3, 0.5, 0.5, 0])
    assert background.asarray().max() == 0.0  # an image no ellipse touches is all zeros
    assert (arr == 0).mean() > 0.01


def test_anchors_normalisation_is_min_max(space):
    params = ellipse_parameters(rng=7)
    raw = odl.core.phantom.ellipsoid_phantom(space, params).asarray().astype(np.float64)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(ellipses_image(space, params).asarray(), expected, atol=1e-6)


def test_batch_is_stable_under_subsets(space):
    batch = random_ellipses_batch(space, 4, seed=9)
    assert batch.shape == (4, 64, 64) and batch.dtype == np.float32
    for k in range(4):
        np.testing.assert_array_equal(batch[k], random_ellipses(space, 9, index=k).asarray())
    np.testing.assert_array_equal(random_ellipses_batch(space, 2, seed=9, start=2), batch[2:])
    assert not np.allclose(random_ellipses_batch(space, 1, seed=10)[0], batch[0])
    assert batch.min() == 0.0 and batch.max() == 1.0


def test_random_ellipses_on_torch_space():
    space = odl.uniform_discr([-64, -64], [64, 64], (32, 32), impl="pytorch", dtype="float32")
    x_true, x_fine = random_ellipses_pair(space, fine_shape=(48, 48))
    assert isinstance(x_true.data, torch.Tensor) and x_fine.space.impl == "pytorch"
    reference = odl.uniform_discr([-64, -64], [64, 64], (32, 32), dtype="float32")
    np.testing.assert_array_equal(x_true.data.numpy(), random_ellipses(reference).asarray())


def test_phantom_input_errors(space):
    with pytest.raises(TypeError, match="2D"):
        random_ellipses(odl.uniform_discr([0, 0, 0], [1, 1, 1], (4, 4, 4)))
    with pytest.raises(ValueError, match="n must be"):
        random_ellipses_batch(space, 0)
    with pytest.raises(ValueError, match="seed"):
        random_ellipses(space, seed=-1)
    with pytest.raises(ValueError, match=r"\(k, 6\)"):
        ellipses_image(space, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        ellipses_image(space, np.full((1, 6), np.nan))


@pytest.mark.parametrize("modified", [True, False])
def test_shepp_logan_scaled(modified):
    space = odl.uniform_discr([-1, -1], [1, 1], (64, 64))
    arr = shepp_logan(space, modified=modified).asarray()
    assert arr.min() == 0.0 and arr.max() == 1.0
    raw = odl.core.phantom.shepp_logan(space, modified=modified).asarray()
    np.testing.assert_allclose(arr, (raw - raw.min()) / (raw.max() - raw.min()))


# --- upsampling: no inverse crime ---------------------------------------------------------------

def test_upsample_reproduces_linear_functions():
    coarse = odl.uniform_discr([-64, -64], [64, 64], (16, 16))
    fine = fine_space(coarse, (50, 50))
    xc, yc = coarse.meshgrid
    x = coarse.element(0.3 * xc - 0.7 * yc + 2.0)
    up = upsample(x, fine).asarray()
    xf, yf = np.broadcast_arrays(*fine.meshgrid)
    exact = 0.3 * xf - 0.7 * yf + 2.0
    lo, hi = coarse.grid.min_pt, coarse.grid.max_pt  # hull of the coarse cell centres
    inside = (xf >= lo[0]) & (xf <= hi[0]) & (yf >= lo[1]) & (yf <= hi[1])
    assert inside.mean() > 0.8
    np.testing.assert_allclose(up[inside], exact[inside], atol=1e-10)


def test_upsample_matches_dival_resize(space):
    x = random_ellipses(space, seed=1)
    fine = fine_space(space, (200, 200))
    expected = resize(x.asarray(), (200, 200), order=1)  # dival's call
    np.testing.assert_allclose(upsample(x, fine).asarray(), expected, atol=1e-6)
    batch = random_ellipses_batch(space, 2, seed=1)
    up = upsample(batch, fine)
    assert up.shape == (2, 200, 200)
    np.testing.assert_allclose(up[0], expected, atol=1e-6)


def test_pair_fine_ground_truth_downsamples_to_coarse():
    space = odl.uniform_discr([-64, -64], [64, 64], (128, 128), dtype="float32")
    x_true, x_fine = random_ellipses_pair(space, seed=2)  # dival: 400 x 400
    fine = x_fine.space
    assert fine.shape == (400, 400) and fine.dtype_identifier == "float32"
    np.testing.assert_allclose(fine.min_pt, space.min_pt)
    np.testing.assert_allclose(fine.max_pt, space.max_pt)
    back = resize(x_fine.asarray(), (128, 128), order=1, anti_aliasing=True)
    coarse = x_true.asarray()
    rel = np.linalg.norm(back - coarse) / np.linalg.norm(coarse)
    assert rel < 0.05
    # integer factor: the mean over each 4 x 4 block equals the coarse pixel where the image is smooth
    x4 = upsample(x_true, fine_space(space, (512, 512))).asarray()
    blocks = x4.reshape(128, 4, 128, 4).mean(axis=(1, 3))
    assert np.linalg.norm(blocks - coarse) / np.linalg.norm(coarse) < 0.05
    assert np.allclose(np.mean(blocks), np.mean(coarse), atol=2e-3)


def test_upsample_errors(space):
    x = space.one()
    with pytest.raises(ValueError, match="same extent"):
        upsample(x, odl.uniform_discr([0, 0], [1, 1], (128, 128)))
    with pytest.raises(ValueError, match="smaller"):
        upsample(x, fine_space(space, (32, 32)))


# --- MRI images ---------------------------------------------------------------------------------

def test_mri_phantom_magnitude_and_phase():
    x = mri_phantom((64, 64), seed=1)
    assert x.dtype == np.complex128 and x.shape == (64, 64)
    sl = shepp_logan(odl.uniform_discr([-1, -1], [1, 1], (64, 64))).asarray()
    np.testing.assert_allclose(np.abs(x), sl, atol=1e-12)
    phi = random_phase((64, 64), seed=1)
    np.testing.assert_allclose(x, sl * np.exp(1j * phi))
    assert np.isclose(np.abs(phi).max(), np.pi)
    np.testing.assert_array_equal(mri_phantom((64, 64), seed=1), x)
    assert not np.allclose(mri_phantom((64, 64), seed=2), x)
    assert np.isrealobj(mri_phantom((8, 8), phase="none").real)
    assert np.abs(mri_phantom((16, 16), phase="none").imag).max() == 0


@pytest.mark.parametrize("phase", ["smooth", "linear"])
def test_phase_is_smooth_and_resolution_independent(phase):
    phi = random_phase((128, 128), seed=5, phase=phase, max_phase=2.0)
    assert np.isclose(np.abs(phi).max(), 2.0)
    # smooth: neighbouring pixels differ by far less than the range
    assert np.abs(np.diff(phi, axis=0)).max() < 0.1 and np.abs(np.diff(phi, axis=1)).max() < 0.1
    coarse = random_phase((64, 64), seed=5, phase=phase, max_phase=2.0)
    blocks = phi.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(blocks - coarse).max() < 0.05


def test_brain_magnitude_is_a_test_slice():
    x = mri_phantom((64, 64), seed=3, magnitude="brain")
    np.testing.assert_allclose(np.abs(x), brain_slices((64, 64), "test")[3], atol=1e-6)


def test_add_phase_batch():
    mags = brain_slices((32, 32), "val")[:3]
    x = add_phase(mags, seed=4)
    assert x.shape == mags.shape and x.dtype == np.complex128
    np.testing.assert_allclose(np.abs(x), mags, atol=1e-6)
    phases = [random_phase((32, 32), np.random.SeedSequence([4, k])) for k in range(3)]
    for k in range(3):
        np.testing.assert_allclose(x[k], mags[k] * np.exp(1j * phases[k]), atol=1e-6)
    assert not np.allclose(phases[0], phases[1])
    np.testing.assert_allclose(add_phase(mags[:2], seed=4), x[:2])  # stable subsets


def test_mri_input_errors():
    with pytest.raises(ValueError, match="phase"):
        mri_phantom((8, 8), phase="random")
    with pytest.raises(ValueError, match="magnitude"):
        mri_phantom((8, 8), magnitude="knee")
    with pytest.raises(ValueError, match="non-negative"):
        add_phase(-np.ones((4, 4)))
    with pytest.raises(ValueError, match="real"):
        add_phase(np.ones((4, 4), dtype=complex))
    with pytest.raises(ValueError, match="shape"):
        random_phase((8, 8, 8))
    with pytest.raises(ValueError, match="max_phase"):
        random_phase((8, 8), max_phase=0.0)


# --- real slices --------------------------------------------------------------------------------

def test_brain_splits_are_disjoint_with_gaps():
    sets = {split: set(brain_slice_indices(split).tolist()) for split in BRAIN_SPLITS}
    assert {k: len(v) for k, v in sets.items()} == {"train": 56, "val": 8, "test": 8}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not sets[a] & sets[b]
            gap = min(abs(p - q) for p in sets[a] for q in sets[b])
            assert gap >= 4, (a, b, gap)  # at least 3 unused slices between splits
    depth = brain_volume()[0].shape[2]
    assert max(max(s) for s in sets.values()) < depth


def test_brain_slices_content():
    volume, voxel = brain_volume()
    assert volume.shape == (100, 124, 104) and voxel == 1.5
    assert volume.min() == 0.0 and volume.max() == 1.0
    test = brain_slices((128, 128), "test")
    assert test.shape == (8, 128, 128) and test.dtype == np.float32
    # 128 x 128 is the native 1.5 mm grid: the slice is the volume's, centred with zero padding
    k = brain_slice_indices("test")[0]
    np.testing.assert_array_equal(test[0][14:114, 2:126], volume[:, :, k])
    assert test[0][:14].max() == 0 and test[0][114:].max() == 0
    for split in BRAIN_SPLITS:
        slices = brain_slices((48, 40), split)
        assert slices.shape[1:] == (48, 40)
        assert 0.0 <= slices.min() and slices.max() <= 1.0
        assert (slices.reshape(len(slices), -1).max(axis=1) > 0.3).all()  # every slice shows brain


def test_brain_slices_errors():
    with pytest.raises(ValueError, match="split"):
        brain_slices(split="validation")
    with pytest.raises(ValueError, match="shape"):
        brain_slices((0, 64))


def test_real_ct_slices_match_dicom():
    pydicom = pytest.importorskip("pydicom")
    sources = real_ct_sources()
    assert sources[0].startswith("pydicom: data/test_files/CT_small.dcm")
    slices = real_ct_slices((128, 128))  # an undecodable JPEG 2000 file only warns
    assert 1 <= slices.shape[0] <= len(sources) and slices.shape[1:] == (128, 128)
    assert 0.0 <= slices.min() and slices.max() <= 1.0
    # first slice by hand: HU = pixel * slope + intercept, [-1024, 3071] -> [0, 1], ODL axis order
    from pathlib import Path

    ds = pydicom.dcmread(Path(pydicom.__file__).parent / "data/test_files/CT_small.dcm")
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = (np.clip(hu, -1024, 3071) + 1024) / 4095
    np.testing.assert_allclose(slices[0], expected[::-1, :].T, atol=1e-6)
    # soft tissue (about 0 HU) maps to about 0.25: a real CT, not a rescaled picture
    assert 0.2 < np.median(slices[0]) < 0.3
    small = real_ct_slices((64, 32), hu_range=(-1000, 1000))
    assert small.shape[1:] == (64, 32) and small.shape[0] == slices.shape[0]


def test_real_ct_slices_without_pydicom(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match="pip install pydicom"):
        real_ct_slices()


def test_real_ct_slices_errors():
    with pytest.raises(ValueError, match="hu_range"):
        real_ct_slices(hu_range=(100, -100))
    with pytest.raises(ValueError, match="shape"):
        real_ct_slices((64,))
