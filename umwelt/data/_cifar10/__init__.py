r"""CIFAR-10 made binary, read from the formats users have (THEORY.md §6).

CIFAR-10 (Krizhevsky 2009, *Learning Multiple Layers of Features from Tiny Images*) holds
60,000 RGB images of 32×32 pixels in ten classes, 5,000 training and 1,000 test images each.
The paper trains a single-output VGG on CIFAR-10 *made binary*; :func:`cifar10` does that:

* **Classes.** ``classes="cat,dog"`` (the default): two classes by name or index 0–9, the
  first → −1 and the second → +1. Or the grouping ``"vehicles-vs-animals"``: airplane,
  automobile, ship, truck → −1 and the six animals → +1 (:data:`CLASS_GROUPS`).
* **Subset.** ``subset=n`` draws a balanced training subset, ``n/2`` images from each side
  (uniformly within a side, so a grouped side is stratified only on average), without
  replacement, seeded; ``subset_test`` does the same for the test set, which is otherwise
  every test image of the selected classes. Images keep their source order (the official
  batches' order; sorted class then file name for image trees); training drivers shuffle.
* **Label noise.** ``label_noise=p`` gives exactly ``round(p * n_train)`` training images,
  chosen at random, a fresh label ±1 drawn by a fair coin (Zhang et al. 2017's partially
  random labels: about half of them end up flipped, ``info["flipped"]`` says how many).
  Test labels stay clean. (The synthetic families' ``noise`` *flips* labels instead.)
* **Standardization.** Per channel, with the mean and std of the *training* images actually
  selected: :math:`x'_{c} = (x_c - m_c)/s_c`, applied to both splits; ``m`` and ``s`` (in
  pixel units 0–255) are recorded in ``info``. Computed exactly from per-channel histograms.

Images come out as float32 arrays ``(n, 3, 32, 32)`` (channel, row, column); labels float64 ±1.

**Formats**, detected from the path's contents, not its name (:func:`detect_format`):

* ``python-dir``: the official python version unpacked, a directory with ``data_batch_1`` …
  ``data_batch_5``, ``test_batch`` and ``batches.meta`` (or holding ``cifar-10-batches-py/``).
  Each batch is a pickle of ``{b"data": uint8 (10000, 3072), b"labels": [...], ...}`` whose
  rows are the red, green and blue 32×32 planes, row-major. Batches go through a restricted
  unpickler (:mod:`umwelt.data._unpickle`): a pickle from the internet cannot run code.
* ``python-tar``: the same files inside a tar archive (``cifar-10-python.tar.gz`` as
  downloaded), read member by member from the archive, never extracted to disk.
* ``image-tree-dir``: class-per-folder image files ``train/<class>/*.png|jpg`` and
  ``test/<class>/*`` (the root may also be one folder down), decoded with Pillow.
* ``image-tree-tar``: the same tree inside a ``.tar`` or ``.tar.gz``, read without extracting.

Only images of the selected classes are read, and of an image tree only those in the subsets
are decoded. Loading two classes (10,000 + 2,000 images) from the 19.6 MB JPEG tree
``cifar10-jpeg.tar.gz`` costs about 3.5 s of CPU time: one pass through the archive (~2 s,
mostly :mod:`tarfile`'s per-member work on 60,000 members) and decoding (~0.1 ms per image);
all ten classes (60,000 images) about 12 s. Nothing is cached.

**Modules** (one concept each): ``_classes`` (the ten classes, :func:`parse_classes`),
``_layout`` (file names and size limits, the split record, checked access to paths and files),
``_python`` (the official batches), ``_tree`` (image trees, decoding), ``_tar`` (archives,
streamed), ``_detect`` (:func:`detect_format`, dispatch to a reader) and ``_dataset``
(:func:`cifar10`: selection, subsets, label noise, standardization). Every name of the former
single module imports from here, the private helpers too (``from ._x import _y as _y``).
"""

from __future__ import annotations

from umwelt.data._cifar10._classes import CIFAR10_CLASSES, CLASS_GROUPS, parse_classes
from umwelt.data._cifar10._classes import _canonical as _canonical
from umwelt.data._cifar10._classes import _class_name as _class_name
from umwelt.data._cifar10._classes import _Selection as _Selection
from umwelt.data._cifar10._dataset import CIFAR10_DESCRIPTION, cifar10
from umwelt.data._cifar10._dataset import _channel_stats as _channel_stats
from umwelt.data._cifar10._dataset import _check_subset as _check_subset
from umwelt.data._cifar10._dataset import _select as _select
from umwelt.data._cifar10._dataset import _standardize_images as _standardize_images
from umwelt.data._cifar10._detect import CIFAR10_FORMATS, detect_format
from umwelt.data._cifar10._detect import _detect_dir as _detect_dir
from umwelt.data._cifar10._detect import _read as _read
from umwelt.data._cifar10._layout import _BATCH_FILES as _BATCH_FILES
from umwelt.data._cifar10._layout import _IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from umwelt.data._cifar10._layout import _MAX_BATCH_BYTES as _MAX_BATCH_BYTES
from umwelt.data._cifar10._layout import _MAX_IMAGE_BYTES as _MAX_IMAGE_BYTES
from umwelt.data._cifar10._layout import _META as _META
from umwelt.data._cifar10._layout import _PYTHON_DIRNAME as _PYTHON_DIRNAME
from umwelt.data._cifar10._layout import _ROW as _ROW
from umwelt.data._cifar10._layout import _SPLITS as _SPLITS
from umwelt.data._cifar10._layout import _TEST_BATCH as _TEST_BATCH
from umwelt.data._cifar10._layout import _TRAIN_BATCHES as _TRAIN_BATCHES
from umwelt.data._cifar10._layout import IMAGE_SHAPE
from umwelt.data._cifar10._layout import _basename as _basename
from umwelt.data._cifar10._layout import _existing as _existing
from umwelt.data._cifar10._layout import _neither as _neither
from umwelt.data._cifar10._layout import _read_bytes as _read_bytes
from umwelt.data._cifar10._layout import _Split as _Split
from umwelt.data._cifar10._python import _batch_rows as _batch_rows
from umwelt.data._cifar10._python import _check_meta as _check_meta
from umwelt.data._cifar10._python import _field as _field
from umwelt.data._cifar10._python import _python_splits as _python_splits
from umwelt.data._cifar10._python import _read_python_dir as _read_python_dir
from umwelt.data._cifar10._python import _what as _what
from umwelt.data._cifar10._tar import _read_tar as _read_tar
from umwelt.data._cifar10._tar import _tar_format as _tar_format
from umwelt.data._cifar10._tar import _tar_members as _tar_members
from umwelt.data._cifar10._tree import _decode as _decode
from umwelt.data._cifar10._tree import _read_tree_dir as _read_tree_dir
from umwelt.data._cifar10._tree import _subdirs as _subdirs
from umwelt.data._cifar10._tree import _tree_class as _tree_class
from umwelt.data._cifar10._tree import _tree_member as _tree_member
from umwelt.data._cifar10._tree import _tree_splits as _tree_splits

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_DESCRIPTION",
    "CIFAR10_FORMATS",
    "CLASS_GROUPS",
    "IMAGE_SHAPE",
    "cifar10",
    "detect_format",
    "parse_classes",
]
