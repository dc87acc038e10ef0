"""CIFAR-10's formats: each detected from its contents and read right, pixel for pixel.

Every format is built tiny at test time (:mod:`cifar10_fakes`); the official batches' images
come back in source order with every value where the layout puts it, the image trees' in
class-then-name order (PNG exactly, JPEG closely), and the formats of one family agree.
"""

from __future__ import annotations

import pickletools
import shutil
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import (
    CAT,
    DOG,
    N_BATCH,
    N_TREE_TEST,
    N_TREE_TRAIN,
    PYTHON,
    TREES,
    build_fakes,
    identity,
    image,
    official_files,
    official_row,
    raw_pixels,
    tree_files,
)

from umwelt.data import cifar10, detect_format


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> dict[str, Path]:
    """Every format, tiny (:func:`cifar10_fakes.build_fakes`)."""
    return build_fakes(tmp_path_factory.mktemp("cifar"))


def test_fake_batches_are_written_like_the_official_ones():
    files, _, _ = official_files()
    ops = {op.name for op, _, _ in pickletools.genops(files["data_batch_1"])}
    assert "BINSTRING" in ops or "SHORT_BINSTRING" in ops  # Python 2 strings
    assert b"numpy.core.multiarray\n_reconstruct" in files["data_batch_1"]
    assert b"_codecs" not in files["data_batch_1"]
    assert b"_codecs\nencode" in files["data_batch_2"]  # Python 3 at protocol 2


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("python-dir", "python-dir"),
        ("python-tar", "python-tar"),
        ("tree-dir", "image-tree-dir"),
        ("tree-tar", "image-tree-tar"),
        ("tree-targz", "image-tree-tar"),
    ],
)
def test_detect_format_reads_the_contents(fakes, kind, fmt, tmp_path):
    assert detect_format(fakes[kind]) == fmt
    # the name says nothing: a copy under a misleading name is detected the same way
    if fakes[kind].is_file():
        decoy = tmp_path / "cifar-10-batches-py.zip"
        decoy.write_bytes(fakes[kind].read_bytes())
        assert detect_format(decoy) == fmt
        assert cifar10(decoy).info["format"] == fmt


def test_detect_format_one_folder_up(fakes, tmp_path):
    assert detect_format(fakes["python-dir"].parent) == "python-dir"  # holds cifar-10-batches-py
    shutil.copytree(fakes["tree-dir"], tmp_path / "CIFAR-10-images")  # as a git clone is
    assert detect_format(tmp_path) == "image-tree-dir"
    a, b = cifar10(tmp_path), cifar10(fakes["tree-dir"])
    np.testing.assert_array_equal(a.X_train, b.X_train)


@pytest.mark.parametrize("kind", PYTHON)
def test_official_layout_labels_and_standardization(fakes, kind):
    _, labels_train, labels_test = official_files()
    ds = cifar10(fakes[kind], classes="cat,dog")
    assert ds.input_shape == (3, 32, 32) and ds.dim == 3072
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    assert ds.y_train.dtype == np.float64
    assert (ds.n_train, ds.n_test) == (20, 4)  # 2 per class in each of 5 batches; 2 in test
    raw_train, raw_test = raw_pixels(ds.X_train, ds.info), raw_pixels(ds.X_test, ds.info)
    np.testing.assert_allclose(raw_train, np.rint(raw_train), atol=1e-3)
    raw_train, raw_test = np.rint(raw_train), np.rint(raw_test)
    # the images, in source order, with every value at [n, c, y, x]
    i_train = identity(raw_train)
    i_test = identity(raw_test)
    assert list(i_train) == [i for i in range(100) if labels_train[i] in (CAT, DOG)]
    assert list(i_test) == [100 + j for j in range(N_BATCH) if labels_test[j] in (CAT, DOG)]
    expected = np.stack([image(i) for i in i_train])
    np.testing.assert_array_equal(raw_train, expected)
    np.testing.assert_array_equal(raw_test, np.stack([image(i) for i in i_test]))
    n, c, y, x = 3, 1, 17, 5
    assert raw_train[n, c, y, x] == official_row(i_train[n])[c * 1024 + y * 32 + x]
    # cat -> -1, dog -> +1
    np.testing.assert_array_equal(ds.y_train, np.where(labels_train[i_train] == CAT, -1.0, 1.0))
    np.testing.assert_array_equal(ds.y_test, np.where(labels_test[i_test - 100] == CAT, -1, 1))
    # per-channel standardization with training statistics
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ds.info["channel_mean"], expected.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(ds.info["channel_std"], expected.std(axis=(0, 2, 3)))
    assert ds.info["format"] == kind and ds.info["classes"] == "cat,dog"
    assert ds.info["available_train"] == {"-1": 10, "+1": 10}


def test_python_dir_and_tar_agree(fakes):
    a, b = cifar10(fakes["python-dir"]), cifar10(fakes["python-tar"])
    for u, v in zip(
        (a.X_train, a.y_train, a.X_test, a.y_test), (b.X_train, b.y_train, b.X_test, b.y_test)
    ):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", TREES)
def test_image_tree_pixels_and_labels(fakes, kind):
    _, order = tree_files()
    ds = cifar10(fakes[kind], classes="dog,cat")
    assert (ds.n_train, ds.n_test) == (2 * N_TREE_TRAIN, 2 * N_TREE_TEST)
    for X, y, split in ((ds.X_train, ds.y_train, "train"), (ds.X_test, ds.y_test, "test")):
        n_per = len(order[split]) // 10  # images per class, classes in CIFAR10_CLASSES order
        picked = [(k // n_per, *r) for k, r in enumerate(order[split]) if k // n_per in (CAT, DOG)]
        raw = raw_pixels(X, ds.info)
        for (_, i, png), got in zip(picked, raw, strict=True):
            if png:  # lossless: exact
                np.testing.assert_allclose(got, image(i), atol=1e-3)
            else:  # JPEG: close
                assert np.abs(got - image(i)).mean() < 5
        classes = np.array([cls for cls, _, _ in picked])
        np.testing.assert_array_equal(y, np.where(classes == DOG, -1.0, 1.0))  # dog first
    assert ds.info["format"] == ("image-tree-dir" if kind == "tree-dir" else "image-tree-tar")


def test_image_tree_formats_agree(fakes):
    sets = [cifar10(fakes[k], classes="vehicles-vs-animals", subset=8, seed=3) for k in TREES]
    for other in sets[1:]:
        np.testing.assert_array_equal(sets[0].X_train, other.X_train)
        np.testing.assert_array_equal(sets[0].y_train, other.y_train)
        np.testing.assert_array_equal(sets[0].X_test, other.X_test)
