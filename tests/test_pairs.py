"""Tests of odl_learned.data.pairs: paired datasets, their determinism and disk cache."""

from __future__ import annotations

import json
import pickle

import numpy as np
import odl
import pytest
import torch
from torch.utils.data import DataLoader

from odl_learned.data import (
    SPLIT_SEEDS,
    ComplexGaussianNoise,
    GaussianNoise,
    PairDataset,
    ct_ellipse_pairs,
    ct_real_pairs,
    fine_space,
    mri_brain_pairs,
    upsample,
)
from odl_learned.data import pairs as pairs_module

CT = {"size": 32, "num_angles": 8, "fine_size": 64}
N = 6


@pytest.fixture(scope="module")
def ct_train():
    return ct_ellipse_pairs("train", N, **CT)


@pytest.fixture(scope="module")
def ct_clean():
    return ct_ellipse_pairs("train", N, noise_level=0.0, **CT)


def all_items(dataset):
    return [dataset[i] for i in range(len(dataset))]


def assert_items_equal(a, b):
    assert len(a) == len(b)
    for (ya, xa), (yb, xb) in zip(a, b):
        assert torch.equal(xa, xb)
        assert torch.equal(ya, yb)


def op_apply(op, x: torch.Tensor) -> np.ndarray:
    """``op(x)`` for one item ``x`` of shape ``(1, *shape)``, as an array."""
    return np.asarray(op(op.domain.element(x[0].numpy())).asarray())


# --- items: shapes and determinism ------------------------------------------------------------


def test_ct_items_shapes_and_operator(ct_train):
    y, x = ct_train[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32
    assert y.shape == (1, *ct_train.op.range.shape) and y.dtype == torch.float32
    assert ct_train.op.domain.shape == (32, 32)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    setting = ct_train.setting
    assert setting["seed"] == SPLIT_SEEDS["train"] and setting["num_images"] == N
    assert setting["fine_size"] == 64 and setting["num_angles"] == 8
    assert ct_train.extras["norm"] > 0
    y_el, x_el = ct_train.elements(0)
    assert y_el in ct_train.op.range and x_el in ct_train.op.domain


def test_items_are_deterministic(ct_train):
    assert_items_equal([ct_train[2], ct_train[2]], [ct_train[2], ct_train[2]])
    again = ct_ellipse_pairs("train", N, **CT)
    assert_items_equal(all_items(again), all_items(ct_train))
    # a larger set starts with the same pairs; reading order does not matter
    larger = ct_ellipse_pairs("train", N + 3, **CT)
    assert_items_equal([larger[i] for i in reversed(range(N))], [ct_train[i] for i in reversed(range(N))])
    # negative indices as for sequences; out of range is an IndexError
    assert torch.equal(ct_train[-1][0], ct_train[N - 1][0])
    with pytest.raises(IndexError):
        ct_train[N]


def test_batches_equal_items(ct_train):
    y, x = ct_train.batch([4, 1, 3])
    for k, i in enumerate([4, 1, 3]):
        torch.testing.assert_close(y[k], ct_train[i][0], rtol=1e-6, atol=1e-7)
        assert torch.equal(x[k], ct_train[i][1])
    ys, xs = ct_train.arrays()
    assert ys.shape == (N, *ct_train[0][0].shape) and xs.shape == (N, 1, 32, 32)


def test_dataloader_workers_give_the_same_batches(ct_train):
    def batches(num_workers):
        loader = DataLoader(ct_train, batch_size=4, num_workers=num_workers, shuffle=False)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert [ys.shape[0] for ys, _ in serial] == [ys.shape[0] for ys, _ in parallel] == [4, 2]
    for (ys, xs), (yp, xp) in zip(serial, parallel):
        assert torch.equal(xs, xp)
        assert torch.equal(ys, yp)


def test_datasets_pickle(ct_train, tmp_path):
    mri = mri_brain_pairs("test", 2, size=32, num_coils=2)
    cached = ct_train.cached(tmp_path)
    for dataset in (ct_train, mri, cached):
        copy = pickle.loads(pickle.dumps(dataset))
        assert_items_equal(all_items(copy), all_items(dataset))
        assert copy.op.range.shape == dataset.op.range.shape


# --- the disk cache ----------------------------------------------------------------------------


def test_cache_round_trip_and_reuse(ct_train, tmp_path, monkeypatch):
    cached = ct_ellipse_pairs("train", N, cache_dir=tmp_path, batch_size=4, **CT)
    assert cached.is_cached and cached.cache_path.parent == tmp_path
    assert sorted(p.name for p in cached.cache_path.iterdir()) == ["settings.json", "x.npy", "y.npy"]
    stored = json.loads((cached.cache_path / "settings.json").read_text())
    assert stored["setting"]["noise_level"] == 0.05 and stored["num_images"] == N
    fresh = all_items(ct_train)
    for (yc, xc), (yf, xf) in zip(all_items(cached), fresh):
        assert torch.equal(xc, xf)
        torch.testing.assert_close(yc, yf, rtol=1e-6, atol=1e-7)

    def refuse(*args, **kwargs):
        raise AssertionError("the cached pairs were generated again")

    monkeypatch.setattr(PairDataset, "_generate_batch", refuse)
    again = ct_ellipse_pairs("train", N, cache_dir=tmp_path, **CT)
    assert again.cache_path == cached.cache_path
    ys, xs = again.arrays()
    assert isinstance(ys, np.memmap) and isinstance(xs, np.memmap)
    assert_items_equal(all_items(again), all_items(cached))
    assert again.op.range.shape == ct_train.op.range.shape  # the operator is still there


def test_other_settings_use_another_cache_folder(tmp_path):
    first = ct_ellipse_pairs("train", 3, cache_dir=tmp_path, **CT)
    noisier = ct_ellipse_pairs("train", 3, noise_level=0.1, cache_dir=tmp_path, **CT)
    more = ct_ellipse_pairs("train", 4, cache_dir=tmp_path, **CT)
    other_split = ct_ellipse_pairs("test", 3, cache_dir=tmp_path, **CT)
    folders = {d.cache_path for d in (first, noisier, more, other_split)}
    assert len(folders) == 4 and all(f.is_dir() for f in folders)
    assert not torch.equal(first[0][0], noisier[0][0])
    assert torch.equal(first[0][1], noisier[0][1])


def test_interrupted_generation_leaves_no_cache(tmp_path, monkeypatch):
    original = PairDataset._generate_batch
    calls = []

    def fail_on_second(self, indices):
        calls.append(list(indices))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, indices)

    monkeypatch.setattr(PairDataset, "_generate_batch", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        ct_ellipse_pairs("train", 4, cache_dir=tmp_path, batch_size=2, **CT)
    (folder,) = tmp_path.iterdir()
    assert list(folder.iterdir()) == []  # no temporary files, no settings.json
    monkeypatch.setattr(PairDataset, "_generate_batch", original)
    done = ct_ellipse_pairs("train", 4, cache_dir=tmp_path, batch_size=2, **CT)
    assert done.cache_path == folder and (folder / "settings.json").is_file()


def test_caching_needs_a_description(tmp_path):
    with pytest.raises(ValueError, match="setting"):
        PairDataset(np.ones((2, 3)), lambda t: t, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="noise model with a `setting`"):
        PairDataset(np.ones((2, 3)), lambda t: t, noise=lambda y, seed: y, setting={"name": "a"},
                    cache_dir=tmp_path)


# --- the CT reference problem -------------------------------------------------------------------


def test_ct_splits_have_different_images():
    xs = {split: torch.stack([ct_ellipse_pairs(split, 3, **CT)[i][1] for i in range(3)])
          for split in ("train", "validation", "test")}
    for a in xs:
        for b in xs:
            if a < b:
                distance = (xs[a][:, None] - xs[b][None]).abs().flatten(2).amax(-1)
                assert bool((distance > 0.1).all()), (a, b)
    assert torch.equal(ct_ellipse_pairs("val", 1, **CT)[0][1], xs["validation"][0])


def test_ct_noise_level_and_model_mismatch(ct_train, ct_clean):
    level = 0.05
    noise_norms, expected, mismatch, misfit = [], [], [], []
    for (y, x), (y0, x0) in zip(all_items(ct_train), all_items(ct_clean)):
        assert torch.equal(x, x0)
        y, y0 = y.numpy().ravel(), y0.numpy().ravel()
        noise_norms.append(np.linalg.norm(y - y0))
        expected.append(level * np.abs(y0).mean() * np.sqrt(y0.size))
        ax = op_apply(ct_train.op, x).ravel()
        mismatch.append(np.linalg.norm(y0 - ax) / np.linalg.norm(ax))
        misfit.append(np.linalg.norm(y - ax) / np.linalg.norm(ax))
    ratio = sum(noise_norms) / sum(expected)
    assert 0.9 < ratio < 1.1  # std = 5% of mean |y|
    # y - op(x_true): the noise plus the small model mismatch of the fine grid
    assert all(level * 0.6 < m < level * 1.3 for m in misfit), misfit
    # no inverse crime: noise-free data differ from op(x_true), but only a little
    assert all(1e-3 < m < 0.05 for m in mismatch), mismatch


def test_upsampling_matches_data_upsample():
    space = odl.uniform_discr([-64, -64], [64, 64], (16, 16), dtype="float32")
    fine = fine_space(space, (40, 40))
    images = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    fast = pairs_module._Upsampler(16, 40)(torch.from_numpy(images))
    np.testing.assert_allclose(fast.numpy(), upsample(images, fine), rtol=1e-6, atol=1e-7)


def test_ct_test_split_is_the_reference_problem():
    problems = pytest.importorskip("odl_learned.evaluation.problems")
    reference = problems.ct_problem(num_images=2, **CT)
    dataset = ct_ellipse_pairs("test", 2, **CT)
    assert dataset.extras["norm"] == pytest.approx(reference.extras["norm"])
    for (y, x), (y_ref, x_ref) in zip(all_items(dataset), reference.pairs):
        np.testing.assert_allclose(x[0].numpy(), x_ref.asarray(), atol=1e-6)
        np.testing.assert_allclose(y[0].numpy(), y_ref.asarray(), rtol=1e-5, atol=1e-6)


def test_ct_real_pairs():
    pytest.importorskip("pydicom")
    dataset = ct_real_pairs(size=32, num_angles=8, fine_size=64, noise_level=0.0)
    assert 1 <= len(dataset) <= 4 and dataset.setting["phantom"] == "real"
    y, x = dataset[0]
    assert x.shape == (1, 32, 32) and y.shape == (1, *dataset.op.range.shape)
    ax = op_apply(dataset.op, x)
    assert 0 < np.linalg.norm(y[0].numpy() - ax) / np.linalg.norm(ax) < 0.05
    with pytest.raises(ValueError, match="real CT slices are available"):
        ct_real_pairs(len(dataset) + 1, size=32, num_angles=8, fine_size=64)


# --- MRI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_coils", [1, 3])
def test_mri_pairs(num_coils):
    dataset = mri_brain_pairs("train", 3, size=32, num_coils=num_coils, noise_level=0.05)
    clean = mri_brain_pairs("train", 3, size=32, num_coils=num_coils, noise_level=0.0)
    data_shape = (32, 32) if num_coils == 1 else (num_coils, 32, 32)
    assert dataset.op.range.shape == data_shape
    mask = torch.from_numpy(dataset.op.mask.cpu().numpy())
    ratios = []
    for (y, x), (y0, x0) in zip(all_items(dataset), all_items(clean)):
        assert y.shape == (1, *data_shape) and y.dtype == torch.complex64
        assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and bool((x >= 0).all())
        # noise-free data are op(x_true) (no fine grid for MRI), zero off the mask
        torch.testing.assert_close(y0[0], dataset.op(dataset.op.domain.element(x[0].numpy())).data)
        noise = (y - y0)[0]
        assert bool((noise[..., ~mask] == 0).all())
        sampled = y0[0][..., mask]
        rms = float(noise[..., mask].abs().pow(2).mean().sqrt())
        ratios.append(rms / (0.05 * float(sampled.abs().mean())))
    assert all(0.9 < r < 1.1 for r in ratios), ratios


def test_mri_splits_are_disjoint_slices():
    indices = {split: set(mri_brain_pairs(split, size=16).setting["slice_indices"])
               for split in ("train", "validation", "test")}
    assert [len(indices[s]) for s in ("train", "validation", "test")] == [56, 8, 8]
    assert not indices["train"] & indices["validation"]
    assert not indices["train"] & indices["test"]
    assert not indices["validation"] & indices["test"]
    # the operator (mask) is the same for every split
    masks = [mri_brain_pairs(s, 1, size=16).op.mask for s in ("train", "test")]
    assert torch.equal(*masks)


def test_mri_test_split_is_the_reference_problem():
    problems = pytest.importorskip("odl_learned.evaluation.problems")
    reference = problems.mri_problem(num_images=2, size=32, num_coils=2)
    dataset = mri_brain_pairs("test", 2, size=32, num_coils=2)
    for (y, x), (y_ref, x_ref) in zip(all_items(dataset), reference.pairs):
        np.testing.assert_allclose(x[0].numpy(), x_ref.asarray(), atol=1e-6)
        torch.testing.assert_close(y[0], y_ref.data, rtol=1e-5, atol=1e-6)


# --- generic datasets and bad input -------------------------------------------------------------


def test_generic_dataset_from_callable_and_unbatched_operator():
    space = odl.uniform_discr([0, 0], [1, 1], (4, 5))
    grad = odl.Gradient(space)  # NumPy space: no batched torch form, called per item
    dataset = PairDataset(lambda i: np.full((4, 5), float(i)) + np.arange(5), grad, num_images=3,
                          noise=GaussianNoise(0.1), seed=7)
    y, x = dataset[2]
    assert x.shape == (1, 4, 5) and y.shape == (1, 2, 4, 5) and y.dtype == torch.float32
    assert dataset.op is grad
    y_el, x_el = dataset.elements(1)
    assert y_el in grad.range and x_el in space
    assert torch.equal(PairDataset(lambda i: np.full((4, 5), float(i)) + np.arange(5), grad, num_images=3,
                                   noise=GaussianNoise(0.1), seed=7)[2][0], y)


def test_noise_models():
    clean = torch.ones(50, 50)
    assert torch.equal(GaussianNoise(0.0)(clean, 1), clean)
    assert not torch.equal(GaussianNoise(0.1)(clean, 1), GaussianNoise(0.1)(clean, 2))
    noisy = ComplexGaussianNoise(0.1)(torch.ones(50, 50, dtype=torch.complex64), 0)
    assert 0.08 < float((noisy - 1).abs().pow(2).mean().sqrt()) < 0.12
    with pytest.raises(ValueError, match="non-negative"):
        GaussianNoise(-0.1)


@pytest.mark.parametrize("factory", [
    lambda split: ct_ellipse_pairs(split, 2, **CT),
    lambda split: mri_brain_pairs(split, 1, size=16),
])
def test_unknown_split(factory):
    with pytest.raises(ValueError, match="expected one of 'train', 'validation' \\(or 'val'\\), 'test'"):
        factory("training")


def test_bad_input():
    with pytest.raises(ValueError, match="num_images must be a positive integer"):
        ct_ellipse_pairs("train", -1, **CT)
    with pytest.raises(ValueError, match="num_images must be a positive integer"):
        ct_ellipse_pairs("train", 0, **CT)
    with pytest.raises(TypeError, match="num_images must be a positive integer"):
        ct_ellipse_pairs("train", 2.5, **CT)
    with pytest.raises(ValueError, match="fine_size must be at least"):
        ct_ellipse_pairs("train", 2, size=32, fine_size=16)
    with pytest.raises(ValueError, match="noise_level must be a non-negative"):
        ct_ellipse_pairs("train", 2, noise_level=-0.1, **{k: v for k, v in CT.items()})
    with pytest.raises(ValueError, match="has 8 brain slices, asked for 9"):
        mri_brain_pairs("test", 9, size=16)
    with pytest.raises(ValueError, match="num_images must be a positive integer"):
        mri_brain_pairs("test", -2, size=16)
    with pytest.raises(ValueError, match="impossible acceleration"):
        mri_brain_pairs("test", 1, size=16, acceleration=100)
    with pytest.raises(ValueError, match="num_images is required"):
        PairDataset(lambda i: np.zeros(3), lambda t: t)
    with pytest.raises(ValueError, match="exceeds the 2 images"):
        PairDataset(np.zeros((2, 3)), lambda t: t, num_images=3)
    with pytest.raises(ValueError, match=r"array \(N, \*shape\)"):
        PairDataset(np.zeros(3), lambda t: t)
    with pytest.raises(TypeError, match="forward must be"):
        PairDataset(np.zeros((2, 3)), "radon")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        PairDataset(np.zeros((2, 3)), lambda t: t, seed=-1)
    with pytest.raises(TypeError, match="index must be an integer"):
        PairDataset(np.zeros((2, 3)), lambda t: t)[0.5]


def test_mri_brain_pairs_augment_mirrors_and_draws_new_noise():
    n = 3
    plain = mri_brain_pairs("train", n, size=32)
    augmented = mri_brain_pairs("train", n, size=32, augment=4)
    assert len(augmented) == 4 * n and augmented.setting["augment"]["copies"] == 4
    for i in range(n):
        x = plain[i][1]
        for copy in range(4):
            expected = x.flip(-2) if copy % 2 else x  # axis 0 of a slice: left to right
            torch.testing.assert_close(augmented[copy * n + i][1], expected, rtol=0, atol=0)
        # copies 0 and 2 have the same image and different noise
        y0, y2 = augmented[i][0], augmented[2 * n + i][0]
        difference = (y0 - y2).abs().max()
        assert 0 < difference < 0.2 * y0.abs().max()
    with pytest.raises(ValueError, match="training split only"):
        mri_brain_pairs("validation", 2, size=32, augment=2)
    with pytest.raises(ValueError, match="augment"):
        mri_brain_pairs("train", 2, size=32, augment=0)
