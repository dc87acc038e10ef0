"""A restricted unpickler for the official CIFAR-10 python batches: data, never code.

The official ``cifar-10-python.tar.gz`` stores each batch as a pickle (protocol 2, written by
Python 2): a dict with byte-string keys, ``b"data"`` a numpy ``uint8`` array, ``b"labels"`` a
list of ints, ``b"batch_label"`` and ``b"filenames"`` byte strings. A pickle can name any
importable callable (``os.system`` through ``__reduce__``) and have the unpickler call it, so a
file downloaded from the internet must not go through :func:`pickle.load`.
:class:`RestrictedUnpickler` resolves only the globals those files contain: numpy's array
reconstruction (``numpy.core.multiarray._reconstruct`` as Python 2 wrote it, or
``numpy._core.multiarray._reconstruct`` as numpy 2 writes it), ``numpy.ndarray`` and
``numpy.dtype``, plus ``_codecs.encode`` restricted to latin-1 text, which is how Python 3
writes ``bytes`` at protocol 2 (tests and re-packed copies use it). Any other global raises
:class:`~umwelt.errors.DataError` naming it, before anything is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from umwelt.errors import DataError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

__all__ = ["ALLOWED_GLOBALS", "RestrictedUnpickler", "restricted_loads"]

_LATIN1 = frozenset({"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"})


def _latin1_encode(text: object, encoding: object = "latin1", errors: object = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol 2, and nothing more."""
    if (
        not isinstance(text, str)
        or not isinstance(encoding, str)
        or encoding.lower() not in _LATIN1
    ):
        raise DataError(
            f"refusing _codecs.encode({type(text).__name__}, {encoding!r}) in a pickle: only "
            f"latin-1 text (how Python 3 pickles bytes) is allowed"
        )
    return text.encode("latin1")


#: (module, name) -> the object a pickle may reference; every other global is refused.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`.

    Python 2 strings load as ``bytes`` (``encoding="bytes"``), as the official batches need.
    Persistent ids are refused by :class:`pickle.Unpickler` itself.

    Args:
        file: a binary file object.
        source: the file's name, for messages.
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, *, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to unpickle global {module}.{name} in {self.source}: a CIFAR-10 "
                f"batch holds only numpy arrays, lists, dicts and bytes"
            ) from None


def restricted_loads(data: bytes, *, source: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Args:
        data: the pickle's bytes.
        source: the file (or archive member) it came from, for messages.

    Returns:
        The unpickled object.

    Raises:
        DataError: naming ``source`` for a forbidden global, or for a corrupt or truncated
            pickle.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except DataError:
        raise
    except Exception as e:  # a corrupt pickle raises anything from EOFError to TypeError
        raise DataError(
            f"{source} is not a readable pickle (corrupt or truncated?): {type(e).__name__}: {e}"
        ) from None
