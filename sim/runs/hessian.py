r"""The settings of a Hessian analysis (``umwelt hessian``, ``umwelt train --hessian-at``) and
what it leaves in a run directory (``RUN/hessian/``; ``RUN/hessian_relu/`` for the ReLU twin
of a simulate run).

:class:`HessianSettings` holds every setting that changes the numbers of an analysis and that
``umwelt train --hessian-settings KEY=VALUE,...`` may set (the rest — which run, which epochs,
the device — come from the command). :func:`parse_settings` turns that string into settings at
the CLI's edge, and reads the string older train runs stored in their ``config.json``.

The analysis directory::

    config.json      the settings, the shared density grid, seeds, versions (the first analysis)
    hessian.jsonl    one row per analysed epoch, sorted by epoch
    epoch_XXXX.npz   the epoch's arrays (density and band, Ritz nodes, entries) and its row
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from sim.runs.codec import JsonConfig
from umwelt._checks import check_int, check_positive
from umwelt.errors import ConfigError

__all__ = [
    "AUTO_FLOAT64_LIMIT",
    "DTYPES",
    "EXTREMES",
    "HESSIAN_DIRS",
    "HessianSettings",
    "SETTINGS",
    "check_requests",
    "hessian_dirname",
    "parse_settings",
]

EXTREMES: tuple[str, ...] = ("slq", "lanczos", "eigsh")
#: the entries of the correlation sub-matrix (figs. 6b,c): 100 more drawn uniformly among the
#: joined pairs, or among the column-confined entries themselves
CORR_ENTRIES: tuple[str, ...] = ("uniform", "columns")
DTYPES: tuple[str, ...] = ("auto", "float32", "float64")
#: dtypes the products cannot take: their round-off (~1e-3 relative) exceeds the statistical
#: error of every quantity reported (~1e-3 relative for N ~ 10⁵ with 8 start vectors)
COARSE_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "half")
#: the analysis directories of a run: of the analysed net, and of a simulate run's ReLU twin
HESSIAN_DIRS: tuple[str, ...] = ("hessian", "hessian_relu")
#: the setting's old name (before ``examples``), accepted wherever settings are read
_RENAMED = {"subset": "examples"}
# dtype "auto": float64 up to this many parameters, float32 beyond (8× faster products on a
# CPU; its round-off is measured per epoch, the row's "roundoff", and tested to stay below
# the statistical error, tests/test_hessian_float32.py)
AUTO_FLOAT64_LIMIT = 50_000
ENTRY_CHUNK_BYTES = 64 * 2**20  # per-example products held at once (examples × 8 columns × N)


def hessian_dirname(net: str) -> str:
    """``"hessian"``, or ``"hessian_relu"`` for the ReLU twin (``net="relu"``) of a simulate run."""
    return HESSIAN_DIRS[1] if net == "relu" else HESSIAN_DIRS[0]


@dataclass(frozen=True)
class HessianSettings(JsonConfig):
    """Every setting that changes the numbers of a Hessian analysis; :meth:`validated` checks."""

    examples: int | None = None  # a fixed, seeded set of this many training examples (None: all)
    batch_size: int = 1000  # examples per batch of a product
    lanczos_steps: int | None = None  # SLQ Lanczos steps k (None: min(80, N))
    start_vectors: int = 8  # SLQ start vectors n_v (Gaussian); closed-form SEs need ≥ 3
    reorth: str = "full"  # full (k × N memory) or none (3 × N) re-orthogonalization
    extremes: str = "slq"  # slq (the SLQ's Ritz values when converged), lanczos or eigsh
    extreme_steps: int | None = None  # Lanczos steps of the extremes (None: min(80, N))
    entries: int | None = None  # sampled entries K (None: min(1000, admissible); 0: none)
    entry_columns: int | None = 40  # columns the entries lie in (None: uniform pairs)
    corr_entries: str = "uniform"  # the 100 × 100 correlations of uniform entries, or "columns"
    uniform_entries: int = 100  # of the K, uniform ones (correlations, coupling set; ≤ K/2)
    deflation_steps: int = 0  # > 0: a Lanczos run of this many steps, its eigenpairs deflated
    blocks: bool = False  # per-layer-pair blocks: Frobenius shares, top singular values
    block_vectors: int = 16  # Gaussian probes per layer of the blocks (layers × this products)
    bootstrap: int = 200  # bootstrap resamples B of the examples (entries)
    hinge_coords: int = 32  # exact diagonal entries checked (hinge loss)
    grid_bound: float | None = None  # density grid [-b, b] (None: margin × max |λ|)
    grid_margin: float = 1.5  # b = margin × the largest |λ| over the epochs analysed
    grid_points: int = 801  # points of the density grid (odd: 0 is on it)
    smoothing: float = 0.08  # Gaussian width of the density in the symlog coordinate u
    seed: int = 0  # seeds the examples, gate sample, start vectors, entries and bootstrap
    dtype: str = "auto"  # float32, float64, or auto (float64 up to 50,000 parameters)

    def validated(self) -> HessianSettings:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one."""
        if self.reorth not in ("full", "none"):
            raise ConfigError(f"reorth must be full or none, got {self.reorth!r}")
        if self.extremes not in EXTREMES:
            raise ConfigError(
                f"extremes must be one of {', '.join(EXTREMES)}, got {self.extremes!r}"
            )
        from umwelt.nn.hessian.blocks import check_probes

        if self.corr_entries not in CORR_ENTRIES:
            raise ConfigError(
                f"corr entries must be one of {', '.join(CORR_ENTRIES)}, got {self.corr_entries!r}"
            )
        if self.dtype in COARSE_DTYPES:
            raise ConfigError(
                f"dtype {self.dtype} is too coarse for the Hessian's products (round-off about "
                "1e-3 of each, above the statistical error of what is reported); use float32 "
                "or float64"
            )
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

        def opt(name: str, v, low: int = 1):
            return None if v is None else check_int(name, v, low)

        grid_bound = (
            None if self.grid_bound is None else check_positive("grid bound", self.grid_bound)
        )
        margin = check_positive("grid margin", self.grid_margin)
        if margin < 1:
            raise ConfigError(f"the grid margin must be ≥ 1, got {self.grid_margin!r}")
        return replace(
            self,
            examples=opt("examples", self.examples, 2),
            batch_size=check_int("batch size", self.batch_size),
            lanczos_steps=opt("lanczos steps", self.lanczos_steps),
            start_vectors=check_int("start vectors", self.start_vectors, 2),
            extreme_steps=opt("extreme steps", self.extreme_steps),
            entries=opt("entries", self.entries, 0),
            entry_columns=opt("entry columns", self.entry_columns),
            uniform_entries=check_int("uniform entries", self.uniform_entries, 0),
            bootstrap=check_int("bootstrap resamples", self.bootstrap, 20),
            hinge_coords=check_int("hinge coordinates", self.hinge_coords),
            grid_bound=grid_bound,
            grid_margin=margin,
            grid_points=check_int("grid points", self.grid_points, 3),
            smoothing=check_positive("smoothing", self.smoothing),
            seed=check_int("seed", self.seed, 0),
            deflation_steps=check_int("deflation steps", self.deflation_steps, 0),
            blocks=_flag("blocks", self.blocks),
            block_vectors=check_probes(self.block_vectors),
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HessianSettings:
        """As :meth:`JsonConfig.from_json`; the old name ``subset`` reads as ``examples``."""
        if isinstance(obj, dict):
            obj = {_RENAMED.get(k, k): v for k, v in obj.items()}
        return super().from_json(obj)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | int) or value not in (0, 1):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return bool(value)


#: the names of the settings (``umwelt hessian``'s options; keys of ``--hessian-settings``)
SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HessianSettings))
_KINDS = {f.name: f.type for f in dataclasses.fields(HessianSettings)}


def parse_settings(text: str | None) -> HessianSettings | None:
    """``"lanczos_steps=40,entries=200,reorth=none"`` → checked :class:`HessianSettings`
    (``none`` for an optional number: its default rule); ``None`` for no text.

    Raises:
        ConfigError: for a malformed item, a key not in :data:`SETTINGS` or a bad value, naming
            it.
    """
    if text is None or not text.strip():
        return None
    out: dict[str, Any] = {}
    for item in text.split(","):
        key, eq, value = (t.strip() for t in item.partition("="))
        key = key.replace("-", "_")
        key = _RENAMED.get(key, key)
        if not eq or not key or not value:
            raise ConfigError(f"a Hessian setting is KEY=VALUE, got {item.strip()!r}")
        if key not in SETTINGS:
            raise ConfigError(
                f"unknown Hessian setting {key!r}; the settings are {', '.join(SETTINGS)}"
            )
        kind = _KINDS[key]
        if kind == "str":
            out[key] = value
        elif kind == "bool":
            flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            if value.lower() not in flags:
                raise ConfigError(f"Hessian setting {key} must be true or false, got {value!r}")
            out[key] = flags[value.lower()]
        elif value.lower() == "none":
            out[key] = None
        else:
            number = float if kind.startswith("float") else int
            try:
                out[key] = number(value)
            except ValueError:
                what = "a number" if number is float else "an integer"
                raise ConfigError(f"Hessian setting {key} must be {what}, got {value!r}") from None
    return HessianSettings(**out).validated()


def check_requests(
    settings: HessianSettings,
    *,
    n_parameters: int,
    pairs: int,
    n_examples: int,
    itemsize: int,
    epochs: int = 1,
) -> dict[str, int | None]:
    """The step counts an analysis with ``settings`` takes on a Hessian of dimension
    ``n_parameters`` = N, once every request is checked against N and against the memory
    budget (:func:`umwelt.memory.check_fits`): nothing is computed or written.

    Args:
        settings: validated settings.
        n_parameters: N (the trainable weights).
        pairs: the cross-layer entries the entries are drawn from (an upper bound will do:
            ``N (N - 1) / 2`` before the model is built).
        n_examples: the examples of the risk.
        itemsize: bytes of one number of the products (8 for float64).
        epochs: the epochs analysed in one call.

    Returns:
        ``{"lanczos_steps", "extreme_steps", "entries", "entry_columns"}`` with their defaults
        resolved (``min(80, N)``, ``min(1000, pairs)``, ``min(columns, N)``).

    Raises:
        ConfigError: naming the first request larger than the Hessian, or the memory it needs.
    """
    import numpy as np

    from umwelt import memory

    N, n, it = int(n_parameters), int(n_examples), int(itemsize)
    k = settings.lanczos_steps or min(80, N)
    if k > N:
        raise ConfigError(
            f"--lanczos-steps {k} exceeds the Hessian's dimension N = {N} (the model's trainable "
            "parameters)"
        )
    if settings.deflation_steps > N:
        raise ConfigError(
            f"--deflation-steps {settings.deflation_steps} exceeds the Hessian's dimension N = {N}"
        )
    ek = settings.extreme_steps or min(80, N)
    if ek > N:
        raise ConfigError(f"--extreme-steps {ek} exceeds the Hessian's dimension N = {N}")
    if settings.extremes == "eigsh" and N < 2:
        raise ConfigError(f"eigsh needs a Hessian of dimension N ≥ 2, got N = {N}")
    cols = None if settings.entry_columns is None else min(settings.entry_columns, N)
    K = min(1000, pairs) if settings.entries is None else settings.entries
    if K > pairs:
        raise ConfigError(
            f"--entries {K} exceeds the {pairs:,} cross-layer entries of the Hessian (N = {N:,})"
        )
    # the memory: a Lanczos basis, the Ritz densities on the grid with their SE bands and
    # every epoch's curves, the per-example contributions of the entries and their bootstrap
    B, G = settings.bootstrap, settings.grid_points
    basis = max(k if settings.reorth == "full" else 3, ek) + 4
    per_point = 4 * settings.start_vectors * k + 1000 + 8 * epochs
    parts = {
        f"a Lanczos basis of {basis - 4} × N vectors": it * N * basis,
        f"a density grid of {G:,} points": 8 * G * per_point,
    }
    if K:
        chunk = min(n, int(np.clip(ENTRY_CHUNK_BYTES // (64 * N), 8, 256))) * 8 * N * it
        parts[f"{K:,} entries over {n:,} examples"] = 16 * n * K + 2 * chunk
        parts[f"{B:,} bootstrap resamples"] = 8 * B * (2 * n + 4 * K)
    largest = max(parts, key=parts.__getitem__)
    memory.check_fits(f"the Hessian analysis (N = {N:,}; mostly {largest})", sum(parts.values()))
    return {"lanczos_steps": k, "extreme_steps": ek, "entries": K, "entry_columns": cols}
