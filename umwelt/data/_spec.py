"""Dataset specs: ``load_dataset("teacher:n=1000,hidden=16x16")`` or a path to CIFAR-10 data."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from umwelt.data._base import Dataset
from umwelt.data._cifar10 import IMAGE_SHAPE, cifar10
from umwelt.data._digits import digits, digits_raw
from umwelt.data._synthetic import hidden_manifold, random_labels, teacher
from umwelt.errors import DataError


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

_PATH_SUFFIXES = (".tar", ".gz", ".tgz")
_CIFAR_TRAIN, _CIFAR_TEST = 50_000, 10_000  # CIFAR-10's images (at most, for spec_sizes)


def load_dataset(
    spec: str | os.PathLike[str],
    *,
    seed: int = 0,
    classes: str | Sequence[str | int] | None = None,
    subset: int | None = None,
    subset_test: int | None = None,
    label_noise: float | None = None,
) -> Dataset:
    """Build a dataset from a spec: ``"name"``, ``"name:key=value,key=value"`` or a path.

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

    Any other spec is a path to CIFAR-10 data in one of the formats of
    :func:`~umwelt.data.cifar10` (detected from the contents), made binary by ``classes``
    (default ``"cat,dog"``), ``subset``, ``subset_test`` and ``label_noise`` (default 0),
    with ``seed``. These four keywords apply to CIFAR-10 paths only: a named family sets its
    sizes and its label noise in the spec, so giving them for one is an error rather than
    silently ignored.

    Example:
        >>> ds = load_dataset("teacher:n=200,dim=8,hidden=4x4,noise=0.1", seed=3)
        >>> (ds.n_train, ds.n_test, ds.dim, ds.info["flipped"])
        (200, 1000, 8, 20)

    Raises:
        DataError: naming the value for an unknown name or a path that does not exist, an
            unknown or repeated key, a malformed item or value, a value outside its domain,
            a CIFAR-10 keyword given for a named family, or any CIFAR-10 error of
            :func:`~umwelt.data.cifar10`.
    """
    cifar_options = {
        "classes": classes,
        "subset": subset,
        "subset_test": subset_test,
        "label_noise": label_noise,
    }
    if isinstance(spec, os.PathLike):
        return _load_path(os.fspath(spec), seed, cifar_options)
    if not isinstance(spec, str):
        raise DataError(f"a dataset spec must be a string, got {spec!r}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in _BUILDERS:
        if spec.strip() and _exists(spec):
            return _load_path(spec, seed, cifar_options)
        if _looks_like_path(spec):
            raise DataError(f"dataset path {spec!r} does not exist")
        raise DataError(
            f"unknown dataset {name!r}; known: {', '.join(_BUILDERS)}, or a path to CIFAR-10 "
            f"data (no file or directory {spec!r} exists)"
        )
    for option, value in cifar_options.items():
        if value is not None:
            hint = ""
            if option == "label_noise" and "noise" in SPEC_KEYS[name]:
                hint = f"; its spec key noise= flips training labels ('{name}:noise=0.1')"
            raise DataError(
                f"{option}={value!r} applies to CIFAR-10 paths only, not to dataset {name!r}{hint}"
            )
    return _BUILDERS[name](**_spec_kwargs(spec, seed))


def _spec_kwargs(spec: str, seed: int) -> dict[str, Any]:
    """The builder's keyword arguments of the named spec ``spec`` (defaults filled in)."""
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
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
    return kwargs


def spec_sizes(
    spec: str | os.PathLike[str], *, subset: int | None = None, subset_test: int | None = None
) -> tuple[int, int, tuple[int, ...]]:
    """``(n_train, n_test, input_shape)`` of the dataset ``spec`` names, at most, without
    building it (for the memory checks before a run loads its data).

    The sizes are upper bounds: a named family's ``n`` and ``n_test`` (digits: its 1797 images
    for either split), CIFAR-10's 50,000 and 10,000 images or ``subset`` and ``subset_test``;
    the shape is ``(dim,)`` for a named family and ``(3, 32, 32)`` for anything else (a path,
    read as CIFAR-10; whether it exists is :func:`load_dataset`'s to say).

    >>> spec_sizes("teacher:n=200,dim=8"), spec_sizes("digits")
    ((200, 1000, (8,)), (1797, 1797, (64,)))

    Raises:
        DataError: for a malformed spec of a named family, as :func:`load_dataset`.
    """
    name = spec.strip().partition(":")[0].strip() if isinstance(spec, str) else ""
    if name not in _BUILDERS:
        train = subset if isinstance(subset, int) and subset > 0 else _CIFAR_TRAIN
        test = subset_test if isinstance(subset_test, int) and subset_test > 0 else _CIFAR_TEST
        return int(train), int(test), IMAGE_SHAPE
    kwargs = _spec_kwargs(spec, 0)
    if name == "digits":
        n, dim = digits_raw()[0].shape
        return n, n, (dim,)
    n_test = kwargs.get("n_test", inspect.signature(_BUILDERS[name]).parameters["n_test"].default)
    return int(kwargs["n"]), int(n_test), (int(kwargs["dim"]),)


def _exists(spec: str) -> bool:
    """Whether the path ``spec`` exists; ``True`` when the system cannot even look it up (a
    name too long, a loop of links), so that the CIFAR-10 reader names the reason."""
    try:
        return Path(spec).expanduser().exists()
    except OSError:
        return True


def _looks_like_path(spec: str) -> bool:
    """Is ``spec`` meant as a path (has a separator, starts with ~ or ., ends .tar/.gz)?"""
    text = spec.strip()
    separators = {"/", os.sep, os.altsep or "/"}
    return (
        text.startswith(("~", "."))
        or text.lower().endswith(_PATH_SUFFIXES)
        or any(s in text for s in separators)
    )


def _load_path(path: str, seed: int, options: dict[str, Any]) -> Dataset:
    """CIFAR-10 from ``path`` with the keywords given (``None`` means the default)."""
    kwargs = {k: v for k, v in options.items() if v is not None}
    return cifar10(path, seed=seed, **kwargs)
