r"""Independent seeds from one seed: named streams and per-index seeds (numpy's SeedSequence).

Every random draw of a run flows from one integer ``seed``. :class:`numpy.random.SeedSequence`
hashes its entropy (and an optional ``spawn_key``) into a pool from which
``generate_state(k)`` returns ``k`` 32-bit or 64-bit words that are, for practical purposes,
independent; word ``j`` does not depend on ``k`` (``generate_state(3)[0] ==
generate_state(1)[0]``), so adding a stream at the end never changes the earlier ones.

* :func:`streams` — one seed per *named* stream (data order, gate noise, evaluation, …):
  word ``j`` of ``SeedSequence(seed, spawn_key=key).generate_state(len(names), uint64)``,
  shifted right by one bit (a 63-bit non-negative integer, which ``torch.Generator.manual_seed``
  and :class:`umwelt.nn.GateNoise` accept). A process-specific family uses
  ``spawn_key=(rank,)``.
* :func:`index_seed` — one seed per *index* (an example, a random vector): the low ``bits``
  bits of word 0 of ``SeedSequence((seed, index)).generate_state(1, uint64)``, so an item's
  draw depends only on ``(seed, index)``, not on which process or batch handles it.

The schemes the drivers use, in these terms (``umwelt.seeds`` is the one place they live):

* ``umwelt simulate``: ``streams(seed, ("data_order", "gate_noise", "evaluation"))``;
* ``umwelt train`` on rank ``r``: ``streams(seed, ("data_order",))`` (shared by all ranks)
  and ``streams(seed, ("gate_noise", "evaluation"), spawn_key=(r,))``;
* ``umwelt hessian``: ``streams(seed, names)`` with its tuple of stream names;
* the fixed gates of example ``i`` of a Hessian operator: ``index_seed(seed, i)`` (63 bits);
  the ``i``-th random vector of a trace or SLQ estimate: ``index_seed(seed, i, bits=32)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umwelt.errors import ConfigError

__all__ = ["index_seed", "streams"]


def _check_seed(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
        raise ConfigError(f"{name} must be an integer ≥ 0, got {v!r}")
    return int(v)


def streams(seed: int, names: Sequence[str], *, spawn_key: Sequence[int] = ()) -> dict[str, int]:
    r"""One 63-bit seed per name, independent of one another.

    .. math::
        s_j = w_j \gg 1, \qquad
        (w_0, \dots, w_{k-1}) = \mathrm{SeedSequence}(\mathit{seed},
        \mathit{spawn\_key}).\mathrm{generate\_state}(k, \mathrm{uint64})

    for the ``k = len(names)`` names in order. Stream ``j`` depends on ``seed``, ``spawn_key``
    and its position ``j`` only.

    Args:
        seed: the run's seed, an integer ≥ 0.
        names: distinct stream names.
        spawn_key: integers ≥ 0 that pick an independent family (e.g. ``(rank,)``).

    Returns:
        ``{name: seed}``, each in ``[0, 2**63)``.

    Raises:
        ConfigError: for a negative or non-integer seed or key, or repeated names.

    >>> s = streams(0, ("data_order", "gate_noise"))
    >>> s["data_order"] == streams(0, ("data_order",))["data_order"]  # a prefix is stable
    True
    >>> all(0 <= v < 2**63 for v in s.values())
    True
    """
    seed = _check_seed("seed", seed)
    key = tuple(_check_seed("spawn key entry", k) for k in spawn_key)
    names = tuple(names)
    if len(set(names)) != len(names):
        raise ConfigError(f"stream names must be distinct, got {names!r}")
    words = np.random.SeedSequence(seed, spawn_key=key).generate_state(len(names), np.uint64)
    return {name: int(w >> 1) for name, w in zip(names, words, strict=True)}


def index_seed(seed: int, index: int, *, bits: int = 63) -> int:
    r"""The seed of item ``index`` (an example, a random vector) of the family ``seed``.

    .. math::
        s = w_0 \bmod 2^{\mathit{bits}}, \qquad
        w_0 = \mathrm{SeedSequence}((\mathit{seed}, \mathit{index})).
        \mathrm{generate\_state}(1, \mathrm{uint64})_0

    ``bits=32`` is word 0 of ``generate_state(1, uint32)`` (the low half of :math:`w_0`).

    Args:
        seed: the family's seed, an integer ≥ 0.
        index: the item, an integer ≥ 0.
        bits: how many low bits to keep, 1 to 64 (63: a non-negative int64).

    Returns:
        an integer in ``[0, 2**bits)``.

    Raises:
        ConfigError: for a negative or non-integer seed or index, or ``bits`` outside 1..64.

    >>> a, b = index_seed(7, 3), index_seed(7, 3, bits=32)
    >>> a % 2**32 == b and 0 <= a < 2**63
    True
    """
    seed, index = _check_seed("seed", seed), _check_seed("index", index)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ConfigError(f"bits must be an integer in 1..64, got {bits!r}")
    word = np.random.SeedSequence((seed, index)).generate_state(1, np.uint64)[0]
    return int(word) & ((1 << bits) - 1)
