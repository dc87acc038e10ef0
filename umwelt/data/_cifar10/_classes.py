r"""CIFAR-10's ten classes and the binary task chosen from them (:func:`parse_classes`).

The task is two classes by name or index 0–9, the first labelled −1 and the second +1, or a
named grouping of :data:`CLASS_GROUPS` such as ``"vehicles-vs-animals"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umwelt.errors import DataError

#: The ten CIFAR-10 classes; a class's index is its position (the official label).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

#: Named binary groupings: name -> (classes labelled −1, classes labelled +1).
CLASS_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vehicles-vs-animals": (
        ("airplane", "automobile", "ship", "truck"),
        ("bird", "cat", "deer", "dog", "frog", "horse"),
    ),
}

_Selection = tuple[tuple[str, ...], tuple[str, ...]]


def parse_classes(classes: str | Sequence[str | int]) -> _Selection:
    """The binary task: ``(classes labelled −1, classes labelled +1)``.

    Args:
        classes: ``"a,b"`` with two class names (case-insensitive) or indices 0–9, a sequence
            of two such, or a key of :data:`CLASS_GROUPS` such as ``"vehicles-vs-animals"``.

    Returns:
        Two tuples of class names from :data:`CIFAR10_CLASSES`.

    Raises:
        DataError: naming the value for an unknown class, a class given twice, or not
            exactly two classes.

    Example:
        >>> parse_classes("3, dog")
        (('cat',), ('dog',))
    """
    if isinstance(classes, str):
        key = classes.strip().lower()
        if key in CLASS_GROUPS:
            return CLASS_GROUPS[key]
        items: list[str | int] = [s.strip() for s in classes.split(",")]
    elif isinstance(classes, Sequence):
        items = list(classes)
    else:
        raise DataError(f"classes must be a string such as 'cat,dog', got {classes!r}")
    if len(items) != 2:
        raise DataError(
            f"classes must name two CIFAR-10 classes ('cat,dog') or a grouping "
            f"({', '.join(CLASS_GROUPS)}), got {classes!r}"
        )
    names = tuple(_class_name(item) for item in items)
    if names[0] == names[1]:
        raise DataError(f"class {names[0]!r} given twice in classes={classes!r}; give two classes")
    return (names[0],), (names[1],)


def _class_name(item: str | int) -> str:
    valid = ", ".join(CIFAR10_CLASSES)
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        if 0 <= item < len(CIFAR10_CLASSES):
            return CIFAR10_CLASSES[int(item)]
        raise DataError(f"unknown CIFAR-10 class index {item!r}; valid: 0-9 or {valid}")
    if isinstance(item, str):
        name = item.strip().lower()
        if name in CIFAR10_CLASSES:
            return name
        if name.isdigit() and int(name) < len(CIFAR10_CLASSES):
            return CIFAR10_CLASSES[int(name)]
    raise DataError(f"unknown CIFAR-10 class {item!r}; valid: {valid} (or indices 0-9)")


def _canonical(selection: _Selection) -> str:
    for key, group in CLASS_GROUPS.items():
        if group == selection:
            return key
    return f"{selection[0][0]},{selection[1][0]}"
