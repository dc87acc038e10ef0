r"""Datasets for binary classification: the embedded default, synthetic families and CIFAR-10.

The paper's headline claim is that training reaches zero risk when the network's potential
complexity exceeds the dataset's (THEORY.md §5). Testing it needs datasets whose complexity is
a knob, and the paper's own experiment needs CIFAR-10 made binary (THEORY.md §6):

* ``digits`` — the embedded default: scikit-learn's bundled 8×8 handwritten digits (1797
  images, 64 features) made binary, digits 0–4 → −1 and 5–9 → +1, with a fixed stratified
  train/test split. Real data that needs no download.
* ``random-labels`` — Gaussian inputs with labels drawn uniformly at random, independent of the
  inputs (Zhang et al. 2017): zero training risk only by memorization.
* ``teacher`` — Gaussian inputs labelled by the sign of a random bias-free ReLU teacher; the
  teacher's widths and depth are the knob, ``noise`` flips training labels.
* ``hidden-manifold`` — Goldt et al.'s hidden-manifold model (PRX 2020): inputs on a
  ``D``-dimensional manifold, labels from a teacher on the latent; ``D`` is the knob.
* CIFAR-10 from a path, in the formats users have (the official python batches as a directory
  or the unopened ``cifar-10-python.tar.gz``; class-per-folder image trees as a directory,
  ``.tar`` or ``.tar.gz``), made binary by two classes or a grouping, with balanced subsets and
  optional random labels (:func:`cifar10`).

Every dataset is a :class:`Dataset`: inputs ``(n, *input_shape)`` — float64 vectors for the
named families, float32 images ``(n, 3, 32, 32)`` for CIFAR-10 (:meth:`Dataset.flattened`
gives an MLP its ``(n, dim)`` view) — labels in ``{-1.0, +1.0}``, inputs standardized with
*training* statistics (so the test set sees the same map), and a JSON-serializable ``info``
dict that records the spec, the knobs and the seed.

:func:`load_dataset` turns a spec string such as ``"teacher:n=1000,dim=32,hidden=16x16,noise=0.1"``
or a path into a dataset; the keys of each family are listed in :data:`SPEC_KEYS` and in its
docstring.

Modules: ``_base`` (the container, standardization, checks), ``_digits``, ``_synthetic``,
``_cifar10/`` (a package, one module per concept: classes, shared file layout, python batches,
image trees, tar archives, format detection, the binary dataset), ``_unpickle`` (the
restricted unpickler for the official batches) and ``_spec`` (spec parsing,
:func:`load_dataset`).
"""

from umwelt.data._base import DATASETS, INPUT_DTYPES, Dataset, standardize
from umwelt.data._cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_FORMATS,
    CLASS_GROUPS,
    cifar10,
    detect_format,
    parse_classes,
)
from umwelt.data._digits import digits, digits_raw, digits_split
from umwelt.data._spec import SPEC_KEYS, load_dataset, spec_sizes
from umwelt.data._synthetic import TEACHER_BALANCE_TOL, hidden_manifold, random_labels, teacher
from umwelt.data._unpickle import RestrictedUnpickler, restricted_loads

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_FORMATS",
    "CLASS_GROUPS",
    "DATASETS",
    "INPUT_DTYPES",
    "SPEC_KEYS",
    "TEACHER_BALANCE_TOL",
    "Dataset",
    "RestrictedUnpickler",
    "cifar10",
    "detect_format",
    "digits",
    "digits_raw",
    "digits_split",
    "hidden_manifold",
    "load_dataset",
    "parse_classes",
    "random_labels",
    "restricted_loads",
    "spec_sizes",
    "standardize",
    "teacher",
]
