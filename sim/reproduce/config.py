r"""Every setting of a reproduction (``umwelt reproduce OUT --scale cpu|gpu [--quick]``), in one
frozen dataclass, :class:`ReproduceConfig`.

A reproduction runs the paper's experiment (THEORY.md §6: a bias-free VGG with ReLU gates,
hinge loss, two CIFAR-10 classes) at a **scale**, a preset of :data:`PRESETS`:

* ``cpu`` — ``vgg12`` at width 1/8 (N = 151,256 weights) on 4,000 cat and dog images, SGD
  with a step fitted to that width, stopped at zero training risk, observed and its Hessian
  analysed at the paper's epochs up to 160, sized to about 2 hours on 2 shared cores (an epoch
  of training and measuring ~5 s, a Hessian epoch ~5 min, the circuits ~2 min);
* ``gpu`` — the paper's scale: ``vgg12`` at width 1 (N = 9,664,704), all 10,000 training
  images of the two classes, 300 epochs, the Hessian at the paper's ten epochs;
* ``--quick`` — a tiny MLP on a synthetic teacher task (or on 256 images of a CIFAR-10 path
  given), every step of the pipeline in well under a minute on one core (CI runs it); with
  ``scale = "gpu"`` on the GPU.

A field left ``None`` takes its scale's value (:meth:`ReproduceConfig.validated` fills it in),
so a validated config names every setting, and is what ``OUT/reproduce.json`` stores: a rerun
into the same ``OUT`` must validate to the same settings. The supplement with the paper's
optimizer settings (its supp. H B) is not available: step size, momentum, batch size and the
He initialization are this project's choices, recorded with the rest.

>>> cfg = ReproduceConfig(out="out", quick=True).validated()
>>> cfg.model, cfg.dataset, cfg.device, cfg.train_config().out.as_posix()
('mlp:32,32', 'teacher:n=256,dim=16,n_test=64', 'cpu', 'out/train')
>>> ReproduceConfig(out="out", scale="tpu").validated()
Traceback (most recent call last):
umwelt.errors.ConfigError: scale must be one of cpu, gpu, got 'tpu'
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sim.runs.codec import JsonConfig, check_path
from sim.runs.hessian import HessianSettings
from sim.runs.train import PAPER_OBSERVE_AT, TrainConfig
from umwelt._checks import check_int
from umwelt.errors import ConfigError

__all__ = ["PRESETS", "QUICK", "SCALES", "ReproduceConfig", "cifar_formats", "is_family"]

#: the scales of a reproduction
SCALES: tuple[str, ...] = ("cpu", "gpu")
#: the preset of ``--quick`` (at either scale)
QUICK = "quick"

#: each scale's settings: what a field of :class:`ReproduceConfig` left ``None`` becomes
#: (``hessian``: the :class:`~sim.runs.HessianSettings` fields that differ from their defaults)
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "model": "vgg12",
        "width": 0.125,  # N = 151,256 (width 1: 9,664,704, the paper's ~10⁷)
        "classes": "cat,dog",
        "subset": 4000,  # "a few thousand" images, balanced
        "subset_test": 1000,
        "epochs": 160,  # the paper's epochs 0..160 (it stops earlier at zero risk)
        "lr": 0.003,  # at width 1/8 the default 0.01 collapses the output for several epochs
        "momentum": 0.9,
        "batch_size": 64,
        "stop_at_zero_loss": True,
        "dtype": "float32",
        # ~530 products over 2,000 examples per analysed epoch (5 min on 2 shared cores), the
        # 2,000 entries (300 uniform, the rest in 40 columns) leaving ~1,500 live ones (the
        # symmetry rule needs ≥ 503); 300 uniform ones resolve a coupling fraction of ~1e-4
        # (~40,000 pairs of live ones) where the default 100 stop at ~4e-4, the paper's value
        "hessian": {"examples": 2000, "lanczos_steps": 60, "start_vectors": 8,
                    "extreme_steps": 60, "entries": 2000, "entry_columns": 40,
                    "uniform_entries": 300},
        # a VGG's uniformly drawn circuits are 99.6 % closed: 400,000 draws leave ~1,500
        # non-zero values per order, enough to resolve a mirror distance of 0.1 (claims/rules.py)
        "circuit_samples": 400_000,
        "circuit_inputs": 4,
        "circuit_checks": 8,
    },
    "gpu": {
        "model": "vgg12",
        "width": 1.0,
        "classes": "cat,dog",
        "subset": None,  # all 10,000 training images of the two classes
        "subset_test": None,  # and all 2,000 test images
        "epochs": 300,  # the paper's
        "lr": 0.01,
        "momentum": 0.9,
        "batch_size": 128,
        "stop_at_zero_loss": False,  # the paper trains all 300 epochs
        "dtype": "float32",
        "hessian": {"examples": 2000},
        "circuit_samples": 400_000,
        "circuit_inputs": 4,
        "circuit_checks": 8,
    },
    QUICK: {
        "model": "mlp:32,32",
        "width": 1.0,
        "dataset": "teacher:n=256,dim=16,n_test=64",
        "classes": "cat,dog",  # only for a CIFAR-10 path given to --quick
        "subset": 256,  # (idem)
        "subset_test": 128,  # (idem)
        "epochs": 40,
        "lr": 0.05,
        "momentum": 0.9,
        "batch_size": 32,
        "stop_at_zero_loss": True,
        "observe_at": (0, 5, 10, 20, 30, 40),
        "hessian_at": (0, 5, 10),  # before the risk vanishes (a zero Hessian has no entries)
        "dtype": "float32",
        "hessian": {"lanczos_steps": 20, "start_vectors": 4, "extreme_steps": 20,
                    "entries": 1500, "entry_columns": 30, "bootstrap": 50, "grid_points": 201},
        "circuit_samples": 20_000,  # a 16-32-32-1 net's circuits are ~75 % closed
        "circuit_inputs": 8,
        "circuit_checks": 4,
    },
}  # fmt: skip


def is_family(dataset: str) -> bool:
    """Whether ``dataset`` names a built-in family (``digits``, ``teacher:n=...``) rather than
    a path.

    >>> is_family("teacher:n=100"), is_family("data/cifar-10-python.tar.gz")
    (True, False)
    """
    from umwelt.data import DATASETS

    return dataset.strip().partition(":")[0].strip() in DATASETS


def cifar_formats() -> str:
    """The CIFAR-10 formats a reproduction reads, as one phrase for error messages."""
    from umwelt.data import CIFAR10_FORMATS

    return "; ".join(CIFAR10_FORMATS.values())


@dataclass(frozen=True)
class ReproduceConfig(JsonConfig):
    """Every setting of ``umwelt reproduce``; the experiment's fields left ``None`` take the
    scale's (:data:`PRESETS`). :meth:`validated` checks the values (pure); the filesystem —
    ``OUT``, the dataset — is :func:`sim.reproduce.prepare`'s."""

    out: Path | None = None  # OUT: the reproduction's directory (required)
    scale: str = "cpu"  # cpu or gpu (SCALES)
    quick: bool = False  # the tiny configuration (PRESETS["quick"]) at that scale's device
    dataset: str | None = None  # a CIFAR-10 path (required for cpu and gpu; quick: any spec)
    seed: int = 0  # every draw: weights, data order, subsets, Hessian, circuits
    device: str | None = None  # None: cpu, or cuda for the gpu scale
    # -- the experiment (None: the scale's)
    model: str | None = None
    width: float | None = None
    classes: str | None = None
    subset: int | None = None  # (the gpu scale: None = every image)
    subset_test: int | None = None
    epochs: int | None = None
    lr: float | None = None
    momentum: float | None = None
    batch_size: int | None = None
    stop_at_zero_loss: bool | None = None
    dtype: str | None = None
    observe_at: tuple[int, ...] | None = None  # None: the paper's epochs up to epochs, the last
    hessian_at: tuple[int, ...] | None = None  # None: the same epochs
    hessian: HessianSettings | None = None  # None: the scale's (its seed is ``seed``)
    circuit_samples: int | None = None  # uniformly drawn circuits per order (ψ, Ω¹, Ω²)
    circuit_inputs: int | None = None  # training images the circuits are drawn at
    circuit_checks: int | None = None  # Hessian entries of f checked against autograd

    @property
    def preset(self) -> str:
        """The name of the preset the config draws from: ``quick``, ``cpu`` or ``gpu``."""
        return QUICK if self.quick else self.scale

    def validated(self) -> ReproduceConfig:
        """A copy with every field set and checked, or :class:`ConfigError` naming the first bad
        value (values only: whether ``OUT`` and the dataset exist is for
        :func:`sim.reproduce.prepare`). A validated copy returns itself.
        """
        if "validated" in self.marks:
            return self
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if not isinstance(self.quick, bool):
            raise ConfigError(f"quick must be True or False, got {self.quick!r}")
        out = check_path("OUT", self.out)
        if out is None:
            raise ConfigError("OUT is required: the directory of the reproduction")
        seed = check_int("seed", self.seed, 0)
        preset = PRESETS[self.preset]
        filled = {
            f.name: preset[f.name]
            for f in fields(self)
            if f.name in preset and f.name != "hessian" and getattr(self, f.name) is None
        }
        epochs = self.epochs if self.epochs is not None else preset["epochs"]
        for key in ("observe_at", "hessian_at"):  # a preset's epochs, clipped to the run's
            if key in filled and isinstance(epochs, int):
                filled[key] = tuple(e for e in filled[key] if e <= epochs)
        cfg = replace(self, out=out, seed=seed, **filled)
        cfg = replace(cfg, dataset=_check_dataset(cfg))
        if is_family(cfg.dataset):  # a family has no classes or subsets (CIFAR-10's)
            cfg = replace(cfg, **{k: None for k in ("classes", "subset", "subset_test")
                                  if k in filled})  # fmt: skip
        if cfg.device is None:
            cfg = replace(cfg, device="cuda" if cfg.scale == "gpu" else "cpu")
            if cfg.scale == "gpu":
                _check_cuda()
        settings = cfg.hessian
        if settings is None:
            settings = HessianSettings(**preset["hessian"], seed=seed)
        elif not isinstance(settings, HessianSettings):
            raise ConfigError(f"hessian must be HessianSettings, got {settings!r}")
        cfg = replace(cfg, hessian=settings.validated())
        train = cfg.train_config().validated()  # every training value checked, by train's rules
        cfg = replace(
            cfg,
            **{k: getattr(train, k) for k in _TRAIN_FIELDS},
            circuit_samples=check_int("circuit samples", cfg.circuit_samples, 2),
            circuit_inputs=check_int("circuit inputs", cfg.circuit_inputs, 1),
            circuit_checks=check_int("circuit checks", cfg.circuit_checks, 0),
        )
        return cfg.marked("validated")

    def train_config(self) -> TrainConfig:
        """The ``umwelt train`` run of the experiment, ``OUT/train`` (values as they are: call
        on a validated config)."""
        epochs = self.epochs
        paper = None
        if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0:
            paper = tuple(sorted({e for e in PAPER_OBSERVE_AT if e <= epochs} | {epochs}))
        return TrainConfig(
            model=self.model,
            width=self.width,
            dataset=self.dataset,
            classes=self.classes,
            subset=self.subset,
            subset_test=self.subset_test,
            temperature=0.0,  # the paper's ReLU net
            loss="hinge",  # the paper's (eq. 12)
            epochs=epochs,
            lr=self.lr,
            momentum=self.momentum,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            dtype=self.dtype,
            observe_at=self.observe_at if self.observe_at is not None else paper,
            hessian_at=self.hessian_at if self.hessian_at is not None else paper,
            hessian=self.hessian,
            stop_at_zero_loss=self.stop_at_zero_loss,
            out=None if self.out is None else Path(self.out) / "train",
        )

    def settings(self) -> dict[str, Any]:
        """The settings a rerun must match: every field but ``out``, as JSON."""
        return {k: v for k, v in self.to_json().items() if k != "out"}


def _check_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "the gpu scale runs on cuda, which is not available here; give --device cpu to run "
            "it on the CPU, or --scale cpu"
        )


#: the fields of the experiment that are :class:`~sim.runs.TrainConfig`'s (normalized by it)
_TRAIN_FIELDS = (
    "model",
    "width",
    "classes",
    "subset",
    "subset_test",
    "epochs",
    "lr",
    "momentum",
    "batch_size",
    "stop_at_zero_loss",
    "device",
    "dtype",
    "observe_at",
    "hessian_at",
)


def _check_dataset(cfg: ReproduceConfig) -> str:
    """The dataset of ``cfg`` (the quick preset's family when none is given), or
    :class:`ConfigError`: a cpu or gpu reproduction needs a CIFAR-10 path."""
    dataset = cfg.dataset
    if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
        raise ConfigError(f"dataset must be a CIFAR-10 path, got {dataset!r}")
    if cfg.quick:
        return (dataset or PRESETS[QUICK]["dataset"]).strip()
    if dataset is None:
        raise ConfigError(
            f"--dataset is required for the {cfg.scale} scale: a CIFAR-10 path in one of "
            f"these formats: {cifar_formats()} (or --quick for the tiny synthetic run)"
        )
    if is_family(dataset):
        raise ConfigError(
            f"the {cfg.scale} scale reproduces the paper's CIFAR-10 experiment: --dataset must "
            f"be a CIFAR-10 path ({cifar_formats()}), got the family {dataset!r} (it is for "
            "--quick)"
        )
    return dataset.strip()
