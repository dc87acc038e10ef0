"""Tests of umwelt.data: the digits default, the synthetic families and the spec parser."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.optimize import linprog
from sklearn.datasets import load_digits

from umwelt.data import (
    DATASETS,
    SPEC_KEYS,
    Dataset,
    digits,
    digits_raw,
    digits_split,
    hidden_manifold,
    load_dataset,
    random_labels,
    teacher,
)
from umwelt.errors import DataError
from umwelt.network import LayeredNetwork

# Small specs of every synthetic family, fast to build.
SYNTHETIC = [
    "random-labels:n=300,dim=10,n_test=200",
    "teacher:n=300,dim=10,hidden=8x8,noise=0.1,n_test=200",
    "hidden-manifold:n=300,dim=20,D=4,n_test=200",
    "hidden-manifold:n=300,dim=20,D=3,g=relu,hidden=6,noise=0.2,n_test=200",
]


def _arrays(ds: Dataset) -> list[np.ndarray]:
    return [ds.X_train, ds.y_train, ds.X_test, ds.y_test]


def _signs(f: np.ndarray) -> np.ndarray:
    return np.where(f >= 0, 1.0, -1.0)


def _linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Is there (a, b) with y_i (a·x_i + b) >= 1 for every i? (an LP feasibility problem)"""
    A = -y[:, None] * np.hstack([X, np.ones((X.shape[0], 1))])
    res = linprog(
        np.zeros(X.shape[1] + 1),
        A_ub=A,
        b_ub=-np.ones(X.shape[0]),
        bounds=(None, None),
        method="highs",
    )
    assert res.status in (0, 2), res.message
    return res.status == 0


# -- digits -------------------------------------------------------------------------------------


def test_digits_shapes_and_labels_follow_the_rule_through_the_split():
    ds = digits()
    images, targets = load_digits(return_X_y=True)  # independent read of the raw data
    train_idx, test_idx = digits_split()
    assert (ds.n_train, ds.n_test, ds.dim) == (1437, 360, 64)
    assert ds.X_train.dtype == ds.y_train.dtype == np.float64
    np.testing.assert_array_equal(ds.y_train, np.where(targets[train_idx] >= 5, 1.0, -1.0))
    np.testing.assert_array_equal(ds.y_test, np.where(targets[test_idx] >= 5, 1.0, -1.0))
    # the rows are those images: undo a standardization computed here from the raw pixels
    mean, std = images[train_idx].mean(0), images[train_idx].std(0)
    scale = np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(ds.X_train * scale + mean, images[train_idx], atol=1e-10)
    np.testing.assert_allclose(ds.X_test * scale + mean, images[test_idx], atol=1e-10)
    assert ds.info["spec"] == "digits:test_fraction=0.2,split_seed=0,noise=0.0"


def test_digits_split_is_fixed_disjoint_covering_and_stratified():
    train_idx, test_idx = digits_split()
    again = digits_split()
    np.testing.assert_array_equal(train_idx, again[0])
    np.testing.assert_array_equal(test_idx, again[1])
    assert len(np.unique(train_idx)) == 1437 and len(np.unique(test_idx)) == 360
    assert np.intersect1d(train_idx, test_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, test_idx), np.arange(1797))
    _, targets = digits_raw()
    per_digit = np.bincount(targets[test_idx], minlength=10)
    assert np.all(np.abs(per_digit - 0.2 * np.bincount(targets)) < 1)
    assert not np.array_equal(digits_split(split_seed=1)[1], test_idx)
    a, b = digits(), digits()
    for u, v in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(u, v)


def test_digits_standardized_with_training_statistics_without_nan():
    ds = digits()
    assert np.all(np.isfinite(ds.X_train)) and np.all(np.isfinite(ds.X_test))
    images, _ = digits_raw()
    train_idx, _ = digits_split()
    constant = images[train_idx].std(0) == 0
    assert constant.sum() >= 1  # pixels always 0: the std-0 path is exercised
    np.testing.assert_array_equal(ds.X_train[:, constant], 0.0)
    np.testing.assert_allclose(ds.X_train[:, ~constant].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train[:, ~constant].std(0), 1.0, rtol=1e-12)
    assert abs(ds.y_train.mean()) < 0.05 and abs(ds.y_test.mean()) < 0.1  # ~balanced


def test_digits_cache_is_read_only_and_datasets_are_private_copies():
    images, targets = digits_raw()
    assert not images.flags.writeable and not targets.flags.writeable
    ds = digits()
    assert ds.X_train.flags.writeable  # torch.from_numpy warns on read-only arrays
    ds.X_train[:] = 99.0
    assert digits().X_train.max() < 99.0


def test_digits_label_noise_flips_training_labels_only():
    clean, noisy = digits(), digits(label_noise=0.25, seed=3)
    assert np.sum(clean.y_train != noisy.y_train) == round(0.25 * 1437) == noisy.info["flipped"]
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    assert not np.array_equal(noisy.y_train, digits(label_noise=0.25, seed=4).y_train)


# -- every synthetic family ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", SYNTHETIC)
def test_synthetic_reproducible_from_seed_and_different_across_seeds(spec):
    a, b, c = load_dataset(spec, seed=5), load_dataset(spec, seed=5), load_dataset(spec, seed=6)
    for u, v in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.allclose(a.X_train, c.X_train)
    assert not np.array_equal(a.y_train, c.y_train)


@pytest.mark.parametrize("spec", SYNTHETIC)
def test_synthetic_shapes_labels_and_standardization(spec):
    ds = load_dataset(spec, seed=1)
    assert (ds.n_train, ds.n_test) == (300, 200)
    assert ds.dim == ds.info["knobs"]["dim"] == ds.X_test.shape[1]
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == np.float64 and set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_allclose(ds.X_train.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(0), 1.0, rtol=1e-12)
    assert np.all(np.abs(ds.X_test.mean(0)) < 0.35)  # same law, training statistics
    assert 0.5 < ds.X_test.std(0).mean() < 1.5
    json.dumps(ds.info)


@pytest.mark.parametrize(
    ("spec", "tol"),
    [
        ("random-labels:n=4000,dim=4,n_test=4000", 0.03),
        ("teacher:n=4000,dim=16,n_test=4000", 0.15),
        ("teacher:n=4000,dim=16,hidden=16x16,n_test=4000", 0.15),
        ("hidden-manifold:n=4000,dim=16,n_test=4000", 0.05),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_roughly_balanced(spec, tol, seed):
    ds = load_dataset(spec, seed=seed)
    assert abs(np.mean(ds.y_train > 0) - 0.5) < tol
    assert abs(np.mean(ds.y_test > 0) - 0.5) < tol


def test_random_labels_are_independent_of_inputs():
    ds = random_labels(2000, 4, seed=0)
    # a linear readout of independent labels explains next to nothing
    corr = ds.X_train.T @ ds.y_train / ds.n_train  # (dim,)
    assert np.all(np.abs(corr) < 4 / np.sqrt(ds.n_train))
    # and 2000 random labels in 4 dimensions are far from linearly separable
    assert not _linearly_separable(ds.X_train, ds.y_train)


# -- teacher ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [(), (8,), (6, 5), (4, 4, 4)])
def test_teacher_labels_are_the_sign_of_the_teacher_output(hidden):
    ds = teacher(400, 7, seed=2, hidden=hidden, n_test=100)
    net = LayeredNetwork.he_normal((7, *hidden, 1), seed=ds.info["teacher_seed"])
    np.testing.assert_array_equal(ds.y_train, _signs(net.relu_forward(ds.X_train)))
    np.testing.assert_array_equal(ds.y_test, _signs(net.relu_forward(ds.X_test)))
    assert ds.info["teacher_widths"] == [7, *hidden, 1]
    assert ds.info["flipped"] == 0


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.37, 1.0])
def test_teacher_label_noise_flips_the_requested_fraction(noise):
    clean = teacher(500, 6, seed=4, n_test=100)
    noisy = teacher(500, 6, seed=4, label_noise=noise, n_test=100)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)  # test labels stay clean
    flips = np.sum(clean.y_train != noisy.y_train)
    assert flips == round(noise * 500) == noisy.info["flipped"]


def test_teacher_rule_is_learnable_and_random_labels_are_not():
    # a linear teacher's labels are linearly separable; random labels of the same size are not
    lin = teacher(300, 5, seed=0, hidden=())
    assert _linearly_separable(lin.X_train, lin.y_train)
    rnd = random_labels(300, 5, seed=0)
    assert not _linearly_separable(rnd.X_train, rnd.y_train)


# -- hidden manifold ----------------------------------------------------------------------------


@pytest.mark.parametrize(("D", "dim"), [(1, 10), (3, 10), (7, 12), (12, 12)])
def test_hidden_manifold_identity_inputs_span_exactly_D_dimensions(D, dim):
    ds = hidden_manifold(200, dim, intrinsic_dim=D, seed=0, g="identity", n_test=50)
    s = np.linalg.svd(ds.X_train, compute_uv=False)  # X_train is centred
    assert s[D - 1] > 1e-3 * s[0]
    assert np.all(s[D:] < 1e-10 * s[0])


def test_hidden_manifold_tanh_data_lie_near_a_D_dimensional_subspace():
    def top_variance(ds, k):
        s2 = np.linalg.svd(ds.X_train, compute_uv=False) ** 2
        return s2[:k].sum() / s2.sum()

    D, dim = 4, 32
    hmm = hidden_manifold(2000, dim, intrinsic_dim=D, seed=0, g="tanh", n_test=10)
    full = random_labels(2000, dim, seed=0, n_test=10)
    assert top_variance(hmm, D) > 0.9  # bent by tanh, but close to the D-dim span
    assert top_variance(full, D) < 0.25  # isotropic data: about D / dim
    s = np.linalg.svd(hmm.X_train, compute_uv=False)
    assert s[-1] > 1e-6 * s[0]  # tanh does lift the data off the linear subspace


def test_hidden_manifold_labels_are_a_function_of_the_latent():
    # identity g and linear teacher: y = sign(w·c) with c an affine function of x
    ds = hidden_manifold(300, 12, intrinsic_dim=3, seed=1, g="identity", n_test=10)
    assert _linearly_separable(ds.X_train, ds.y_train)
    rng = np.random.default_rng(0)
    assert not _linearly_separable(ds.X_train, rng.permutation(ds.y_train))


def test_hidden_manifold_label_noise_and_relu_teacher():
    kw = dict(intrinsic_dim=5, seed=3, hidden=(8,), n_test=100)
    clean = hidden_manifold(400, 10, **kw)
    noisy = hidden_manifold(400, 10, label_noise=0.2, **kw)
    assert clean.info["teacher_widths"] == [5, 8, 1]
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    assert np.sum(clean.y_train != noisy.y_train) == 80 == noisy.info["flipped"]


# -- load_dataset -------------------------------------------------------------------------------


def test_every_dataset_is_known_to_load_dataset():
    assert (
        set(DATASETS)
        == set(SPEC_KEYS)
        == {
            "digits",
            "random-labels",
            "teacher",
            "hidden-manifold",
        }
    )
    for name in ("random-labels", "teacher", "hidden-manifold"):
        ds = load_dataset(f"{name}:n=20,dim=6,n_test=5")
        assert ds.name == ds.info["name"] == name
        assert ds.info["description"] == DATASETS[name]
        assert ds.info["seed"] == 0


def test_defaults_are_small():
    ds = load_dataset("hidden-manifold")
    assert (ds.n_train, ds.n_test, ds.dim, ds.info["knobs"]["D"]) == (1000, 1000, 32, 8)
    assert ds.info["spec"] == (
        "hidden-manifold:n=1000,dim=32,D=8,g=tanh,hidden=none,noise=0.0,n_test=1000,seed=0"
    )


@pytest.mark.parametrize(
    ("spec", "knobs"),
    [
        ("random-labels:n=500,dim=20", {"n": 500, "dim": 20, "n_test": 1000}),
        (
            "teacher: n=200 , dim=8, hidden=4x3, noise=0.1, n_test=50",
            {"n": 200, "dim": 8, "hidden": [4, 3], "noise": 0.1, "n_test": 50},
        ),
        (
            "hidden-manifold:n=100,dim=16,D=2,g=sign,n_test=30",
            {"n": 100, "dim": 16, "D": 2, "g": "sign", "hidden": [], "noise": 0.0, "n_test": 30},
        ),
        ("digits:noise=0.05", {"test_fraction": 0.2, "split_seed": 0, "noise": 0.05}),
    ],
)
def test_spec_round_trips_through_info(spec, knobs):
    ds = load_dataset(spec, seed=7)
    assert ds.info["knobs"] == knobs
    assert ds.info["seed"] == 7
    assert json.loads(json.dumps(ds.info)) == ds.info
    # the canonical spec carries the seed, so it rebuilds the same arrays whatever the keyword
    again = load_dataset(ds.info["spec"], seed=123)
    assert again.info["spec"] == ds.info["spec"]
    for u, v in zip(_arrays(ds), _arrays(again), strict=True):
        np.testing.assert_array_equal(u, v)


def test_spec_seed_overrides_keyword():
    a = load_dataset("teacher:n=50,dim=4,seed=9", seed=0)
    b = load_dataset("teacher:n=50,dim=4", seed=9)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.info["seed"] == 9


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cifar11", "unknown dataset 'cifar11'; known: digits, random-labels, teacher, hidden"),
        ("", "unknown dataset ''"),
        ("teacher:depth=3", "unknown key 'depth' for dataset 'teacher'"),
        ("random-labels:noise=0.1", "unknown key 'noise' for dataset 'random-labels'"),
        ("digits:n=10", "unknown key 'n' for dataset 'digits'"),
        ("teacher:n", "malformed item 'n'"),
        ("teacher:n=", "malformed item 'n='"),
        ("teacher:n=10,,dim=3", "malformed item ''"),
        ("teacher:", "malformed item ''"),
        ("teacher:n=1,n=2", "key 'n' given twice"),
        ("teacher:n=abc", "n must be an integer, got 'abc'"),
        ("teacher:n=1e3", "n must be an integer, got '1e3'"),
        ("teacher:n=0", "n must be an integer >= 1, got 0"),
        ("random-labels:dim=-3", "dim must be an integer >= 1, got -3"),
        ("random-labels:n_test=0", "n_test must be an integer >= 1, got 0"),
        ("hidden-manifold:D=0", "D .* must be an integer >= 1, got 0"),
        ("hidden-manifold:g=sigmoid", "unknown nonlinearity g='sigmoid'"),
        ("teacher:noise=1.5", "noise must be a number in \\[0, 1\\], got 1.5"),
        ("teacher:noise=-0.1", "noise must be a number in \\[0, 1\\], got -0.1"),
        ("teacher:noise=nan", "noise must be a number in \\[0, 1\\], got nan"),
        ("teacher:noise=lots", "noise must be a number, got 'lots'"),
        ("hidden-manifold:noise=2", "noise must be a number in \\[0, 1\\], got 2.0"),
        ("digits:noise=1.01", "noise must be a number in \\[0, 1\\], got 1.01"),
        ("teacher:hidden=16xa", "hidden must be widths joined by 'x'.*got '16xa'"),
        ("teacher:hidden=0x4", "hidden widths must be positive, got '0x4'"),
        ("teacher:seed=-1", "seed must be an integer >= 0, got -1"),
        ("digits:test_fraction=1", "test_fraction must be a number in \\(0, 1\\), got 1.0"),
        ("digits:test_fraction=0.9999", "test_fraction=0.9999 leaves an empty"),
        ("digits:split_seed=-2", "split_seed must be an integer >= 0, got -2"),
    ],
)
def test_bad_specs_raise_data_error_naming_the_value(spec, message):
    with pytest.raises(DataError, match=message):
        load_dataset(spec)


def test_bad_spec_type_and_seed_keyword():
    with pytest.raises(DataError, match="must be a string, got 3"):
        load_dataset(3)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="seed must be an integer >= 0, got -4"):
        load_dataset("random-labels:n=5,dim=2", seed=-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: random_labels(10.0, 3, seed=0), "n must be an integer >= 1, got 10.0"),
        (lambda: random_labels(10, True, seed=0), "dim must be an integer >= 1, got True"),
        (lambda: teacher(10, 3, seed=0, hidden=(4, 0)), re.escape("got (4, 0)")),
        (lambda: teacher(10, 3, seed=0, label_noise=True), "noise must be .* got True"),
        (lambda: hidden_manifold(10, 3, intrinsic_dim=-1, seed=0), "got -1"),
        (lambda: digits(test_fraction=0.0), "test_fraction must be .* got 0.0"),
    ],
)
def test_bad_arguments_raise_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_unbalanceable_teacher_raises(monkeypatch):
    import umwelt.data._synthetic as data

    monkeypatch.setattr(data, "TEACHER_BALANCE_TOL", -1.0)
    monkeypatch.setattr(data, "_TEACHER_MAX_TRIES", 3)
    with pytest.raises(DataError, match=r"no teacher of widths \(5, 4, 1\)"):
        teacher(10, 5, seed=0, hidden=(4,))


def test_dataset_checks_its_arrays():
    X, y = np.zeros((3, 2)), np.array([1.0, -1.0, 1.0])
    Dataset("ok", X, y, X, y)
    with pytest.raises(DataError, match="y_train of dataset .bad. has labels outside"):
        Dataset("bad", X, np.array([1.0, 0.0, 1.0]), X, y)
    with pytest.raises(DataError, match="X_test must be a 2-D float64 array, got shape"):
        Dataset("bad", X, y, X.astype(np.float32), y)
    with pytest.raises(DataError, match="X_train has 3 rows but y_train has 2"):
        Dataset("bad", X, y[:2], X, y)
    with pytest.raises(DataError, match="X_train has 2 features but X_test has 1"):
        Dataset("bad", X, y, X[:, :1], y)
    with pytest.raises(DataError, match="non-finite"):
        Dataset("bad", np.full((3, 2), np.nan), y, X, y)
