r"""The binary dataset (:func:`cifar10`): selection, balanced subsets, random labels, scaling.

The images of the selected classes, read from any format (:mod:`._detect`), become a
:class:`~umwelt.data.Dataset`: a balanced seeded subset of each split when asked, exactly
``round(p * n_train)`` training labels redrawn by a fair coin for ``label_noise=p``, and every
image standardized per channel with the selected *training* images' exact mean and std
(:func:`_channel_stats`, from histograms; :func:`_standardize_images`, through a lookup table).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from umwelt.data._base import Dataset, _check_count, _check_fraction, _finish, _spawn
from umwelt.data._cifar10._classes import (
    CIFAR10_CLASSES,
    _canonical,
    _Selection,
    parse_classes,
)
from umwelt.data._cifar10._detect import _read
from umwelt.data._cifar10._layout import _existing
from umwelt.errors import DataError

CIFAR10_DESCRIPTION = "CIFAR-10 (Krizhevsky 2009), 32x32 RGB images, two classes or groups -> -1/+1"


def _check_subset(value: object, what: str) -> int | None:
    if value is None:
        return None
    n = _check_count(value, what, minimum=2)
    if n % 2:
        raise DataError(f"{what} must be even (half from each side), got {n}")
    return n


def _select(
    ids: np.ndarray, selection: _Selection, n: int | None, rng: np.random.Generator, what: str
) -> np.ndarray:
    """Indices of the selected images; a balanced random ``n`` of them when ``n`` is given."""
    sides = [np.flatnonzero(np.isin(ids, [CIFAR10_CLASSES.index(c) for c in s])) for s in selection]
    if n is None:
        return np.sort(np.concatenate(sides))
    half = n // 2
    if half > min(len(s) for s in sides):
        raise DataError(
            f"{what}={n} is larger than available: {len(sides[0])} images labelled -1 "
            f"({','.join(selection[0])}) and {len(sides[1])} labelled +1 "
            f"({','.join(selection[1])}) allow at most {2 * min(len(s) for s in sides)}"
        )
    chosen = [rng.choice(s, size=half, replace=False) for s in sides]
    return np.sort(np.concatenate(chosen))


def _channel_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std (population) of uint8 ``(n, 3, H, W)``, from histograms."""
    values = np.arange(256, dtype=np.float64)
    mean, std = np.empty(3), np.empty(3)
    for c in range(3):
        counts = np.bincount(pixels[:, c].ravel(), minlength=256).astype(np.float64)  # (256,)
        total = counts.sum()
        mean[c] = counts @ values / total
        std[c] = np.sqrt(counts @ (values - mean[c]) ** 2 / total)
    return mean, std


def _standardize_images(pixels: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """uint8 ``(n, 3, H, W)`` -> float32 ``(x - mean_c) / scale_c`` through a lookup table."""
    lut = ((np.arange(256.0)[None, :] - mean[:, None]) / scale[:, None]).astype(np.float32)
    out = np.empty(pixels.shape, dtype=np.float32)  # (n, 3, H, W)
    for c in range(3):
        np.take(lut[c], pixels[:, c], out=out[:, c], mode="clip")  # uint8: in range
    return out


def cifar10(
    path: str | os.PathLike[str],
    *,
    classes: str | Sequence[str | int] = "cat,dog",
    subset: int | None = None,
    subset_test: int | None = None,
    label_noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    r"""Binary CIFAR-10 from ``path``, in any format of :data:`CIFAR10_FORMATS`.

    Args:
        path: a ``cifar-10-batches-py`` directory, ``cifar-10-python.tar.gz``, or an image
            tree (directory, ``.tar`` or ``.tar.gz``); the format is read from the contents.
        classes: ``"a,b"`` (names or indices; ``a`` → −1, ``b`` → +1) or a grouping such as
            ``"vehicles-vs-animals"`` (see :func:`parse_classes`).
        subset: even number of training images, half from each side, drawn with ``seed``;
            ``None`` keeps every training image of the selected classes.
        subset_test: the same for the test set; ``None`` keeps every test image.
        label_noise: fraction of training images given a random label (fair coin), in [0, 1].
        seed: seed of the subsets and the random labels; the same arguments give the same
            arrays.

    Returns:
        A :class:`Dataset` named ``"cifar10"``: float32 images ``(n, 3, 32, 32)`` standardized
        per channel with the training set's statistics, labels float64 ±1. ``info`` records
        ``spec`` (the path as given), ``source`` (absolute), ``format``, ``classes``,
        ``negative_classes``, ``positive_classes``, ``subset``, ``subset_test``,
        ``label_noise``, ``randomized`` and ``flipped`` label counts, ``seed``, sizes,
        ``available_train``/``available_test`` (per side), and ``channel_mean`` and
        ``channel_std`` (pixel units 0–255).

    Raises:
        DataError: one line naming the value, for a path that does not exist or holds neither
            format, a corrupt archive or batch, a refused pickle global, an unknown class or
            a class given twice, or a subset that is odd, not positive or larger than the
            images available.
    """
    selection = parse_classes(classes)
    subset = _check_subset(subset, "subset")
    subset_test = _check_subset(subset_test, "subset_test")
    label_noise = _check_fraction(label_noise, "label_noise")
    r_train, r_test, r_noise = _spawn(seed, 3)
    source = _existing(path)
    wanted = frozenset(CIFAR10_CLASSES.index(c) for s in selection for c in s)
    fmt, train, test = _read(source, wanted)

    idx_train = _select(train.ids, selection, subset, r_train, "subset")
    idx_test = _select(test.ids, selection, subset_test, r_test, "subset_test")
    pixels_train, pixels_test = train.load(idx_train), test.load(idx_test)  # uint8 (n, 3, 32, 32)
    negative = [CIFAR10_CLASSES.index(c) for c in selection[0]]
    y_train = np.where(np.isin(train.ids[idx_train], negative), -1.0, 1.0)  # (n_train,)
    y_test = np.where(np.isin(test.ids[idx_test], negative), -1.0, 1.0)  # (n_test,)

    k = round(label_noise * y_train.shape[0])
    noisy = r_noise.choice(y_train.shape[0], size=k, replace=False)
    clean = y_train.copy()
    y_train[noisy] = np.where(r_noise.random(k) < 0.5, -1.0, 1.0)

    mean, std = _channel_stats(pixels_train)
    scale = np.where(std > 0.0, std, 1.0)
    X_train = _standardize_images(pixels_train, mean, scale)
    X_test = _standardize_images(pixels_test, mean, scale)

    def available(ids: np.ndarray) -> dict[str, int]:
        return {
            "-1": int(np.isin(ids, negative).sum()),
            "+1": int((~np.isin(ids, negative)).sum()),
        }

    canonical = _canonical(selection)
    knobs = {
        "classes": canonical,
        "subset": subset,
        "subset_test": subset_test,
        "label_noise": label_noise,
    }
    info = {
        "name": "cifar10",
        "spec": os.fspath(path),
        "description": CIFAR10_DESCRIPTION,
        "knobs": knobs,
        "seed": int(seed),
        "source": str(source.resolve()),
        "format": fmt,
        **knobs,
        "negative_classes": list(selection[0]),
        "positive_classes": list(selection[1]),
        "randomized": int(k),
        "flipped": int(np.sum(y_train != clean)),
        "available_train": available(train.ids),
        "available_test": available(test.ids),
        "channel_mean": [float(m) for m in mean],
        "channel_std": [float(s) for s in scale],
    }
    return _finish(
        "cifar10",
        X_train,
        y_train,
        X_test,
        y_test,
        info,
        standardization="per channel, training mean and std (pixel units in channel_mean/std)",
    )
