r"""Synthetic families whose complexity is a knob (THEORY.md §5).

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

Synthetic data are drawn from ``np.random.default_rng`` streams spawned from
``np.random.SeedSequence(seed)``, so the same arguments give identical arrays, and the test set
comes from the same law as the training set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from umwelt.data._base import (
    Dataset,
    _check_count,
    _check_fraction,
    _finish,
    _flip,
    _info,
    _signs,
    _spawn,
    standardize,
)
from umwelt.errors import DataError
from umwelt.network import LayeredNetwork

#: A random bias-free ReLU teacher is usually far from balanced (its output has a non-zero
#: mean: positive fractions from 1% to 99% over seeds). Teachers are therefore drawn until the
#: fraction of positive labels on a reference sample of 4096 inputs lies within this distance
#: of 1/2: the teacher is a random ReLU network *conditioned on* roughly balanced labels.
TEACHER_BALANCE_TOL = 0.1
_TEACHER_REFERENCE = 4096
_TEACHER_MAX_TRIES = 1000

_NONLINEARITIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "identity": lambda u: u,
    "relu": lambda u: np.maximum(u, 0.0),
    "sign": lambda u: np.where(u >= 0.0, 1.0, -1.0),
}


def _check_hidden(hidden: object, what: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, int | np.integer) and not isinstance(hidden, bool):
        hidden = (hidden,) if hidden != 0 else ()
    if not isinstance(hidden, Sequence) or isinstance(hidden, str):
        raise DataError(f"{what} must be a sequence of positive widths, got {hidden!r}")
    for w in hidden:
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1:
            raise DataError(f"{what} widths must be positive integers, got {hidden!r}")
    return tuple(int(w) for w in hidden)


def _check_memory(family: str, knobs: dict, n_floats: int) -> None:
    """Refuse sizes whose arrays cannot fit, before ``np.random`` allocates them: ``n_floats``
    float64 values (the inputs count about three times: drawn, standardized, and the
    temporaries of their statistics)."""
    from umwelt.memory import check_fits

    shown = ", ".join(f"{k}={v}" for k, v in knobs.items())
    check_fits(f"the dataset {family} ({shown})", 8 * n_floats)


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
    _check_memory("random-labels", {"n": n, "dim": dim, "n_test": n_test}, (n + n_test) * 3 * dim)
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
    per_row = 3 * dim + 2 * sum(hidden)  # and the teacher's hidden layers
    _check_memory("teacher", {"n": n, "dim": dim, "n_test": n_test}, (n + n_test) * per_row)
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
    knobs = {"n": n, "dim": dim, "D": D, "n_test": n_test}
    per_row = 4 * dim + D + 2 * sum(hidden)  # c, F^T c, g(F^T c) standardized, the teacher
    _check_memory("hidden-manifold", knobs, (n + n_test) * per_row + D * dim)
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
