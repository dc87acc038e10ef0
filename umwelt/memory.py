r"""Memory budgets: a request whose arrays cannot fit is refused before anything is allocated.

Every command estimates, from its settings alone, the bytes its largest arrays will take (the
weights and their optimizer state, the dataset, the Monte Carlo draws, the enumerated
circuits, the Hessian's Lanczos basis and bootstrap...) and calls :func:`check_fits` before it
allocates or writes anything. A request over the limit is a :class:`~umwelt.errors.
MemoryBudgetError` (a :class:`~umwelt.errors.ConfigError`: one line and exit code 2 at the
command line) naming both sizes, instead of a ``MemoryError`` traceback, a half-written run
directory, or the kernel's OOM killer.

The limit is the memory available now (:func:`available_bytes`: Linux's ``MemAvailable``, within
the container's cgroup limit) unless the environment variable ``UMWELT_MEMORY_LIMIT`` sets it:
bytes, or a number with a binary suffix ``K``, ``M``, ``G``, ``T`` (``8G``, ``512M``, ``1.5T``).

The estimates are deliberately rough ("about"): a few times the sizes of the arrays a
computation holds at once, so that a request refused is one that could not have run, and the
ordinary sizes (the README's commands) pass with room to spare.

This module imports numpy-free Python only (the VGG estimate imports :mod:`umwelt.nn.vgg`, and
so torch, when it is called).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Sequence

from umwelt.errors import ConfigError, MemoryBudgetError

__all__ = [
    "ENV_VAR",
    "array_bytes",
    "available_bytes",
    "check_fits",
    "dataset_bytes",
    "format_bytes",
    "memory_limit",
    "mlp_activations",
    "mlp_parameters",
    "parse_size",
    "training_bytes",
    "vgg_sizes",
]

#: the environment variable that sets the memory limit (bytes, or ``8G``, ``512M``...)
ENV_VAR = "UMWELT_MEMORY_LIMIT"

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<suffix>[KMGTP]?)(?:I?B)?")
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def parse_size(text: str, what: str = ENV_VAR) -> int:
    """A size in bytes from ``"8G"``, ``"512M"``, ``"1.5T"``, ``"4096"`` (binary multiples;
    ``8GiB``, ``8GB`` and lower case read the same).

    >>> parse_size("8G"), parse_size("512m"), parse_size("1.5K"), parse_size("100")
    (8589934592, 536870912, 1536, 100)

    Raises:
        ConfigError: naming ``what`` and the value, for anything else or a size of 0 bytes.
    """
    m = _SIZE.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    n = int(float(m["number"]) * _SUFFIXES[m["suffix"]]) if m else 0
    if n < 1:
        raise ConfigError(
            f"{what} must be a positive number of bytes, optionally with a suffix K, M, G or T "
            f"(such as 8G or 512M), got {text!r}"
        )
    return n


@functools.lru_cache(maxsize=8)
def _env_limit(raw: str) -> int:
    """The value of :data:`ENV_VAR`, checked once per value."""
    return parse_size(raw, ENV_VAR)


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text)
    except (OSError, ValueError):
        return None


def _meminfo_available() -> int | None:
    """Linux's ``MemAvailable`` (the memory new allocations can take without swapping)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """What the process's cgroup (v2, else v1) still allows, when it sets a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit = _read_int(limit_file)  # "max" (no limit) reads as None
        if limit is not None and limit < 2**60:
            return max(limit - (_read_int(usage_file) or 0), 0)
    return None


def _sysconf_available() -> int | None:
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            n = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            continue
        if n > 0:
            return n
    return None


def memory_limit() -> tuple[int | None, str]:
    """``(bytes, where the limit comes from)``: :data:`ENV_VAR` if set, else the machine's
    available memory (``None`` bytes when neither is known: no limit).

    Raises:
        ConfigError: when :data:`ENV_VAR` is set to something that is not a size.
    """
    raw = os.environ.get(ENV_VAR, "")
    if raw.strip():
        return _env_limit(raw), f"{ENV_VAR}={raw.strip()}"
    known = [n for n in (_meminfo_available(), _cgroup_room()) if n is not None]
    n = min(known) if known else _sysconf_available()
    return n, f"available memory; set {ENV_VAR} to change it"


def available_bytes() -> int | None:
    """The memory limit in bytes (:func:`memory_limit`); ``None`` when it cannot be known."""
    return memory_limit()[0]


def format_bytes(n: float) -> str:
    """``"12.3 GiB"``: binary units, three significant digits.

    >>> format_bytes(512), format_bytes(3 * 2**20), format_bytes(12.34 * 2**30)
    ('512 B', '3 MiB', '12.3 GiB')
    """
    if isinstance(n, int) and n >= 2**1000:  # past a float's range: the power of two
        return f"2^{n.bit_length() - 1} B"
    n = float(n)
    k = 0
    while n >= 1024 and k < len(_UNITS) - 1:
        n /= 1024
        k += 1
    return f"{int(n)} B" if k == 0 else f"{n:.3g} {_UNITS[k]}"


def check_fits(what: str, n_bytes: float) -> None:
    """Refuse ``what`` when it needs more than the memory limit, before it is allocated.

    Raises:
        MemoryBudgetError: ``"<what> needs about 12.3 GiB; the memory limit is 5.1 GiB
            (available memory; set UMWELT_MEMORY_LIMIT to change it)"``.
        ConfigError: when :data:`ENV_VAR` is set to something that is not a size.
    """
    limit, source = memory_limit()
    if limit is not None and n_bytes > limit:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(n_bytes)}; the memory limit is "
            f"{format_bytes(limit)} ({source})"
        )


# -- sizes ---------------------------------------------------------------------------------------


def array_bytes(*shape: int, itemsize: int = 8) -> int:
    """Bytes of an array of ``shape`` (float64 by default), computed without allocating it.

    >>> array_bytes(1000, 64), array_bytes(10, 10, itemsize=4)
    (512000, 400)
    """
    return math.prod(int(s) for s in shape) * int(itemsize)


def mlp_parameters(widths: Sequence[int]) -> int:
    """Weights of a bias-free MLP of ``widths`` (input first): :math:`\\sum_l n_{l-1} n_l`.

    >>> mlp_parameters((64, 64, 64, 1))
    8256
    """
    w = [int(n) for n in widths]
    return sum(a * b for a, b in zip(w[:-1], w[1:], strict=False))


def mlp_activations(widths: Sequence[int]) -> int:
    """Units of one example's forward pass (every layer, the input too): :math:`\\sum_l n_l`."""
    return sum(int(n) for n in widths)


def vgg_sizes(preset: str, width: float, input_shape: Iterable[int]) -> tuple[int, int]:
    """``(parameters, gated units of one example)`` of a VGG preset, from its architecture
    (:func:`umwelt.nn.vgg.vgg_architecture`: arithmetic, nothing is built). An input shape a
    VGG cannot take is replaced by CIFAR-10's ``(3, 32, 32)`` here (the model's builder refuses
    it later, naming it).

    Raises:
        ConfigError: for an unknown preset or a width multiplier that empties a layer.
    """
    from umwelt.nn.vgg import DEFAULT_INPUT_SHAPE, vgg_architecture

    shape = tuple(input_shape)
    try:
        arch = vgg_architecture(preset, width, shape)
    except ConfigError:
        arch = vgg_architecture(preset, width, DEFAULT_INPUT_SHAPE)
    units = sum(math.prod(s) for s in arch.gate_shapes) + math.prod(arch.input_shape)
    return arch.parameter_count(), units


def training_bytes(
    n_parameters: int, units: int, *, batch: int, itemsize: int, copies: int = 5
) -> int:
    """Bytes of training a net: ``copies`` arrays of its parameters (the weights, their
    gradient, the momentum, a full-data gradient, a checkpoint's copy) and four values per unit
    of ``batch`` examples' forward pass (pre-activation, gate, output, gradient), ``units``
    units per example (:func:`mlp_activations`, :func:`vgg_sizes`).

    >>> training_bytes(8256, 193, batch=32, itemsize=4)
    263936
    """
    return int(itemsize) * (int(copies) * int(n_parameters) + 4 * int(batch) * int(units))


def dataset_bytes(n_examples: int, input_size: int, itemsize: int) -> int:
    """Bytes of a dataset held twice: as the loader's float64 arrays and as tensors of
    ``itemsize`` bytes (the labels are negligible beside ``input_size`` values per example)."""
    return int(n_examples) * int(input_size) * (8 + int(itemsize))
