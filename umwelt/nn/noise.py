r"""Gate noise: the seeded stream of uniform numbers the E-step draws its gates from (THEORY.md §2).

A gate in ``"sample"`` mode is :math:`h = 1[u < \sigma(z/T)]` with :math:`u \sim U[0, 1)`, one
:math:`u` per unit and example, so a training step at :math:`T > 0` draws as many uniform
numbers as the network has hidden units times the batch size — millions per step for a VGG.
On the CPU, torch's Mersenne twister fills them one at a time on one thread, which costs more
than the layer's own arithmetic. :class:`GateNoise` is a drop-in source with the same law and
the generator interface training needs (``manual_seed``, ``get_state``, ``set_state``):

* **on the CPU** the random bits come from numpy's SFC64 (Chris Doty-Humphrey's small fast
  chaotic generator, 256 bits of state, which passes PractRand and TestU01's BigCrush), seeded
  through a :class:`numpy.random.SeedSequence`, one 64-bit word at a time in a tight loop;
* **on other devices** (CUDA) it wraps a :class:`torch.Generator` of that device and calls
  ``torch.rand``, which is already fast there.

The CPU turns 64-bit words into uniforms on a regular grid without a division: the low
mantissa bits of a word, under the exponent of 1.0, are a float in :math:`[1, 2)`; minus 1 this
is exactly :math:`u = k\,2^{-23}`, :math:`k` uniform on :math:`\{0, \dots, 2^{23} - 1\}`, in
float32 (two uniforms per word) and :math:`u = k\,2^{-52}` in float64 (one per word). Other
dtypes get float32 uniforms.

>>> a, b = GateNoise(7), GateNoise(7)
>>> bool((a.uniform((3, 4)) == b.uniform((3, 4))).all())
True
>>> state = a.get_state()
>>> u = a.uniform((5,))
>>> bool((a.set_state(state).uniform((5,)) == u).all())
True
"""

from __future__ import annotations

import math

import numpy as np
import torch

from umwelt.errors import ConfigError

__all__ = ["GateNoise"]

# (mantissa mask, exponent of 1.0, torch view of the words, uniforms per 64-bit word) per dtype
_BITS = {
    torch.float32: (0x007F_FFFF, 0x3F80_0000, torch.int32, 2),
    torch.float64: (0x000F_FFFF_FFFF_FFFF, 0x3FF0_0000_0000_0000, torch.int64, 1),
}
_STATE_WORDS = 6  # SFC64: 4 state words, has_uint32, uinteger


class GateNoise:
    r"""A seeded source of uniform numbers :math:`u \sim U[0, 1)` for the gates, on one device.

    Pass it to :meth:`umwelt.nn.GatedModel.set_generator` (or as a :class:`~umwelt.nn.Gate`'s
    ``generator``) wherever a :class:`torch.Generator` would go.

    Args:
        seed: a non-negative integer; equal seeds give equal streams.
        device: where the uniforms are made (``"cpu"``: a numpy SFC64 stream; otherwise a
            :class:`torch.Generator` of that device).

    Raises:
        ConfigError: for a negative or non-integer seed.
    """

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self._torch_gen = None if self.device.type == "cpu" else torch.Generator(self.device)
        self._stream = np.random.SFC64(0)
        self.manual_seed(seed)

    def __repr__(self) -> str:
        kind = "numpy SFC64" if self._torch_gen is None else "torch.Generator"
        return f"GateNoise(device={str(self.device)!r}, {kind})"

    def manual_seed(self, seed: int) -> GateNoise:
        """Restart the stream from ``seed``; returns ``self``."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"the gate-noise seed must be an integer ≥ 0, got {seed!r}")
        if self._torch_gen is not None:
            self._torch_gen.manual_seed(int(seed))
        else:
            self._stream = np.random.SFC64(np.random.SeedSequence(int(seed)))
        return self

    def uniform(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32):
        r"""A fresh tensor of independent :math:`U[0, 1)` numbers of ``shape`` on the device.

        Of ``dtype`` when it is float32 or float64 (CPU grids :math:`2^{-23}` and
        :math:`2^{-52}`), float32 otherwise (then compare, don't store, in the lower precision).
        """
        if dtype not in _BITS:
            dtype = torch.float32
        if self._torch_gen is not None:
            return torch.rand(shape, generator=self._torch_gen, device=self.device, dtype=dtype)
        mantissa, one, tview, per_word = _BITS[dtype]
        n = math.prod(shape)
        words = self._stream.random_raw(-(-n // per_word))  # (⌈n / per_word⌉,) uint64
        bits = torch.from_numpy(words.view(np.int64)).view(tview)[:n]
        u = bits.bitwise_and_(mantissa).bitwise_or_(one).view(dtype).sub_(1.0)  # k 2^-m
        return u.view(shape)

    def get_state(self) -> torch.Tensor:
        """The stream's state as a uint8 CPU tensor (what :meth:`set_state` takes back)."""
        if self._torch_gen is not None:
            return self._torch_gen.get_state()
        st = self._stream.state
        words = [int(w) for w in st["state"]["state"]]
        words += [int(st["has_uint32"]), int(st["uinteger"])]
        return torch.from_numpy(np.array(words, dtype=np.uint64).view(np.uint8).copy())

    def set_state(self, state: torch.Tensor) -> GateNoise:
        """Continue from a state of :meth:`get_state` of a source of this kind; returns ``self``.

        Raises:
            ConfigError: when ``state`` is not such a state (another kind, device or length).
        """
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8:
            raise ConfigError(f"a gate-noise state is a uint8 tensor, got {type(state).__name__}")
        if self._torch_gen is not None:
            try:
                self._torch_gen.set_state(state.cpu())
            except RuntimeError as e:
                raise ConfigError(f"not a gate-noise state for {self.device}: {e}") from None
            return self
        expected = _STATE_WORDS * 8
        if state.numel() != expected:
            raise ConfigError(
                f"not a CPU gate-noise state: {state.numel()} bytes, expected {expected}"
            )
        w = state.cpu().contiguous().numpy().view(np.uint64)
        self._stream.state = {
            "bit_generator": "SFC64",
            "state": {"state": np.array(w[:4], dtype=np.uint64)},
            "has_uint32": int(w[4]),
            "uinteger": int(w[5]),
        }
        return self
