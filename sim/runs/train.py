r"""A run directory of ``umwelt train``: its :class:`TrainConfig`, and how its data and model
are rebuilt from it.

The directory::

    config.json          every setting, the derived seeds, dataset facts, layers, versions
    metrics.jsonl        one row per epoch (0 = the initialization)
    summary.json         the last row, status, first epochs of zero training error and loss
    observations/        epoch_XXXX.npz at the observed epochs
    checkpoints/         last.pt (resumable state), model_epoch_XXXX.pt (state dicts)
    figures/             the figures of ``umwelt plot RUN``
    hessian/             the Hessian analyses (:mod:`sim.runs.hessian`)

:func:`load_data` and :func:`build_model` are the only places a train run's data and model are
made, for the run itself and for every later reader (:class:`sim.runs.Run`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.runs import io
from sim.runs.codec import JsonConfig, check_path
from sim.runs.hessian import HessianSettings, parse_settings
from sim.runs.untrusted import load_json as io_json
from umwelt._checks import check_fraction, check_int, check_positive, check_real
from umwelt.errors import ConfigError

__all__ = [
    "CHECKPOINT",
    "PAPER_OBSERVE_AT",
    "TrainConfig",
    "build_model",
    "check_resumable",
    "fingerprint",
    "load_data",
    "model_checkpoint",
    "observation_file",
    "resolve_dataset",
    "write_observation",
]

#: The epochs of the paper's fig. 3a, the default observation epochs (clipped to the run).
PAPER_OBSERVE_AT: tuple[int, ...] = (0, 10, 20, 30, 40, 100, 160, 200, 260, 300)
CHECKPOINT = "last.pt"  # the resumable state, in checkpoints/


def model_checkpoint(epoch: int) -> str:
    """``checkpoints/`` file name of the weights at an observed epoch."""
    return f"model_epoch_{epoch:04d}.pt"


def observation_file(epoch: int) -> str:
    """``observations/`` file name of an observed epoch."""
    return f"epoch_{epoch:04d}.npz"


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """Every setting of a training run, typed (the CLI parses text such as ``--observe-at
    0,10,20``); :meth:`validated` checks the values, :func:`sim.train.prepare` the filesystem."""

    model: str = "vgg12"  # VGG preset (vgg11, vgg12, vgg13, vgg16) or mlp:<hidden widths>
    width: float = 1.0  # width multiplier of every hidden layer (CPU: 1/8 or 1/4)
    dataset: str | None = None  # required: a CIFAR-10 path, digits, or a synthetic family spec
    classes: str | None = None  # CIFAR-10 binary task "a,b" or a grouping (None: cat,dog)
    subset: int | None = None  # balanced training subset size (None: all)
    subset_test: int | None = None  # balanced test subset size (None: all)
    label_noise: float | None = None  # fraction of random training labels (None: none)
    temperature: float = 0.0  # gate temperature T (0 = the ReLU net, the paper's setting)
    gate_mode: str = "sample"  # sample (EM), mean (mean field) or relu
    loss: str = "hinge"  # hinge (the theory's, eq. 12) or logistic
    epochs: int = 300  # passes over the training set (the paper: 300)
    lr: float = 0.01  # SGD step size η
    momentum: float = 0.9  # SGD momentum
    batch_size: int = 128  # global minibatch size (split over processes)
    gain: float = math.sqrt(2.0)  # He gain: W ~ N(0, gain² / fan_in)
    seed: int = 0  # the one seed every random draw flows from
    device: str = "cpu"  # cpu, cuda, cuda:N (under torchrun: cuda:LOCAL_RANK)
    dtype: str = "float32"  # float32 or float64
    observe_at: tuple[int, ...] | None = None  # None: PAPER_OBSERVE_AT ≤ epochs, and the last
    checkpoint_every: int = 0  # also checkpoint every K steps within an epoch (0: epoch ends)
    eval_batch_size: int = 500  # examples per batch of the full-data passes
    stop_at_zero_loss: bool = False  # stop once the training risk is exactly 0 (converged)
    stop_at_phase: str | None = None  # stop when the run enters this phase (umwelt.phases)
    hessian_at: tuple[int, ...] | None = None  # also record the Hessian (sim.hessian) there
    hessian: HessianSettings | None = None  # the settings of those analyses (None: defaults)
    out: Path | None = None  # run directory; default runs/train-<time> (chosen by prepare)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        """As :meth:`JsonConfig.from_json`; reads the ``hessian_settings`` string that runs
        before the typed ``hessian`` field stored."""
        if isinstance(obj, dict) and isinstance(obj.get("hessian_settings"), str):
            obj = {**obj, "hessian": parse_settings(obj["hessian_settings"]).to_json()}
        return super().from_json(obj)

    def validated(self) -> TrainConfig:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one.

        Pure: it looks at the values only — the run directory (new, or resumable) and a
        dataset path are the filesystem's, checked by :func:`sim.train.prepare` — and a
        validated copy returns itself.
        """
        if "validated" in self.marks:
            return self
        from umwelt.gates import check_temperature
        from umwelt.nn.device import resolve_device, resolve_dtype
        from umwelt.nn.gate import check_mode
        from umwelt.nn.train import get_loss

        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model must be a VGG preset or mlp:<widths>, got {self.model!r}")
        if self.dataset is None:
            raise ConfigError(
                "--dataset is required: a CIFAR-10 path (the paper's data), digits, or a "
                "synthetic family such as teacher:n=1000"
            )
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError(f"dataset must be a name, a spec or a path, got {self.dataset!r}")
        if self.classes is not None and (not isinstance(self.classes, str) or not self.classes):
            raise ConfigError(f"classes must be 'a,b' or a grouping name, got {self.classes!r}")
        subset = None if self.subset is None else check_int("subset", self.subset, 2)
        subset_test = (
            None if self.subset_test is None else check_int("subset test", self.subset_test, 2)
        )
        noise = self.label_noise
        if noise is not None:
            noise = check_fraction("label noise", noise, closed_above=True)
        seed = check_int("seed", self.seed, 0)
        epochs = check_int("epochs", self.epochs, 0)
        # --hessian-at epochs are observed too (their checkpoints model_epoch_XXXX.pt must exist)
        hessian = (
            ()
            if self.hessian_at is None
            else _observe_epochs(self.hessian_at, epochs, "hessian-at")
        )
        settings = self.hessian
        if settings is not None:
            if not isinstance(settings, HessianSettings):
                raise ConfigError(
                    f"hessian must be HessianSettings (the CLI parses --hessian-settings into "
                    f"them), got {settings!r}"
                )
            if self.hessian_at is None:
                raise ConfigError("--hessian-settings needs --hessian-at (the epochs to analyse)")
            settings = settings.validated()
        check_mode(self.gate_mode)
        get_loss(self.loss)
        resolve_device(self.device)
        resolve_dtype(self.dtype)
        return replace(
            self,
            model=self.model.strip(),
            dataset=self.dataset.strip(),
            width=check_positive("width", self.width),
            subset=subset,
            subset_test=subset_test,
            label_noise=noise,
            temperature=check_temperature(check_real("temperature", self.temperature)),
            epochs=epochs,
            lr=check_positive("learning rate", self.lr),
            momentum=check_fraction("momentum", self.momentum),
            batch_size=check_int("batch size", self.batch_size),
            gain=check_positive("gain", self.gain),
            seed=seed,
            observe_at=tuple(sorted(set(_observe_epochs(self.observe_at, epochs)) | set(hessian))),
            hessian_at=hessian,
            hessian=settings,
            checkpoint_every=check_int("checkpoint every", self.checkpoint_every, 0),
            eval_batch_size=check_int("eval batch size", self.eval_batch_size),
            stop_at_zero_loss=_check_bool("stop at zero loss", self.stop_at_zero_loss),
            stop_at_phase=_check_stop_phase(self.stop_at_phase),
            out=check_path("out", self.out),
        ).marked("validated")


def _check_bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool | np.bool_):
        raise ConfigError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def _observe_epochs(at: Any, epochs: int, what: str = "observe-at") -> tuple[int, ...]:
    """The sorted observation epochs: given ones (each in ``[0, epochs]``) or the default.

    ``at`` is a sequence of epochs (the CLI parses ``--observe-at 0,10,20`` into one); text is
    refused, not parsed.
    """
    if at is None:
        return tuple(sorted({e for e in PAPER_OBSERVE_AT if e <= epochs} | {epochs}))
    if isinstance(at, str | bytes) or not hasattr(at, "__iter__"):
        raise ConfigError(f"{what} must be a list of epochs, got {at!r}")
    at = list(at)
    for e in at:
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or not 0 <= e <= epochs:
            raise ConfigError(f"{what} epoch {e!r} is outside the run's epochs 0..{epochs}")
    return tuple(sorted({int(e) for e in at}))


def resolve_dataset(spec: str) -> str:
    """``spec``, or the absolute path it names when it is an existing path and not a dataset
    family (``digits``, ``teacher:...``), so that a run resumes from anywhere. Reads the
    filesystem (only ``exists``)."""
    from umwelt.data import DATASETS

    spec = spec.strip()
    if spec.partition(":")[0].strip() in DATASETS:
        return spec
    try:
        if Path(spec).expanduser().exists():
            return str(Path(spec).expanduser().resolve())
    except OSError:  # a name too long, a loop of links: the loader names it
        pass
    return spec


#: the phases a run may stop at
STOP_PHASES: tuple[str, ...] = ("converged", "frustration")


def _check_stop_phase(phase) -> str | None:
    if phase is not None and phase not in STOP_PHASES:
        raise ConfigError(f"stop-at-phase must be one of {', '.join(STOP_PHASES)}, got {phase!r}")
    return phase


#: what a train run directory may hold before its first resumable checkpoint
_EARLY_ENTRIES = frozenset(
    {"config.json", "metrics.jsonl", "summary.json", "observations", "checkpoints", "figures",
     "hessian", ".lock"}
)  # fmt: skip


def restartable(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a train run that stopped before its first resumable checkpoint
    (``checkpoints/last.pt``): nothing in it can be continued, so a new run may start in its
    place. It must hold a train ``config.json``, nothing but a run's entries, and no live lock.
    """
    from sim.runs.lock import is_held

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or (run_dir / "checkpoints" / CHECKPOINT).exists():
        return False
    if any(p.name not in _EARLY_ENTRIES for p in run_dir.iterdir()) or is_held(run_dir):
        return False
    try:
        stored = io_json(run_dir / "config.json")
    except Exception:
        return False
    return isinstance(stored, dict) and {"model", "dataset"} <= stored.keys()


def clear_early_run(run_dir: Path) -> None:
    """Remove what a run that never reached its first checkpoint left (see :func:`restartable`)."""
    import shutil

    for p in Path(run_dir).iterdir():
        if p.name in _EARLY_ENTRIES and p.name != ".lock":
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def check_resumable(run_dir: Path) -> None:
    """That ``run_dir`` holds a train run with its resumable checkpoint (reads only)."""
    run_dir = io.check_lookup(run_dir, "--resume")
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {str(run_dir)!r}: no such run directory")
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"--resume {str(run_dir)!r}: no config.json; is it a train run?")
    try:
        stored = io_json(run_dir / "config.json")
    except ConfigError as e:
        raise ConfigError(f"--resume {str(run_dir)!r}: {e}") from None
    if not (isinstance(stored, dict) and {"model", "dataset"} <= stored.keys()):
        what = (
            "a simulate run; only umwelt train runs resume"
            if isinstance(stored, dict) and "widths" in stored
            else "not a train run: its config.json names no model and dataset"
        )
        raise ConfigError(f"--resume {str(run_dir)!r} is {what}")
    if not (run_dir / "checkpoints" / CHECKPOINT).is_file():
        raise ConfigError(
            f"--resume {str(run_dir)!r}: no checkpoint (checkpoints/{CHECKPOINT}); the run "
            "stopped before its first one: start it again in place with --out (same directory)"
        )


def build_model(cfg: TrainConfig, input_shape: tuple[int, ...], *, device, dtype):
    """The run's model with its seeded initial weights, as ``umwelt train`` builds it."""
    from umwelt.nn.models import build_model as build

    return build(
        cfg.model,
        input_shape=input_shape,
        temperature=cfg.temperature,
        mode=cfg.gate_mode,
        width=cfg.width,
        gain=cfg.gain,
        seed=cfg.seed,
        dtype=dtype,
        device=device,
    )


def load_data(cfg: TrainConfig):
    """The dataset of ``cfg`` exactly as ``umwelt train`` loads it (classes, subsets, label
    noise, seed); a damaged file becomes a :class:`~umwelt.errors.DataError` naming it."""
    from umwelt.data import load_dataset
    from umwelt.errors import DataError, UmweltError

    kwargs: dict[str, Any] = {"seed": cfg.seed}
    for key in ("classes", "subset", "subset_test", "label_noise"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    try:
        return load_dataset(cfg.dataset, **kwargs)
    except UmweltError:
        raise
    except (OSError, EOFError, ValueError) as e:  # a damaged file the loader did not name
        raise DataError(f"cannot read dataset {cfg.dataset!r}: {e}") from e


def fingerprint(data) -> str:
    """SHA-256 of the arrays a run trains and tests on (a resumed run must see the same)."""
    import hashlib

    h = hashlib.sha256()
    for a in (data.X_train, data.y_train, data.X_test, data.y_test):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def write_observation(path: Path, obs: dict[str, np.ndarray]) -> Path:
    """Write one observed epoch's arrays (:func:`umwelt.nn.observables.observe`) as a
    compressed ``.npz``, atomically; :meth:`sim.runs.Run.observations` reads them back."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **obs)

    return io.atomic_write(path, write)
