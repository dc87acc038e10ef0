"""CIFAR-10 through :func:`load_dataset` and the :class:`Dataset` container, and the real images.

The integration test reads the shared JPEG tree ``../shared/data/cifar10-jpeg.tar.gz`` when it
exists; everything else is a tiny fake (:mod:`cifar10_fakes`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import build_fakes, raw_pixels

from umwelt.data import Dataset, cifar10, load_dataset
from umwelt.errors import DataError

SHARED_TAR = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> dict[str, Path]:
    """Every format, tiny (:func:`cifar10_fakes.build_fakes`)."""
    return build_fakes(tmp_path_factory.mktemp("cifar"))


def test_load_dataset_takes_a_path(fakes):
    ds = load_dataset(str(fakes["tree-tar"]), seed=2, classes="cat,dog", subset=4)
    again = load_dataset(fakes["tree-tar"], seed=2, classes="cat,dog", subset=4)  # PathLike
    np.testing.assert_array_equal(ds.X_train, again.X_train)
    assert ds.name == "cifar10" and ds.info["spec"] == str(fakes["tree-tar"])
    assert ds.info["source"] == str(fakes["tree-tar"].resolve())
    assert ds.info["knobs"] == {
        "classes": "cat,dog",
        "subset": 4,
        "subset_test": None,
        "label_noise": 0.0,
    }
    assert json.loads(json.dumps(ds.info)) == ds.info
    default = load_dataset(str(fakes["python-dir"]))
    assert default.info["classes"] == "cat,dog" and default.info["subset"] is None


def test_flattened_gives_an_mlp_its_vectors(fakes):
    ds = cifar10(fakes["python-dir"])
    flat = ds.flattened()
    assert flat.X_train.shape == (ds.n_train, 3072) and flat.dim == ds.dim == 3072
    assert flat.input_shape == (3072,) and flat.X_train.dtype == np.float32
    np.testing.assert_array_equal(flat.X_train[2], ds.X_train[2].ravel())
    assert np.shares_memory(flat.X_train, ds.X_train)
    assert flat.flattened() is flat
    assert "input_shape=(3, 32, 32)" in repr(ds)


def test_dataset_dtype_rule():
    y = np.array([1.0, -1.0])
    Dataset("img", np.zeros((2, 3, 4, 4), np.float32), y, np.zeros((2, 3, 4, 4), np.float32), y)
    with pytest.raises(DataError, match="X_test must be a 4-D float32 array, got shape"):
        Dataset("bad", np.zeros((2, 3, 4, 4), np.float32), y, np.zeros((2, 3, 4, 4)), y)
    with pytest.raises(DataError, match=r"inputs of shape \(3, 4, 4\) but X_test has \(3, 4, 5\)"):
        Dataset("bad", np.zeros((2, 3, 4, 4)), y, np.zeros((2, 3, 4, 5)), y)
    with pytest.raises(DataError, match="X_train must be a float64 or float32 array"):
        Dataset("bad", np.zeros((2, 3), np.float16), y, np.zeros((2, 3), np.float16), y)
    with pytest.raises(DataError, match="X_train must be .* got shape \\(2,\\)"):
        Dataset("bad", np.zeros(2), y, np.zeros(2), y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": "cat,dog"}, "classes='cat,dog' applies to CIFAR-10 paths only, not to"),
        ({"subset": 100}, "subset=100 applies to CIFAR-10 paths only"),
        ({"subset_test": 10}, "subset_test=10 applies"),
        ({"label_noise": 0.1}, "label_noise=0.1 applies .* spec key noise= flips"),
    ],
)
def test_cifar_keywords_are_refused_for_named_families(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset("digits", **kwargs)


# -- the real images ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED_TAR.exists(),
    reason=f"the shared CIFAR-10 JPEG tree {SHARED_TAR.resolve()} is absent (only the "
    f"project's own machine has ../shared/data/)",
)
def test_shared_cifar10_jpeg_tree():
    ds = load_dataset(str(SHARED_TAR), classes="cat,dog", subset=200, seed=0)
    assert ds.info["format"] == "image-tree-tar"
    assert ds.X_train.shape == (200, 3, 32, 32) and ds.X_test.shape == (2000, 3, 32, 32)
    assert ds.X_train.dtype == np.float32
    assert (ds.y_train == -1).sum() == (ds.y_train == 1).sum() == 100
    assert (ds.y_test == -1).sum() == (ds.y_test == 1).sum() == 1000
    assert ds.info["available_train"] == {"-1": 5000, "+1": 5000}
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-4)
    assert all(90 < m < 150 for m in ds.info["channel_mean"])  # natural images, 0..255
    assert all(40 < s < 90 for s in ds.info["channel_std"])
    raw = raw_pixels(ds.X_test, ds.info)
    assert raw.min() > -0.01 and raw.max() < 255.01  # standardized pixels of 0..255
    assert raw.min() < 1 and raw.max() > 254
    np.testing.assert_allclose(raw, np.rint(raw), atol=1e-3)
