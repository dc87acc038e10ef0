r"""The dataset container and the pieces every family shares: checks, standardization, seeds.

A :class:`Dataset` holds a training and a test set of a binary classification task. Inputs are
arrays ``(n, *input_shape)``: vectors ``(n, d)`` for the embedded and synthetic families,
images ``(n, 3, 32, 32)`` for CIFAR-10. The dtype rule: float64 for the vector families (the
exact numpy engine's precision), float32 for images (a few thousand CIFAR images at 3072 values
each; float32 halves the memory and is what the torch backend trains in). Both splits share one
dtype and one ``input_shape``. Labels are always float64 in ``{-1.0, +1.0}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from umwelt.errors import DataError

#: name -> one-line description of every dataset family :func:`load_dataset` knows by name.
#: (CIFAR-10 is loaded from a path, not by name; see :func:`umwelt.data.cifar10`.)
DATASETS: dict[str, str] = {
    "digits": "scikit-learn's 8x8 handwritten digits (1797 x 64), digits 0-4 -> -1, 5-9 -> +1",
    "random-labels": "Gaussian inputs, labels +-1 uniformly at random (Zhang et al. 2017)",
    "teacher": "Gaussian inputs labelled by the sign of a random bias-free ReLU teacher",
    "hidden-manifold": "inputs g(F^T c / sqrt(D)) on a D-dim manifold, labels from a teacher on c",
}

#: The input dtypes a :class:`Dataset` accepts (float32 for images, float64 otherwise).
INPUT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

# A feature whose training std is below this (relative to its mean) is constant: scale 1.
_CONSTANT_TOL = 1e-12


# -- the container ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A binary classification dataset, split into training and test sets.

    Attributes:
        name: the family (a key of :data:`DATASETS`, or ``"cifar10"``).
        X_train: inputs ``(n_train, *input_shape)``, standardized with training statistics;
            float64, or float32 for images (both splits share the dtype).
        y_train: labels ``(n_train,)``, float64 in ``{-1.0, +1.0}``.
        X_test: inputs ``(n_test, *input_shape)``, standardized with the *training* statistics.
        y_test: labels ``(n_test,)``, float64 in ``{-1.0, +1.0}``.
        info: JSON-serializable record: ``spec`` (for a named family canonical:
            ``load_dataset(info["spec"])`` rebuilds the same arrays), ``knobs``, ``seed``,
            sizes, ``description`` and family-specific facts (teacher seed, flipped labels,
            CIFAR-10 source, format, classes, channel statistics, ...).

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
        Xtr = self.X_train
        if not (isinstance(Xtr, np.ndarray) and Xtr.ndim >= 2 and Xtr.dtype in INPUT_DTYPES):
            raise DataError(
                f"X_train must be a float64 or float32 array (n, *input_shape), "
                f"got {_describe(Xtr)}"
            )
        Xte = self.X_test
        if not (isinstance(Xte, np.ndarray) and Xte.ndim == Xtr.ndim and Xte.dtype == Xtr.dtype):
            raise DataError(
                f"X_test must be a {Xtr.ndim}-D {Xtr.dtype} array, got {_describe(Xte)} "
                f"(X_test takes X_train's dtype and number of axes)"
            )
        if Xte.shape[1:] != Xtr.shape[1:]:
            if Xtr.ndim == 2:
                raise DataError(
                    f"X_train has {Xtr.shape[1]} features but X_test has {Xte.shape[1]}"
                )
            raise DataError(
                f"X_train has inputs of shape {Xtr.shape[1:]} but X_test has {Xte.shape[1:]}"
            )
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype == np.float64):
                raise DataError(f"y_{split} must be a 1-D float64 array, got {_describe(y)}")
            if y.shape[0] != X.shape[0]:
                raise DataError(f"X_{split} has {X.shape[0]} rows but y_{split} has {y.shape[0]}")
            if not np.all(np.isfinite(X)):
                raise DataError(f"X_{split} of dataset {self.name!r} has non-finite entries")
            if not np.all((y == 1.0) | (y == -1.0)):
                raise DataError(f"y_{split} of dataset {self.name!r} has labels outside {{-1, +1}}")

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return self.X_train.shape[0]

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return self.X_test.shape[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: ``(d,)`` for vectors, ``(3, 32, 32)`` for CIFAR-10 images."""
        return tuple(int(s) for s in self.X_train.shape[1:])

    @property
    def dim(self) -> int:
        """Flattened input dimension ``d = prod(input_shape)`` (an MLP's ``n_0``)."""
        return math.prod(self.input_shape)

    def flattened(self) -> Dataset:
        """The same dataset with inputs reshaped to ``(n, dim)``, as an MLP sees them.

        Returns ``self`` when the inputs are already vectors; otherwise a new :class:`Dataset`
        whose arrays are views of these (same dtype, same ``info``).

        Example:
            >>> X, y = np.zeros((2, 3, 4, 4), np.float32), np.array([1.0, -1.0])
            >>> Dataset("toy", X, y, X, y).flattened().X_train.shape
            (2, 48)
        """
        if self.X_train.ndim == 2:
            return self
        return replace(
            self,
            X_train=self.X_train.reshape(self.n_train, self.dim),  # (n_train, dim)
            X_test=self.X_test.reshape(self.n_test, self.dim),  # (n_test, dim)
        )

    def __repr__(self) -> str:
        shape = f", input_shape={self.input_shape}" if self.X_train.ndim > 2 else ""
        return (
            f"Dataset({self.info.get('spec', self.name)!r}, n_train={self.n_train}, "
            f"n_test={self.n_test}, dim={self.dim}{shape})"
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
    scale = _safe_scale(mean, std)
    return (X_train - mean) / scale, (X_test - mean) / scale


def _safe_scale(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``std``, with 1 where a feature is constant (std negligible next to its mean)."""
    return np.where(std > _CONSTANT_TOL * np.maximum(1.0, np.abs(mean)), std, 1.0)


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
    *,
    standardization: str = "per feature, training mean and std (std 1 for constant features)",
) -> Dataset:
    """Record sizes, balance and standardization in ``info`` and build the :class:`Dataset`."""
    info.update(
        n_train=int(X_train.shape[0]),
        n_test=int(X_test.shape[0]),
        dim=math.prod(X_train.shape[1:]),
        input_shape=[int(s) for s in X_train.shape[1:]],
        dtype=str(X_train.dtype),
        positive_fraction_train=float(np.mean(y_train > 0)),
        positive_fraction_test=float(np.mean(y_test > 0)),
        standardization=standardization,
    )
    return Dataset(name, X_train, y_train, X_test, y_test, info)
