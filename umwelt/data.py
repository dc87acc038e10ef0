r"""Datasets for binary classification: the embedded default and synthetic families (THEORY.md §5).

The paper's headline claim is that training reaches zero risk when the network's potential
complexity exceeds the dataset's. Testing it needs datasets whose complexity is a knob:

* ``digits`` — the embedded default: scikit-learn's bundled 8×8 handwritten digits (1797
  images, 64 features) made binary, digits 0–4 → −1 and 5–9 → +1, with a fixed stratified
  train/test split. Real data that needs no download.
* ``random-labels`` — Gaussian inputs with labels drawn uniformly at random, independent of the
  inputs (Zhang et al. 2017, *Understanding deep learning requires rethinking generalization*).
  Nothing to learn: a network reaches zero training risk only by memorizing, so only when its
  capacity exceeds the number of examples ``n`` (the knob).
* ``teacher`` — Gaussian inputs labelled by the sign of a random bias-free ReLU network (the
  teacher, a :class:`~umwelt.network.LayeredNetwork`). The rule is realizable by a student at
  least as large as the teacher; the teacher's widths and depth are the knob, and ``noise``
  flips a fraction of the training labels (Zhang et al.'s partially corrupted labels).
* ``hidden-manifold`` — Goldt, Mézard, Krzakala & Zdeborová's hidden-manifold model (*Modelling
  the influence of data structure on learning in neural networks*, PRX 2020): latent
  :math:`c \sim \mathcal N(0, I_D)`, inputs :math:`x = g(F^\top c/\sqrt D)` with a fixed random
  feature matrix :math:`F \in \mathbb R^{D \times d}`, labels from a teacher acting on
  :math:`c`. The data lie on a :math:`D`-dimensional manifold in :math:`\mathbb R^d`; the
  intrinsic dimension ``D`` is the knob.

Every dataset is a :class:`Dataset`: float64 inputs ``(n, d)``, labels in ``{-1.0, +1.0}``,
inputs standardized per feature with *training* statistics (so the test set sees the same map),
and a JSON-serializable ``info`` dict that records the canonical spec, the knobs and the seed.
Synthetic data are drawn from ``np.random.default_rng`` streams spawned from
``np.random.SeedSequence(seed)``, so the same arguments give identical arrays, and the test set
comes from the same law as the training set.

:func:`load_dataset` turns a spec string such as ``"teacher:n=1000,dim=32,hidden=16x16,noise=0.1"``
into a dataset; the keys of each family are listed in :data:`SPEC_KEYS` and in its docstring.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from umwelt.errors import DataError
from umwelt.network import LayeredNetwork

__all__ = [
    "DATASETS",
    "SPEC_KEYS",
    "TEACHER_BALANCE_TOL",
    "Dataset",
    "digits",
    "digits_raw",
    "digits_split",
    "hidden_manifold",
    "load_dataset",
    "random_labels",
    "standardize",
    "teacher",
]

#: name -> one-line description of every dataset :func:`load_dataset` knows.
DATASETS: dict[str, str] = {
    "digits": "scikit-learn's 8x8 handwritten digits (1797 x 64), digits 0-4 -> -1, 5-9 -> +1",
    "random-labels": "Gaussian inputs, labels +-1 uniformly at random (Zhang et al. 2017)",
    "teacher": "Gaussian inputs labelled by the sign of a random bias-free ReLU teacher",
    "hidden-manifold": "inputs g(F^T c / sqrt(D)) on a D-dim manifold, labels from a teacher on c",
}

#: A random bias-free ReLU teacher is usually far from balanced (its output has a non-zero
#: mean: positive fractions from 1% to 99% over seeds). Teachers are therefore drawn until the
#: fraction of positive labels on a reference sample of 4096 inputs lies within this distance
#: of 1/2: the teacher is a random ReLU network *conditioned on* roughly balanced labels.
TEACHER_BALANCE_TOL = 0.1
_TEACHER_REFERENCE = 4096
_TEACHER_MAX_TRIES = 1000

# A feature whose training std is below this (relative to its mean) is constant: scale 1.
_CONSTANT_TOL = 1e-12

_NONLINEARITIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "identity": lambda u: u,
    "relu": lambda u: np.maximum(u, 0.0),
    "sign": lambda u: np.where(u >= 0.0, 1.0, -1.0),
}


# -- the container ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A binary classification dataset, split into training and test sets.

    Attributes:
        name: the family (a key of :data:`DATASETS`).
        X_train: inputs ``(n_train, d)``, float64, standardized with training statistics.
        y_train: labels ``(n_train,)``, float64 in ``{-1.0, +1.0}``.
        X_test: inputs ``(n_test, d)``, standardized with the *training* statistics.
        y_test: labels ``(n_test,)``, float64 in ``{-1.0, +1.0}``.
        info: JSON-serializable record: ``spec`` (canonical, ``load_dataset(info["spec"])``
            rebuilds the same arrays), ``knobs``, ``seed``, sizes, ``description`` and
            family-specific facts (teacher seed, flipped labels, ...).

    Raises:
        DataError: when the arrays do not have these shapes, dtypes or label values.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype == np.float64):
                raise DataError(f"X_{split} must be a 2-D float64 array, got {_describe(X)}")
            if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype == np.float64):
                raise DataError(f"y_{split} must be a 1-D float64 array, got {_describe(y)}")
            if y.shape[0] != X.shape[0]:
                raise DataError(f"X_{split} has {X.shape[0]} rows but y_{split} has {y.shape[0]}")
            if not np.all(np.isfinite(X)):
                raise DataError(f"X_{split} of dataset {self.name!r} has non-finite entries")
            if not np.all((y == 1.0) | (y == -1.0)):
                raise DataError(f"y_{split} of dataset {self.name!r} has labels outside {{-1, +1}}")
        if self.X_test.shape[1] != self.X_train.shape[1]:
            raise DataError(
                f"X_train has {self.X_train.shape[1]} features but X_test has "
                f"{self.X_test.shape[1]}"
            )

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return self.X_train.shape[0]

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return self.X_test.shape[0]

    @property
    def dim(self) -> int:
        """Input dimension ``d`` (the network's ``n_0``)."""
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset({self.info.get('spec', self.name)!r}, n_train={self.n_train}, "
            f"n_test={self.n_test}, dim={self.dim})"
        )


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"shape {a.shape}, dtype {a.dtype}"
    return type(a).__name__


# -- shared pieces ------------------------------------------------------------------------------


def standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-feature standardization with the training set's statistics.

    .. math::
        x' = (x - m) / s, \qquad m = \mathrm{mean}_{\rm train}(x), \quad
        s = \mathrm{std}_{\rm train}(x) \text{ (population, ddof 0)},

    with :math:`s = 1` for a feature that is constant on the training set (digits has pixels
    that are always 0), so nothing becomes NaN. The training set then has mean 0 and std 1 in
    every non-constant feature; the test set goes through the same map.

    Args:
        X_train: ``(n_train, d)``, at least one row.
        X_test: ``(n_test, d)``.

    Returns:
        The standardized ``(X_train, X_test)``, new float64 arrays.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    mean = X_train.mean(axis=0)  # (d,)
    std = X_train.std(axis=0)  # (d,)
    scale = np.where(std > _CONSTANT_TOL * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return (X_train - mean) / scale, (X_test - mean) / scale


def _check_count(value: object, what: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(value: object, what: str, *, open_interval: bool = False) -> float:
    """``value`` as a float in [0, 1] (in (0, 1) when ``open_interval``); NaN and bools fail."""
    domain = "(0, 1)" if open_interval else "[0, 1]"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = math.nan
    inside = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0  # False for NaN
    if isinstance(value, bool) or not inside:
        raise DataError(f"{what} must be a number in {domain}, got {value!r}")
    return v


def _check_hidden(hidden: object, what: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, int | np.integer) and not isinstance(hidden, bool):
        hidden = (hidden,) if hidden != 0 else ()
    if not isinstance(hidden, Sequence) or isinstance(hidden, str):
        raise DataError(f"{what} must be a sequence of positive widths, got {hidden!r}")
    for w in hidden:
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1:
            raise DataError(f"{what} widths must be positive integers, got {hidden!r}")
    return tuple(int(w) for w in hidden)


def _spawn(seed: object, k: int) -> list[np.random.Generator]:
    """``k`` independent generators from ``SeedSequence(seed)``, one per ingredient."""
    seed = _check_count(seed, "seed", minimum=0)
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]


def _flip(y: np.ndarray, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Flip exactly ``round(noise * n)`` labels, chosen uniformly without replacement."""
    k = round(noise * y.shape[0])
    y = y.copy()
    y[rng.choice(y.shape[0], size=k, replace=False)] *= -1.0
    return y, k


def _signs(f: np.ndarray) -> np.ndarray:
    """Labels ``sign(f)`` as float64 ±1, with the tie ``f == 0`` labelled +1."""
    return np.where(f >= 0.0, 1.0, -1.0)


def _balanced_teacher(
    widths: tuple[int, ...], rng: np.random.Generator, reference: np.ndarray
) -> tuple[LayeredNetwork, int, int]:
    """Draw He-normal ReLU teachers until their labels on ``reference`` are roughly balanced.

    Returns:
        ``(network, seed, tries)``; ``LayeredNetwork.he_normal(widths, seed=seed)`` rebuilds it.
    """
    for tries in range(1, _TEACHER_MAX_TRIES + 1):
        seed = int(rng.integers(2**32))
        net = LayeredNetwork.he_normal(widths, seed=seed)
        positive = float(np.mean(_signs(net.relu_forward(reference)) > 0))
        if abs(positive - 0.5) <= TEACHER_BALANCE_TOL:
            return net, seed, tries
    raise DataError(
        f"no teacher of widths {widths} gave labels within {TEACHER_BALANCE_TOL} of balanced "
        f"in {_TEACHER_MAX_TRIES} draws; choose other hidden widths"
    )


def _format_value(value: object) -> str:
    if isinstance(value, tuple):
        return "x".join(str(w) for w in value) if value else "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _info(name: str, knobs: dict[str, Any], seed: int | None, **extra: Any) -> dict[str, Any]:
    """The JSON-serializable record: canonical spec (knobs in spec-key order), knobs, seed."""
    items = dict(knobs)
    if seed is not None:
        items["seed"] = seed
    spec = name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in items.items())
    json_knobs = {k: list(v) if isinstance(v, tuple) else v for k, v in knobs.items()}
    return {
        "name": name,
        "spec": spec,
        "description": DATASETS[name],
        "knobs": json_knobs,
        "seed": seed,
        **extra,
    }


def _finish(
    name: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    info: dict[str, Any],
) -> Dataset:
    info.update(
        n_train=int(X_train.shape[0]),
        n_test=int(X_test.shape[0]),
        dim=int(X_train.shape[1]),
        positive_fraction_train=float(np.mean(y_train > 0)),
        positive_fraction_test=float(np.mean(y_test > 0)),
        standardization="per feature, training mean and std (std 1 for constant features)",
    )
    return Dataset(name, X_train, y_train, X_test, y_test, info)


# -- digits: the embedded default ---------------------------------------------------------------


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


# -- synthetic families -------------------------------------------------------------------------


def random_labels(n: int, dim: int, *, seed: int, n_test: int = 1000) -> Dataset:
    r"""Gaussian inputs with labels independent of them (Zhang et al. 2017).

    :math:`x \sim \mathcal N(0, I_{\rm dim})`, :math:`y = \pm 1` with probability 1/2 each,
    for the training and the test set alike. There is no rule: zero training risk means
    memorization, possible only when the network's capacity exceeds ``n`` (the knob); test
    accuracy is 1/2 in expectation.

    Spec keys: ``n`` (1000), ``dim`` (32), ``n_test`` (1000), ``seed``.

    Raises:
        DataError: when ``n``, ``dim`` or ``n_test`` is not a positive integer, or ``seed``
            is negative.
    """
    n, dim = _check_count(n, "n"), _check_count(dim, "dim")
    n_test = _check_count(n_test, "n_test")
    rx_train, rx_test, ry_train, ry_test = _spawn(seed, 4)
    X_train, X_test = standardize(
        rx_train.standard_normal((n, dim)), rx_test.standard_normal((n_test, dim))
    )
    y_train = _signs(ry_train.random(n) - 0.5)
    y_test = _signs(ry_test.random(n_test) - 0.5)
    info = _info("random-labels", {"n": n, "dim": dim, "n_test": n_test}, int(seed))
    return _finish("random-labels", X_train, y_train, X_test, y_test, info)


def teacher(
    n: int,
    dim: int,
    *,
    seed: int,
    hidden: Sequence[int] = (16,),
    label_noise: float = 0.0,
    n_test: int = 1000,
) -> Dataset:
    r"""Gaussian inputs labelled by a random bias-free ReLU teacher.

    Inputs :math:`x \sim \mathcal N(0, I_{\rm dim})` are standardized first; the labels are
    :math:`y = \mathrm{sign}\, f_{\rm T}(x)` of the *standardized* inputs, with
    ``f_T = LayeredNetwork.he_normal((dim, *hidden, 1), seed=info["teacher_seed"]).relu_forward``,
    so a bias-free student of the teacher's shape can represent the rule exactly, on the
    training and the test set alike. A tie :math:`f_{\rm T}(x) = 0` (every unit of the last
    hidden layer off) is labelled +1. The teacher is redrawn until its labels are roughly
    balanced (see :data:`TEACHER_BALANCE_TOL`). ``label_noise`` then flips exactly
    ``round(label_noise * n)`` training labels; test labels stay clean.

    Args:
        n: training examples.
        dim: input dimension.
        seed: seed of everything (inputs, teacher, flips).
        hidden: the teacher's hidden widths; ``()`` is a linear teacher ``sign(w·x)``.
        label_noise: fraction of flipped training labels, in [0, 1].
        n_test: test examples.

    Spec keys: ``n`` (1000), ``dim`` (32), ``hidden`` (16; ``16x16`` for two layers, ``none``
    for linear), ``noise`` (0.0), ``n_test`` (1000), ``seed``.

    Raises:
        DataError: naming the value when a size is not a positive integer, a width is not
            positive, ``label_noise`` is outside [0, 1], or no balanced teacher is found.
    """
    n, dim = _check_count(n, "n"), _check_count(dim, "dim")
    n_test = _check_count(n_test, "n_test")
    hidden = _check_hidden(hidden)
    label_noise = _check_fraction(label_noise, "noise")
    rx_train, rx_test, r_teacher, r_reference, r_flip = _spawn(seed, 5)
    X_train, X_test = standardize(
        rx_train.standard_normal((n, dim)), rx_test.standard_normal((n_test, dim))
    )
    widths = (dim, *hidden, 1)
    reference = r_reference.standard_normal((_TEACHER_REFERENCE, dim))
    net, teacher_seed, tries = _balanced_teacher(widths, r_teacher, reference)
    f_train = net.relu_forward(X_train)  # (n,)
    y_clean = _signs(f_train)
    y_train, flipped = _flip(y_clean, label_noise, r_flip)
    y_test = _signs(net.relu_forward(X_test))
    knobs = {"n": n, "dim": dim, "hidden": hidden, "noise": label_noise, "n_test": n_test}
    info = _info(
        "teacher",
        knobs,
        int(seed),
        teacher_widths=list(widths),
        teacher_seed=teacher_seed,
        teacher_tries=tries,
        ties_train=int(np.sum(f_train == 0.0)),
        flipped=flipped,
    )
    return _finish("teacher", X_train, y_train, X_test, y_test, info)


def hidden_manifold(
    n: int,
    dim: int,
    *,
    intrinsic_dim: int,
    seed: int,
    g: str = "tanh",
    hidden: Sequence[int] = (),
    label_noise: float = 0.0,
    n_test: int = 1000,
) -> Dataset:
    r"""Goldt et al.'s hidden-manifold model: data on a ``D``-dimensional manifold.

    .. math::
        c \sim \mathcal N(0, I_D), \qquad x = g\!\left(F^\top c / \sqrt D\right), \qquad
        y = \mathrm{sign}\, f_{\rm T}(c),

    with one fixed feature matrix :math:`F \in \mathbb R^{D \times \rm dim}`,
    :math:`F_{ij} \sim \mathcal N(0, 1)` (so each pre-activation is :math:`\approx \mathcal
    N(0, 1)`), a pointwise ``g``, and a teacher that sees only the latent :math:`c`:
    ``LayeredNetwork.he_normal((D, *hidden, 1), seed=info["teacher_seed"]).relu_forward``,
    by default linear (``hidden=()``: :math:`y = \mathrm{sign}(w \cdot c)`, balanced by
    symmetry). Ties give +1, and a ReLU teacher is redrawn until balanced, as in
    :func:`teacher`. Inputs are then standardized. With ``g="identity"`` the centred inputs
    span exactly ``min(D, dim)`` dimensions; a nonlinear ``g`` bends that subspace into a
    curved ``D``-dimensional manifold.

    Args:
        n: training examples.
        dim: input dimension.
        intrinsic_dim: the latent dimension ``D`` (the knob).
        seed: seed of everything (latents, features, teacher, flips).
        g: ``"tanh"``, ``"identity"``, ``"relu"`` or ``"sign"``.
        hidden: hidden widths of the teacher on ``c``; ``()`` is linear.
        label_noise: fraction of flipped training labels, in [0, 1]; test labels stay clean.
        n_test: test examples.

    Spec keys: ``n`` (1000), ``dim`` (32), ``D`` (8), ``g`` (tanh), ``hidden`` (none),
    ``noise`` (0.0), ``n_test`` (1000), ``seed``.

    Raises:
        DataError: naming the value when a size is not a positive integer, ``g`` is unknown,
            ``label_noise`` is outside [0, 1], or no balanced teacher is found.
    """
    n, dim = _check_count(n, "n"), _check_count(dim, "dim")
    D = _check_count(intrinsic_dim, "D (intrinsic_dim)")
    n_test = _check_count(n_test, "n_test")
    if g not in _NONLINEARITIES:
        raise DataError(f"unknown nonlinearity g={g!r}; known: {', '.join(_NONLINEARITIES)}")
    hidden = _check_hidden(hidden)
    label_noise = _check_fraction(label_noise, "noise")
    rc_train, rc_test, r_features, r_teacher, r_reference, r_flip = _spawn(seed, 6)
    c_train = rc_train.standard_normal((n, D))
    c_test = rc_test.standard_normal((n_test, D))
    F = r_features.standard_normal((D, dim))
    act = _NONLINEARITIES[g]
    X_train, X_test = standardize(
        act(c_train @ F / math.sqrt(D)),  # (n, dim)
        act(c_test @ F / math.sqrt(D)),  # (n_test, dim)
    )
    widths = (D, *hidden, 1)
    reference = r_reference.standard_normal((_TEACHER_REFERENCE, D))
    net, teacher_seed, tries = _balanced_teacher(widths, r_teacher, reference)
    y_train, flipped = _flip(_signs(net.relu_forward(c_train)), label_noise, r_flip)
    y_test = _signs(net.relu_forward(c_test))
    knobs = {"n": n, "dim": dim, "D": D, "g": g, "hidden": hidden}
    knobs.update(noise=label_noise, n_test=n_test)
    info = _info(
        "hidden-manifold",
        knobs,
        int(seed),
        teacher_widths=list(widths),
        teacher_seed=teacher_seed,
        teacher_tries=tries,
        flipped=flipped,
    )
    return _finish("hidden-manifold", X_train, y_train, X_test, y_test, info)


# -- specs --------------------------------------------------------------------------------------


def _parse_int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise DataError(f"{key} must be an integer, got {raw!r}") from None


def _parse_float(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise DataError(f"{key} must be a number, got {raw!r}") from None


def _parse_hidden(key: str, raw: str) -> tuple[int, ...]:
    if raw.lower() in ("none", "0"):
        return ()
    parts = raw.lower().split("x")
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise DataError(
            f"{key} must be widths joined by 'x' (e.g. 16x16) or 'none', got {raw!r}"
        ) from None
    if any(w < 1 for w in widths):
        raise DataError(f"{key} widths must be positive, got {raw!r}")
    return widths


def _parse_str(key: str, raw: str) -> str:
    return raw


_Parser = Callable[[str, str], Any]

#: name -> spec key -> (keyword argument of the builder, parser of the value string).
SPEC_KEYS: dict[str, dict[str, tuple[str, _Parser]]] = {
    "digits": {
        "test_fraction": ("test_fraction", _parse_float),
        "split_seed": ("split_seed", _parse_int),
        "noise": ("label_noise", _parse_float),
        "seed": ("seed", _parse_int),
    },
    "random-labels": {
        "n": ("n", _parse_int),
        "dim": ("dim", _parse_int),
        "n_test": ("n_test", _parse_int),
        "seed": ("seed", _parse_int),
    },
    "teacher": {
        "n": ("n", _parse_int),
        "dim": ("dim", _parse_int),
        "hidden": ("hidden", _parse_hidden),
        "noise": ("label_noise", _parse_float),
        "n_test": ("n_test", _parse_int),
        "seed": ("seed", _parse_int),
    },
    "hidden-manifold": {
        "n": ("n", _parse_int),
        "dim": ("dim", _parse_int),
        "D": ("intrinsic_dim", _parse_int),
        "g": ("g", _parse_str),
        "hidden": ("hidden", _parse_hidden),
        "noise": ("label_noise", _parse_float),
        "n_test": ("n_test", _parse_int),
        "seed": ("seed", _parse_int),
    },
    # CIFAR-10 (binary) goes here: a key set such as {"path": ..., "classes": ...} and a
    # builder in _BUILDERS below; load_dataset needs no other change.
}

# Defaults that load_dataset supplies beyond the builders' own (small, for fast CPU runs).
_SPEC_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {},
    "random-labels": {"n": 1000, "dim": 32},
    "teacher": {"n": 1000, "dim": 32},
    "hidden-manifold": {"n": 1000, "dim": 32, "intrinsic_dim": 8},
}

_BUILDERS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "random-labels": random_labels,
    "teacher": teacher,
    "hidden-manifold": hidden_manifold,
}


def load_dataset(spec: str, *, seed: int = 0) -> Dataset:
    """Build a dataset from a spec string: ``"name"`` or ``"name:key=value,key=value"``.

    Names and keys (defaults in parentheses; every family takes ``seed``, which overrides the
    keyword so a spec can pin its data while a run's other seeds vary):

    * ``digits``: ``test_fraction`` (0.2), ``split_seed`` (0), ``noise`` (0.0);
    * ``random-labels``: ``n`` (1000), ``dim`` (32), ``n_test`` (1000);
    * ``teacher``: ``n`` (1000), ``dim`` (32), ``hidden`` (16; ``16x16``; ``none`` = linear),
      ``noise`` (0.0), ``n_test`` (1000);
    * ``hidden-manifold``: ``n`` (1000), ``dim`` (32), ``D`` (8), ``g`` (tanh; identity, relu,
      sign), ``hidden`` (none), ``noise`` (0.0), ``n_test`` (1000).

    ``noise`` is the fraction of flipped training labels. The dataset's ``info["spec"]`` is
    the canonical spec with every key written out; loading it again gives identical arrays.

    Example:
        >>> ds = load_dataset("teacher:n=200,dim=8,hidden=4x4,noise=0.1", seed=3)
        >>> (ds.n_train, ds.n_test, ds.dim, ds.info["flipped"])
        (200, 1000, 8, 20)

    Raises:
        DataError: naming the value for an unknown name, an unknown or repeated key, a
            malformed item or value, or a value outside its domain.
    """
    if not isinstance(spec, str):
        raise DataError(f"a dataset spec must be a string, got {spec!r}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in _BUILDERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(_BUILDERS)}")
    keys = SPEC_KEYS[name]
    kwargs: dict[str, Any] = dict(_SPEC_DEFAULTS[name])
    kwargs["seed"] = seed
    given: set[str] = set()
    for item in rest.split(",") if sep else []:
        key, eq, raw = (s.strip() for s in item.partition("="))
        if not eq or not key or not raw:
            raise DataError(f"malformed item {item!r} in dataset spec {spec!r}; expected key=value")
        if key not in keys:
            raise DataError(f"unknown key {key!r} for dataset {name!r}; known: {', '.join(keys)}")
        if key in given:
            raise DataError(f"key {key!r} given twice in dataset spec {spec!r}")
        given.add(key)
        kwarg, parse = keys[key]
        kwargs[kwarg] = parse(key, raw)
    return _BUILDERS[name](**kwargs)
