"""The binary task made from CIFAR-10: class rule, balanced subsets, label noise, and its
arguments refused with one line naming the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import CAT, DOG, VEHICLES, build_fakes, identity, official_files, raw_pixels

from umwelt.data import CIFAR10_CLASSES, cifar10, parse_classes
from umwelt.errors import DataError


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> dict[str, Path]:
    """Every format, tiny (:func:`cifar10_fakes.build_fakes`)."""
    return build_fakes(tmp_path_factory.mktemp("cifar"))


@pytest.mark.parametrize(
    ("classes", "negative", "positive"),
    [
        ("cat,dog", [CAT], [DOG]),
        ("dog,cat", [DOG], [CAT]),
        ("3,5", [CAT], [DOG]),
        (" Airplane , 9", [0], [9]),
        (["truck", 2], [9], [2]),
        ("vehicles-vs-animals", VEHICLES, [2, 3, 4, 5, 6, 7]),
    ],
)
def test_labels_follow_the_class_rule(fakes, classes, negative, positive):
    _, labels_train, labels_test = official_files()
    ds = cifar10(fakes["python-dir"], classes=classes)
    for X, y, labels, offset in (
        (ds.X_train, ds.y_train, labels_train, 0),
        (ds.X_test, ds.y_test, labels_test, 100),
    ):
        cls = labels[identity(np.rint(raw_pixels(X, ds.info))) - offset]
        assert set(cls) == set(negative) | set(positive)
        np.testing.assert_array_equal(y, np.where(np.isin(cls, negative), -1.0, 1.0))
    assert ds.info["negative_classes"] == [CIFAR10_CLASSES[c] for c in negative]
    assert ds.info["positive_classes"] == [CIFAR10_CLASSES[c] for c in positive]


def test_vehicles_vs_animals_without_subset_keeps_every_image(fakes):
    ds = cifar10(fakes["python-tar"], classes="vehicles-vs-animals")
    assert (ds.n_train, ds.n_test) == (100, 20)
    assert ds.info["available_train"] == {"-1": 40, "+1": 60}
    assert ds.info["positive_fraction_train"] == 0.6


@pytest.mark.parametrize("kind", ["python-tar", "tree-dir"])
def test_subset_is_balanced_seeded_and_deterministic(fakes, kind):
    kw = dict(classes="vehicles-vs-animals", subset=6, subset_test=4)
    a, b = cifar10(fakes[kind], seed=1, **kw), cifar10(fakes[kind], seed=1, **kw)
    assert (a.n_train, a.n_test) == (6, 4)
    assert (a.y_train == 1).sum() == (a.y_train == -1).sum() == 3
    assert (a.y_test == 1).sum() == (a.y_test == -1).sum() == 2
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    others = [cifar10(fakes[kind], seed=s, **kw) for s in (2, 3)]
    ids = [tuple(identity(np.rint(raw_pixels(d.X_train, d.info)))) for d in (a, *others)]
    assert len(set(ids)) > 1  # the seed picks the images
    assert a.info["subset"] == 6 and a.info["subset_test"] == 4 and a.info["seed"] == 1


def test_subset_standardizes_with_the_subset_statistics(fakes):
    ds = cifar10(fakes["python-dir"], subset=4, seed=5)
    raw = np.rint(raw_pixels(ds.X_train, ds.info))
    np.testing.assert_allclose(ds.info["channel_mean"], raw.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-5)
    full = cifar10(fakes["python-dir"])
    assert ds.n_test == full.n_test  # the test set is every test image of the classes
    assert ds.info["channel_mean"] != full.info["channel_mean"]


def test_label_noise_randomizes_a_seeded_fraction_of_training_labels(fakes):
    clean = cifar10(fakes["python-dir"], classes="vehicles-vs-animals")
    noisy = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=0.5, seed=4)
    again = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=0.5, seed=4)
    assert noisy.info["randomized"] == 50
    changed = int(np.sum(clean.y_train != noisy.y_train))
    assert changed == noisy.info["flipped"] and 10 < changed < 40  # about half of 50
    np.testing.assert_array_equal(noisy.y_train, again.y_train)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    every = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=1.0)
    assert every.info["randomized"] == 100


def test_parse_classes():
    assert parse_classes("cat,dog") == (("cat",), ("dog",))
    assert parse_classes("VEHICLES-vs-animals")[0] == ("airplane", "automobile", "ship", "truck")
    assert parse_classes([0, "9"]) == (("airplane",), ("truck",))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": "cat,kitten"}, "unknown CIFAR-10 class 'kitten'; valid: airplane, .*truck"),
        ({"classes": "cat,10"}, "unknown CIFAR-10 class '10'"),
        ({"classes": [3, 11]}, "unknown CIFAR-10 class index 11"),
        ({"classes": "cat,cat"}, "class 'cat' given twice in classes='cat,cat'"),
        ({"classes": "dog,5"}, "class 'dog' given twice"),
        ({"classes": "cat"}, "classes must name two CIFAR-10 classes.*got 'cat'"),
        ({"classes": "cat,dog,frog"}, "got 'cat,dog,frog'"),
        ({"classes": 3}, "classes must be a string such as 'cat,dog', got 3"),
        ({"subset": 7}, "subset must be even .* got 7"),
        ({"subset": 0}, "subset must be an integer >= 2, got 0"),
        ({"subset": -4}, "subset must be an integer >= 2, got -4"),
        ({"subset": 2.0}, "subset must be an integer >= 2, got 2.0"),
        ({"subset": 22}, "subset=22 is larger than available: 10 images labelled -1 .* at most 20"),
        ({"subset_test": 6}, "subset_test=6 is larger than available: 2 images .* at most 4"),
        ({"label_noise": 1.5}, "label_noise must be a number in \\[0, 1\\], got 1.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments_raise_data_error_naming_the_value(fakes, kwargs, message):
    with pytest.raises(DataError, match=message):
        cifar10(fakes["python-dir"], **kwargs)
