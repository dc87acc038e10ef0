"""The embedded default dataset: scikit-learn's bundled 8×8 handwritten digits, made binary.

1797 images of 8×8 pixels (64 features) ship with scikit-learn, so the default needs no
download; digits 0–4 → −1 and 5–9 → +1, with a fixed stratified train/test split.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from umwelt.data._base import (
    Dataset,
    _check_count,
    _check_fraction,
    _finish,
    _flip,
    _info,
    standardize,
)
from umwelt.errors import DataError


@functools.lru_cache(maxsize=1)
def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, read once: pixels ``(1797, 64)`` in 0..16 and digits.

    Returns:
        ``(images, targets)``: float64 ``(1797, 64)`` and int64 ``(1797,)``, both read-only
        (they are cached and shared; copy before changing them).

    Raises:
        DataError: when scikit-learn (which ships the data) is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - sklearn is a dependency
        raise DataError(
            f"the digits data ships with scikit-learn, which failed to import: {e}"
        ) from e
    images, targets = load_digits(return_X_y=True)
    images = np.array(images, dtype=np.float64)
    targets = np.array(targets, dtype=np.int64)
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def digits_split(
    *, test_fraction: float = 0.2, split_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed train/test split of the digits, stratified by digit (0..9).

    The test set has ``ceil(test_fraction * 1797)`` images (360 at the default 0.2); each
    digit contributes its share, rounded by largest remainder, chosen at random with
    ``default_rng(split_seed)``.

    Returns:
        ``(train_idx, test_idx)``: sorted, disjoint row indices into :func:`digits_raw`
        covering all 1797 rows.

    Raises:
        DataError: when ``test_fraction`` is not in (0, 1) or leaves an empty split.
    """
    test_fraction = _check_fraction(test_fraction, "test_fraction", open_interval=True)
    split_seed = _check_count(split_seed, "split_seed", minimum=0)
    _, targets = digits_raw()
    n = targets.shape[0]
    n_test = math.ceil(test_fraction * n)
    if not 1 <= n_test <= n - 1:
        raise DataError(f"test_fraction={test_fraction!r} leaves an empty training or test set")
    classes, counts = np.unique(targets, return_counts=True)
    share = counts * (n_test / n)  # (10,) exact quotas, summing to n_test
    quota = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - quota), kind="stable")  # largest remainder first
    quota[order[: n_test - int(quota.sum())]] += 1
    rng = np.random.default_rng(split_seed)
    test_idx = np.concatenate(
        [
            rng.permutation(np.flatnonzero(targets == c))[:q]
            for c, q in zip(classes, quota, strict=True)
        ]
    )
    test_idx.sort()
    train_idx = np.setdiff1d(np.arange(n), test_idx)
    return train_idx, test_idx


def digits(
    *, test_fraction: float = 0.2, split_seed: int = 0, label_noise: float = 0.0, seed: int = 0
) -> Dataset:
    """The embedded default: handwritten digits, 0–4 → −1 and 5–9 → +1.

    1797 images of 8×8 pixels (64 features), split by :func:`digits_split` (1437 training /
    360 test at the default), standardized with training statistics (pixels that are always 0
    stay 0). Training images keep their original order.

    Args:
        test_fraction: share of the images in the test set, in (0, 1).
        split_seed: seed of the split; the default split is the fixed one everyone uses.
        label_noise: fraction of training labels flipped (exactly ``round(noise * n_train)``,
            drawn with ``seed``); test labels stay clean.
        seed: used only for ``label_noise``; the data themselves are fixed.

    Spec keys: ``test_fraction`` (0.2), ``split_seed`` (0), ``noise`` (0.0), ``seed``.
    """
    test_fraction = _check_fraction(test_fraction, "test_fraction", open_interval=True)
    split_seed = _check_count(split_seed, "split_seed", minimum=0)
    label_noise = _check_fraction(label_noise, "noise")
    seed = _check_count(seed, "seed", minimum=0)
    images, targets = digits_raw()
    train_idx, test_idx = digits_split(test_fraction=test_fraction, split_seed=split_seed)
    X_train, X_test = standardize(images[train_idx], images[test_idx])
    labels = np.where(targets >= 5, 1.0, -1.0)  # (1797,)
    y_train, flipped = _flip(labels[train_idx], label_noise, np.random.default_rng(seed))
    knobs = {"test_fraction": test_fraction, "split_seed": split_seed, "noise": label_noise}
    info = _info("digits", knobs, seed if label_noise > 0 else None, flipped=flipped)
    return _finish("digits", X_train, y_train, X_test, labels[test_idx].copy(), info)
