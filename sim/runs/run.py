r"""A finished (or interrupted) run directory, read through one object: :class:`Run`.

``Run.open(path)`` tells the kind of run from its ``config.json`` — ``umwelt train`` writes a
config that names a ``model`` and a ``dataset``, ``umwelt simulate`` one with the MLP's
``widths`` — and decodes it into the kind's typed Config. Everything a
reader needs comes from the object: the metric rows, the summary, the observations, the
checkpoints by epoch, the data and the model at any checkpoint rebuilt exactly as the run built
them, and the Hessian analyses. Nothing is written.

>>> import tempfile, json, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "config.json").write_text(json.dumps({"widths": [3, 2, 1], "hidden": [2],
...     "temperature": "inf", "dataset": "digits"}))
>>> run = Run.open(d)
>>> run.kind, run.config.temperature, run.config.hidden, run.metrics()
('simulate', inf, (2,), [])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.runs import hessian as hessian_dir
from sim.runs import io, simulate, train
from sim.runs.untrusted import load_checkpoint, load_json, load_jsonl, load_npz
from umwelt.errors import ConfigError, ShapeError

__all__ = ["KINDS", "Run"]

#: the commands whose run directories can be opened
KINDS: tuple[str, ...] = ("train", "simulate")


class Run:
    """A run directory of ``umwelt train`` or ``umwelt simulate``, read only.

    Attributes:
        path: the directory.
        kind: ``"train"`` or ``"simulate"``.
        config: the typed settings (:class:`~sim.runs.train.TrainConfig` or
            :class:`~sim.runs.simulate.SimulateConfig`), ``out`` set to ``path``.
        stored: ``config.json`` as written (also the seeds, dataset facts, versions).
    """

    def __init__(self, path: Path, kind: str, config, stored: dict):
        self.path, self.kind, self.config, self.stored = Path(path), kind, config, stored
        self._data = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, kind={self.kind!r})"

    @classmethod
    def open(cls, path: Path | str) -> Run:
        """Open the run in ``path`` (reads ``config.json`` only).

        Raises:
            ConfigError: when ``path`` is missing, has no readable ``config.json``, or its
                config is of neither kind.
        """
        path = io.check_lookup(Path(path), "run directory")
        if path.is_file():
            raise ConfigError(f"{str(path)!r} is a file, not a run directory")
        if not path.is_dir():
            raise ConfigError(f"no run directory {str(path)!r}")
        neither = f"{str(path)!r} is not a run directory of umwelt train or umwelt simulate"
        try:
            stored = load_json(path / "config.json")
        except FileNotFoundError:
            raise ConfigError(f"{neither}: no config.json") from None
        except ConfigError as e:
            raise ConfigError(f"{str(path)!r}: unreadable config.json ({e})") from None
        if isinstance(stored, dict) and {"model", "dataset"} <= stored.keys():
            kind, schema = "train", train.TrainConfig
        elif isinstance(stored, dict) and "widths" in stored:
            kind, schema = "simulate", simulate.SimulateConfig
        else:
            raise ConfigError(f"{neither}: its config.json names neither a model nor MLP widths")
        try:
            config = schema.from_json({**stored, "out": str(path)})
        except (ConfigError, TypeError, ValueError) as e:
            raise ConfigError(f"{str(path)!r}: unreadable config.json ({e})") from None
        return cls(path, kind, config, stored)

    # -- rows -------------------------------------------------------------------------------------

    def metrics(self, *, required: bool = False) -> list[dict]:
        """The rows of ``metrics.jsonl`` (epoch 0 first); ``[]`` before the first epoch.

        Raises:
            ConfigError: for an unreadable file, or with ``required`` when there is no row.
        """
        path = self.path / "metrics.jsonl"
        try:
            rows = load_jsonl(path)
        except FileNotFoundError:
            if required:
                raise ConfigError(
                    f"the {self.kind} run {str(self.path)!r} has no metrics.jsonl"
                ) from None
            return []
        if required and not rows:
            raise ConfigError(
                f"the {self.kind} run {str(self.path)!r} has no metrics yet (metrics.jsonl)"
            )
        return rows

    def summary(self) -> dict | None:
        """``summary.json`` (written when a run ends, also after a failure), or ``None``."""
        try:
            return load_json(self.path / "summary.json")
        except FileNotFoundError:
            return None

    def observations(self) -> list[dict[str, np.ndarray]]:
        """The ``observations/epoch_XXXX.npz`` of a train run as dicts, sorted by epoch."""
        out = []
        for p in sorted((self.path / "observations").glob("epoch_*.npz")):
            o = load_npz(p)
            if "epoch" not in o or o["epoch"].shape != () or o["epoch"].dtype.kind not in "iu":
                raise ConfigError(f"observation {str(p)!r} has no integer epoch")
            out.append(o)
        out.sort(key=lambda o: int(o["epoch"]))
        return out

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoints(self, net: str = "finite_T") -> dict[int, Path]:
        """Epoch → weights file, ascending (``{}`` when there are none).

        A train run has ``checkpoints/model_epoch_XXXX.pt`` at its observed epochs. A simulate
        run has ``init.pt`` as epoch 0 and ``finite_T.pt`` (or, with ``net="relu"``, the twin's
        ``relu.pt``) as the epoch of the last row of ``metrics.jsonl``.

        Raises:
            ConfigError: ``net="relu"`` for a train run, or an unknown ``net``.
        """
        ck = self.path / "checkpoints"
        if net not in simulate.NETS:
            raise ConfigError(f"net must be one of {', '.join(simulate.NETS)}, got {net!r}")
        found: dict[int, Path] = {}
        if self.kind == "train":
            if net != "finite_T":
                raise ConfigError(
                    f"--net {net} is for simulate runs; {str(self.path)!r} is a train run"
                )
            for p in ck.glob("model_epoch_*.pt"):
                try:
                    found[int(p.stem.removeprefix("model_epoch_"))] = p
                except ValueError:
                    continue
        else:
            if (ck / "init.pt").is_file():
                found[0] = ck / "init.pt"
            last = self._last_simulate_epoch()
            if last and (ck / f"{net}.pt").is_file():
                found[last] = ck / f"{net}.pt"
        return dict(sorted(found.items()))

    def require_checkpoints(self, net: str = "finite_T", *, purpose: str = "") -> dict[int, Path]:
        """:meth:`checkpoints`, or :class:`ConfigError` when there are none (``purpose``: what
        they were wanted for, e.g. ``" to analyse"``)."""
        found = self.checkpoints(net)
        if not found:
            what = "model_epoch_XXXX.pt" if self.kind == "train" else f"init.pt or {net}.pt"
            raise ConfigError(
                f"the {self.kind} run {str(self.path)!r} has no checkpoints{purpose} (no {what} "
                f"in {str(self.path / 'checkpoints')!r})"
            )
        return found

    def _last_simulate_epoch(self) -> int:
        """The epoch of a simulate run's latest weights: the last row of ``metrics.jsonl``
        (written with them after every epoch; a diverged epoch's row is not)."""
        try:
            rows = self.metrics()
        except ConfigError:
            return 0
        return int(rows[-1]["epoch"]) if rows else 0

    def checkpoint(self, which: str | int) -> tuple[Path, int | None, str]:
        """``(file, epoch, net)`` of a checkpoint named as ``umwelt circuits --which`` names it.

        A simulate run: ``init``, ``finite_T`` or ``relu``. A train run: an epoch, ``init``
        (epoch 0) or ``last``.

        Raises:
            ConfigError: for a name of neither kind or a missing file.
        """
        ck = self.path / "checkpoints"
        if self.kind == "simulate":
            if which not in simulate.CHECKPOINTS:
                raise ConfigError(
                    f"checkpoint must be one of {', '.join(simulate.CHECKPOINTS)}, got {which!r}"
                )
            path = ck / f"{which}.pt"
            if not path.is_file():
                raise ConfigError(
                    f"no checkpoint {str(path)!r}; is {str(self.path)!r} a simulate run?"
                )
            net = "relu" if which == "relu" else "finite_T"
            return path, (0 if which == "init" else None), net
        epochs = list(self.checkpoints())
        if not epochs:
            raise ConfigError(f"{str(self.path)!r} holds no simulate or train checkpoints")
        if which in ("init", "0", 0):
            epoch = 0
        elif which == "last":
            epoch = epochs[-1]
        else:
            try:
                epoch = int(which)
            except ValueError:
                raise ConfigError(
                    f"--which for a train run is init, last or an epoch, got {which!r}"
                ) from None
        if epoch not in epochs:
            raise ConfigError(f"no checkpoint of epoch {epoch} in {str(ck)!r}; epochs: {epochs}")
        return ck / train.model_checkpoint(epoch), epoch, "finite_T"

    def temperature(self, net: str = "finite_T") -> float:
        """:math:`T` of the net: the run's, or 0 for a simulate run's ReLU twin."""
        return 0.0 if net == "relu" else float(self.config.temperature)

    @property
    def loss(self) -> str:
        """The run's loss (``"hinge"`` or ``"logistic"``)."""
        return str(self.config.loss)

    # -- rebuilding -------------------------------------------------------------------------------

    def data(self):
        """The run's dataset, loaded as the run loaded it (once per :class:`Run`).

        Raises:
            ConfigError: when the data's SHA-256 differs from the train run's (the dataset
                file changed since).
        """
        if self._data is not None:
            return self._data
        if self.kind == "simulate":
            data = simulate.load_data(self.config)
        else:
            data = train.load_data(self.config)
            sha = self.stored.get("data_sha256")
            if sha is not None and sha != train.fingerprint(data):
                raise ConfigError(
                    f"{str(self.path)!r}: the dataset {self.config.dataset!r} now has other "
                    f"contents than when the run started (sha256 "
                    f"{train.fingerprint(data)[:12]}… vs {str(sha)[:12]}…)"
                )
        self._data = data
        return data

    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input (from ``config.json``; from the data if it is not there)."""
        if self.kind == "simulate":
            return (int(self.stored["widths"][0]),)
        shape = self.stored.get("input_shape")
        return tuple(int(s) for s in shape) if shape else tuple(self.data().input_shape)

    def build_model(self, net: str = "finite_T", *, dtype=None, device="cpu"):
        """The run's model with its seeded initial weights (``dtype``: a torch dtype or name;
        default the run's)."""
        from umwelt.nn.device import resolve_dtype

        dtype = resolve_dtype(self.config.dtype if dtype is None else dtype)
        if self.kind == "simulate":
            which = "relu" if net == "relu" else "finite_T"
            return simulate.build_net(
                self.config, self.stored["widths"], which, device=device, dtype=dtype
            )
        self.checkpoints(net)  # a train run has one net
        return train.build_model(self.config, self.input_shape(), device=device, dtype=dtype)

    def model(
        self,
        epoch: int | None = None,
        *,
        net: str = "finite_T",
        which: str | int | None = None,
        dtype=None,
        device="cpu",
    ):
        """The net at a checkpoint, rebuilt with the run's settings and its weights loaded.

        Args:
            epoch: a key of :meth:`checkpoints` (default: the last one).
            net: ``"finite_T"`` or a simulate run's ``"relu"`` twin.
            which: instead of ``epoch`` and ``net``, a name as :meth:`checkpoint` takes it.
            dtype: a torch dtype or its name (default: the run's).
            device: where the model lives.

        Raises:
            ConfigError: for a missing or unreadable checkpoint.
            ShapeError: when its weights do not fit the run's configuration.
        """

        if which is not None:
            path, _, net = self.checkpoint(which)
        else:
            found = self.require_checkpoints(net)
            epoch = list(found)[-1] if epoch is None else epoch
            if epoch not in found:
                raise ConfigError(
                    f"epoch {epoch} is not in the run {str(self.path)!r}: its checkpointed epochs "
                    f"are {', '.join(map(str, found))}"
                )
            path = found[epoch]
        model = self.build_model(net, dtype=dtype, device=device)
        state = load_checkpoint(path, map_location=device)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:  # keys or shapes that do not fit
            first = str(e).strip().splitlines()
            raise ShapeError(
                f"the checkpoint {str(path)!r} does not fit the run's configuration: "
                f"{' '.join(first[:3])}"
            ) from None
        return model

    # -- Hessian analyses -------------------------------------------------------------------------

    def hessian_dir(self, net: str = "finite_T") -> Path:
        """``RUN/hessian`` (``RUN/hessian_relu`` for the ReLU twin of a simulate run)."""
        return self.path / hessian_dir.hessian_dirname(net)

    def hessian(self, net: str = "finite_T") -> tuple[dict, list[dict[str, Any]]]:
        """``(hessian/config.json, the epochs sorted by epoch)`` of the net's analysis.

        Each epoch is a dict of its ``epoch_XXXX.npz`` arrays plus ``"row"``, its
        ``hessian.jsonl`` row. ``({}, [])`` when the run has no analysis.
        """
        out = self.hessian_dir(net)
        if not (out / "config.json").is_file():
            return {}, []
        config = load_json(out / "config.json")
        epochs = []
        for path in sorted(out.glob("epoch_*.npz")):
            d = load_npz(path)
            try:
                d["row"] = json.loads(str(d["row"]))
                int(d["epoch"])
            except (KeyError, ValueError, TypeError) as e:
                raise ConfigError(f"unreadable Hessian results {str(path)!r}: {e!r}") from None
            epochs.append(d)
        epochs.sort(key=lambda d: int(d["epoch"]))
        return config, epochs

    def hessian_rows(self, net: str = "finite_T") -> list[dict]:
        """The rows of ``hessian/hessian.jsonl`` (``[]`` when the run has no analysis)."""
        path = self.hessian_dir(net) / "hessian.jsonl"
        try:
            return load_jsonl(path)
        except FileNotFoundError:
            return []
