r"""``umwelt train``: the paper's experiment at any scale — a gated net trained by generalized EM
on a binary task, recording the symmetries, resumable, data-parallel (THEORY.md §2, §4, §6).

One minibatch is one EM iteration (THEORY.md §2): the forward pass in the gate mode ``sample``
draws every gate :math:`h \sim \mathrm{Bern}(\sigma(z/T))` (E-step), the backward pass holds the
gates fixed and SGD with momentum moves the weights (M-step). At :math:`T = 0` (the paper's
setting), or in gate mode ``relu``, this is plain SGD on the ReLU network; ``mean`` trains the
mean-field net :math:`z\,\sigma(z/T)`.

**Randomness.** One seed; :func:`seeds` derives independent streams with
``numpy.random.SeedSequence``: the *data order* (one CPU generator, shared by all processes),
the *gate noise* of training and the *evaluation* draws (one pair per process rank). Process 0
of any run uses the same gate-noise and evaluation streams as a single-process run; rank
:math:`r > 0` uses its own (seeded from ``(seed, r)``), so at :math:`T > 0` a run over several
processes draws other gates than a single-process run (its data order and its arithmetic are
the same). At :math:`T = 0` nothing is drawn and the runs agree to rounding.

**Per epoch** (``metrics.jsonl``; epoch 0 is the initialization) from full passes over the data
(:mod:`sim.observe`): ``loss`` and ``train_acc`` (the risk and accuracy on the whole training
set, gates in the training mode, one evaluation draw per example), ``test_loss``/``test_acc``,
``epoch_loss`` (the mean of the minibatch losses seen during the epoch, each before its step),
``order_parameter`` :math:`=\eta\|\nabla_\theta R\|^2` (eq. 15, the full-training-set gradient
of the same pass) and ``grad_norm`` :math:`\|\nabla_\theta R\|`, ``steps``, ``wall_s`` (since the
run started) and ``timing`` (seconds spent training, measuring and observing in this epoch). At the
epochs ``observe_at`` also ``observations/epoch_XXXX.npz`` (weight and gradient histograms,
symmetry statistics, gate entropy and agreement, within-layer correlation spectra; see
:mod:`sim.observe`) and the weights ``checkpoints/model_epoch_XXXX.pt``.
At the epochs ``hessian_at`` (which join ``observe_at``) also the Hessian analysis of
:mod:`sim.hessian` into ``hessian/``, right after that epoch's checkpoint is written.

**Nothing lost.** ``checkpoints/last.pt`` holds everything a run needs to continue: model,
optimizer (momentum buffers), the state of every generator (data order; gate noise and
evaluation of every rank, :class:`umwelt.nn.GateNoise` sources; torch's default CPU and CUDA
generators), the current epoch's order
and position in it, the running epoch loss, the metric rows so far and the wall time. It is
written atomically at the end of every epoch and, with ``checkpoint_every = K``, after every
``K``-th step of an epoch, and loads with ``torch.load(..., weights_only=True)``. ``run(cfg,
resume=True)`` (``umwelt train --resume RUN``) continues from it; on the CPU the resumed run's
metrics and weights equal those of an uninterrupted run exactly.

**Processes.** Under ``torchrun`` each rank takes its slice of every global minibatch and the
gradients are all-reduced (:mod:`sim.distributed`); only rank 0 writes.

The run directory::

    config.json          every setting, the derived seeds, dataset facts, layers, versions
    metrics.jsonl        one row per epoch
    summary.json         the last row, status, first epochs of zero training error and loss
    observations/        epoch_XXXX.npz at the observed epochs
    checkpoints/         last.pt (resumable state), model_epoch_XXXX.pt (state dicts)
    figures/             written by ``umwelt plot RUN`` (and at the end of a run)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim import runio
from umwelt._checks import check_fraction, check_int, check_positive
from umwelt.errors import ConfigError

__all__ = [
    "PAPER_OBSERVE_AT",
    "TrainConfig",
    "TrainResult",
    "build_run_model",
    "load_run_inputs",
    "resume_config",
    "run",
    "seeds",
]

#: The epochs of the paper's fig. 3a, the default observation epochs (clipped to the run).
PAPER_OBSERVE_AT: tuple[int, ...] = (0, 10, 20, 30, 40, 100, 160, 200, 260, 300)
CHECKPOINT = "last.pt"
_FORMAT = 2  # 2: gate noise and evaluation draws from umwelt.nn.GateNoise


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; :meth:`validated` checks them all before anything runs."""

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
    hessian_at: tuple[int, ...] | None = None  # also record the Hessian (sim.hessian) there
    hessian_settings: str | None = None  # its settings, "KEY=VALUE,..." (None: the defaults)
    out: Path | None = None  # run directory; default runs/train-<time>

    def validated(self, *, resume: bool = False) -> TrainConfig:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one.

        Args:
            resume: ``out`` must then be a run directory with a checkpoint; otherwise it must
                be new or empty. Nothing is created either way.
        """
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
            try:
                noise = float(noise)
            except (TypeError, ValueError):
                noise = math.nan
            if not 0.0 <= noise <= 1.0:
                raise ConfigError(f"label noise must be in [0, 1], got {self.label_noise!r}")
        seed = check_int("seed", self.seed, 0)
        epochs = check_int("epochs", self.epochs, 0)
        # --hessian-at epochs are observed too (their checkpoints model_epoch_XXXX.pt must exist)
        hessian = (
            ()
            if self.hessian_at is None
            else _observe_epochs(self.hessian_at, epochs, "hessian-at")
        )
        if self.hessian_settings is not None:
            from sim.hessian import parse_settings

            if self.hessian_at is None:
                raise ConfigError("--hessian-settings needs --hessian-at (the epochs to analyse)")
            parse_settings(self.hessian_settings)
        check_mode(self.gate_mode)
        get_loss(self.loss)
        resolve_device(self.device)
        resolve_dtype(self.dtype)
        out = Path(self.out or runio.default_run_dir("train"))
        if resume:
            _check_resumable(out)
        else:
            out = runio.check_out_dir(out)
        from umwelt.data import DATASETS

        dataset = self.dataset.strip()
        if (
            dataset.partition(":")[0].strip() not in DATASETS
            and Path(dataset).expanduser().exists()
        ):
            dataset = str(Path(dataset).expanduser().resolve())  # resumable from anywhere
        return replace(
            self,
            model=self.model.strip(),
            dataset=dataset,
            width=check_positive("width", self.width),
            subset=subset,
            subset_test=subset_test,
            label_noise=noise,
            temperature=check_temperature(self.temperature),
            epochs=epochs,
            lr=check_positive("learning rate", self.lr),
            momentum=check_fraction("momentum", self.momentum),
            batch_size=check_int("batch size", self.batch_size),
            gain=check_positive("gain", self.gain),
            seed=seed,
            observe_at=tuple(sorted(set(_observe_epochs(self.observe_at, epochs)) | set(hessian))),
            hessian_at=hessian,
            checkpoint_every=check_int("checkpoint every", self.checkpoint_every, 0),
            eval_batch_size=check_int("eval batch size", self.eval_batch_size),
            out=out,
        )


def _observe_epochs(at: Any, epochs: int, what: str = "observe-at") -> tuple[int, ...]:
    """The sorted observation epochs: given ones (each in ``[0, epochs]``) or the default."""
    if at is None:
        return tuple(sorted({e for e in PAPER_OBSERVE_AT if e <= epochs} | {epochs}))
    if isinstance(at, str):
        items = [s.strip() for s in at.split(",")] if at.strip() else []
        try:
            at = [int(s) for s in items]
        except ValueError:
            raise ConfigError(f"{what} must be comma-separated epochs, got {at!r}") from None
    try:
        at = list(at)
    except TypeError:
        raise ConfigError(f"{what} must be a list of epochs, got {at!r}") from None
    for e in at:
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or not 0 <= e <= epochs:
            raise ConfigError(f"{what} epoch {e!r} is outside the run's epochs 0..{epochs}")
    return tuple(sorted({int(e) for e in at}))


def _check_resumable(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {str(run_dir)!r}: no such run directory")
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"--resume {str(run_dir)!r}: no config.json; is it a train run?")
    if not (run_dir / "checkpoints" / CHECKPOINT).is_file():
        raise ConfigError(
            f"--resume {str(run_dir)!r}: no checkpoint (checkpoints/{CHECKPOINT}); the run "
            "stopped before its first one, start it again"
        )


def _config_from_json(stored: dict) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    kw = {k: v for k, v in stored.items() if k in names}
    if isinstance(kw.get("temperature"), str):
        kw["temperature"] = float(kw["temperature"])  # "inf" as JSON writes it
    for key in ("observe_at", "hessian_at"):
        if kw.get(key) is not None:
            kw[key] = tuple(kw[key])
    if kw.get("out") is not None:
        kw["out"] = Path(kw["out"])
    return TrainConfig(**kw)


def resume_config(run_dir: Path | str, given: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of the run in ``run_dir``, checked against options given again.

    Args:
        run_dir: the run directory to resume.
        given: options passed now (``{field: value}``, unset ones left out). Each must equal
            the run's own (after normalization); ``out``, if given, must be ``run_dir``.

    Returns:
        the run's validated :class:`TrainConfig` with ``out = run_dir``.

    Raises:
        ConfigError: when ``run_dir`` is not a resumable run, or naming the first option whose
            value differs from the run's ``config.json``.
    """
    run_dir = Path(run_dir)
    _check_resumable(run_dir)
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        base = replace(_config_from_json(stored), out=run_dir)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--resume {str(run_dir)!r}: unreadable config.json ({e})") from None
    base = base.validated(resume=True)
    for key, value in (given or {}).items():
        if key == "out":
            if value is not None and Path(value).resolve() != run_dir.resolve():
                raise ConfigError(
                    f"--out {str(value)!r} differs from --resume {str(run_dir)!r}; give one"
                )
            continue
        if key not in {f.name for f in fields(TrainConfig)}:
            raise ConfigError(f"unknown option {key!r}")
        new = getattr(replace(base, **{key: value}).validated(resume=True), key)
        old = getattr(base, key)
        if new != old:
            raise ConfigError(
                f"--resume {str(run_dir)!r}: {key} = {new!r} differs from the run's "
                f"{key} = {old!r} (config.json); resume with the run's settings or start a new run"
            )
    return base


def seeds(seed: int, rank: int = 0) -> dict[str, int]:
    """Independent seeds: the shared data order, and gate noise and evaluation of ``rank``.

    >>> s0, s1 = seeds(0, 0), seeds(0, 1)
    >>> s0["data_order"] == s1["data_order"], s0["gate_noise"] == s1["gate_noise"]
    (True, False)
    """
    data_order = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    per_rank = np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(2, dtype=np.uint64)
    return {
        "data_order": int(data_order >> 1),
        "gate_noise": int(per_rank[0] >> 1),
        "evaluation": int(per_rank[1] >> 1),
    }


@dataclass
class TrainResult:
    """What a run produced: its directory, the metric rows and the summary."""

    run_dir: Path
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def load_run_inputs(run_dir: Path | str) -> tuple[TrainConfig, Any]:
    """The settings and the data of the train run in ``run_dir``, rebuilt from its
    ``config.json`` exactly as the run built them (dataset spec, classes, subsets, label noise,
    seed); with :func:`build_run_model` and a checkpoint, the run's model at any observed epoch.

    Raises:
        ConfigError: for a directory without a readable train ``config.json``, or data whose
            SHA-256 differs from the run's (the dataset file changed since).
    """
    run_dir = Path(run_dir)
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        cfg = replace(_config_from_json(stored), out=run_dir)
    except FileNotFoundError:
        raise ConfigError(f"{str(run_dir)!r} is not a run directory: no config.json") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{str(run_dir)!r}: unreadable config.json ({e})") from None
    data = _load_data(cfg)
    sha = stored.get("data_sha256")
    if sha is not None and sha != _fingerprint(data):
        raise ConfigError(
            f"{str(run_dir)!r}: the dataset {cfg.dataset!r} now has other contents than when the "
            f"run started (sha256 {_fingerprint(data)[:12]}… vs {str(sha)[:12]}…)"
        )
    return cfg, data


def build_run_model(cfg: TrainConfig, input_shape: tuple[int, ...], *, device, dtype):
    """The run's model with its seeded initial weights, as ``umwelt train`` builds it."""
    from umwelt.nn.models import build_model

    return build_model(
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


def _load_data(cfg: TrainConfig):
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


def _fingerprint(data) -> str:
    """SHA-256 of the arrays a run trains and tests on (a resumed run must see the same)."""
    import hashlib

    h = hashlib.sha256()
    for a in (data.X_train, data.y_train, data.X_test, data.y_test):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _first(rows: list[dict], ok: Callable[[dict], bool]) -> int | None:
    return next((r["epoch"] for r in rows if ok(r)), None)


class _Trainer:
    """The state of one run in one process (rank); :func:`run` drives it."""

    def __init__(self, cfg: TrainConfig, world, device_name: str, *, resume: bool):
        import torch

        from umwelt.nn.device import resolve_device, resolve_dtype
        from umwelt.nn.models import count_parameters
        from umwelt.nn.noise import GateNoise
        from umwelt.nn.train import get_loss, make_optimizer

        self.cfg, self.world, self.resume = cfg, world, resume
        self.run_dir = Path(cfg.out)
        data = _load_data(cfg)
        self.device = resolve_device(device_name)
        self.dtype = resolve_dtype(cfg.dtype)
        self.model = build_run_model(cfg, data.input_shape, device=self.device, dtype=self.dtype)
        from sim.observe import weight_layers

        self.layers = weight_layers(self.model)
        layer_ids = {id(m.weight) for _, m in self.layers}
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.layer_param_index = [
            next(i for i, p in enumerate(self.params) if p is m.weight) for _, m in self.layers
        ]
        if len(layer_ids) != len(self.layers):
            raise ConfigError("the model shares weights between layers; cannot observe it")
        # The fixed unit of the weight histograms: each layer's RMS weight at initialization.
        self.weight_units = np.array(
            [float(m.weight.detach().double().pow(2).mean().sqrt()) for _, m in self.layers]
        )
        self.n_parameters = count_parameters(self.model)
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.momentum)
        self.loss_fn = get_loss(cfg.loss)
        self.seeds = seeds(cfg.seed, world.rank)
        self.order_gen = torch.Generator().manual_seed(self.seeds["data_order"])
        self.noise_gen = GateNoise(self.seeds["gate_noise"], self.device)
        self.eval_gen = GateNoise(self.seeds["evaluation"], self.device)
        self.model.set_generator(self.noise_gen)

        def tensor(a, dtype=self.dtype):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=self.device)

        self.Xtr, self.ytr = tensor(data.X_train), tensor(data.y_train)
        self.Xte, self.yte = tensor(data.X_test), tensor(data.y_test)
        self.n = data.n_train
        self.data_info = {
            "dataset_info": data.info,
            "n_train": data.n_train,
            "n_test": data.n_test,
            "input_shape": list(data.input_shape),
            "data_sha256": _fingerprint(data),
        }
        self.rows: list[dict] = []
        self.epoch = -1  # last epoch whose row exists
        self.in_epoch: dict | None = None  # order, pos, step, loss_sum of an unfinished epoch
        self.wall_offset = 0.0
        self.t0 = time.perf_counter()

    # -- files ------------------------------------------------------------------------------------

    def config_record(self) -> dict:
        return {
            **asdict(self.cfg),
            "world_size": self.world.size,
            "seeds": {"rank_0": seeds(self.cfg.seed, 0), "per_rank": "seeds(seed, rank)"},
            **self.data_info,
            "n_parameters": self.n_parameters,
            "layers": [
                {"name": n, "shape": list(m.weight.shape), "init_rms": float(u)}
                for (n, m), u in zip(self.layers, self.weight_units, strict=True)
            ],
            "versions": runio.versions(),
        }

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t0

    def _rng_states(self) -> dict:
        """Every generator's state; per-rank ones gathered from all ranks (a collective)."""
        import torch

        from sim.distributed import all_gather_bytes

        w, dev = self.world, str(self.device)
        states = {
            "data_order": self.order_gen.get_state(),
            "gate_noise": all_gather_bytes(self.noise_gen.get_state(), w, dev),
            "evaluation": all_gather_bytes(self.eval_gen.get_state(), w, dev),
            "torch_cpu": all_gather_bytes(torch.get_rng_state(), w, dev),
            "torch_cuda": None,
        }
        if self.device.type == "cuda":
            states["torch_cuda"] = all_gather_bytes(torch.cuda.get_rng_state(self.device), w, dev)
        return states

    def save_checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (all ranks call it; rank 0 writes)."""
        import torch

        rng = self._rng_states()
        if not self.world.is_main:
            return
        in_epoch = None
        if self.in_epoch is not None:
            in_epoch = {
                "order": self.in_epoch["order"].cpu(),
                "pos": self.in_epoch["pos"],
                "step": self.in_epoch["step"],
                "loss_sum": self.in_epoch["loss_sum"].cpu(),
            }
        state = {
            "format": _FORMAT,
            "epoch": self.epoch,
            "in_epoch": in_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "metrics": json.dumps(runio.to_jsonable(self.rows)),
            "wall_s": self.wall(),
            "world_size": self.world.size,
        }
        runio.atomic_write(
            self.run_dir / "checkpoints" / CHECKPOINT, lambda p: torch.save(state, p)
        )

    def load_checkpoint(self) -> None:
        import torch

        path = self.run_dir / "checkpoints" / CHECKPOINT
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file: say so in one line
            raise ConfigError(f"cannot read checkpoint {str(path)!r}: {e}") from None
        if not isinstance(ck, dict) or ck.get("format") != _FORMAT:
            raise ConfigError(f"{str(path)!r} is not a train checkpoint of format {_FORMAT}")
        noisy = self.cfg.gate_mode == "sample" and self.cfg.temperature > 0
        if ck["world_size"] != self.world.size and noisy:
            raise ConfigError(
                f"--resume: the run used {ck['world_size']} processes and this is "
                f"{self.world.size}; at T > 0 the per-rank gate noise cannot be continued"
            )
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        rng = ck["rng"]
        r = self.world.rank if self.world.rank < len(rng["gate_noise"]) else None
        self.order_gen.set_state(rng["data_order"])
        if r is not None:
            self.noise_gen.set_state(rng["gate_noise"][r])
            self.eval_gen.set_state(rng["evaluation"][r])
            torch.set_rng_state(rng["torch_cpu"][r])
            if self.device.type == "cuda" and rng["torch_cuda"] is not None:
                torch.cuda.set_rng_state(rng["torch_cuda"][r], self.device)
        self.epoch = ck["epoch"]
        self.rows = json.loads(ck["metrics"])
        self.wall_offset = ck["wall_s"]
        self.t0 = time.perf_counter()
        if ck["in_epoch"] is not None:
            ie = ck["in_epoch"]
            self.in_epoch = {
                "order": ie["order"].to(self.device),
                "pos": ie["pos"],
                "step": ie["step"],
                "loss_sum": ie["loss_sum"].to(self.device),
            }

    # -- training ---------------------------------------------------------------------------------

    def train_epoch(self, on_step) -> float:
        """Finish the current epoch's steps (from a checkpoint's position if resuming)."""
        import torch

        from sim.distributed import all_reduce_sum, shard
        from umwelt.nn.train import epoch_order

        cfg, B, n = self.cfg, self.cfg.batch_size, self.n
        if self.in_epoch is None:
            self.in_epoch = {
                "order": epoch_order(n, self.order_gen).to(self.device),
                "pos": 0,
                "step": 0,
                "loss_sum": torch.zeros((), dtype=torch.float64, device=self.device),
            }
        ie = self.in_epoch
        steps = math.ceil(n / B)
        self.model.train()
        while ie["pos"] < n:
            idx = ie["order"][ie["pos"] : ie["pos"] + B]  # the global minibatch (B,)
            local = shard(idx, self.world)  # this rank's slice (b_r,)
            self.optimizer.zero_grad(set_to_none=True)
            if local.numel():
                f = self.model(self.Xtr[local])  # (b_r,) E-step: gates drawn
                batch_loss = self.loss_fn(f, self.ytr[local]) * (local.numel() / idx.numel())
                batch_loss.backward()  # M-step gradient, gates held fixed
                loss_t = batch_loss.detach().double().reshape(1)
            else:
                loss_t = torch.zeros(1, dtype=torch.float64, device=self.device)
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            all_reduce_sum([*(p.grad for p in self.params), loss_t], self.world)
            self.optimizer.step()
            ie["loss_sum"] += loss_t[0] * idx.numel()
            ie["pos"] += idx.numel()
            ie["step"] += 1
            if cfg.checkpoint_every and ie["step"] % cfg.checkpoint_every == 0 and ie["pos"] < n:
                self.save_checkpoint()
            if on_step is not None:
                on_step(
                    {
                        "epoch": self.epoch + 1,
                        "step": ie["step"],
                        "steps": steps,
                        "loss": float(loss_t[0]),
                    }
                )
        epoch_loss = ie["loss_sum"].item() / n
        return epoch_loss

    # -- measuring --------------------------------------------------------------------------------

    def measure(self, epoch: int, epoch_loss: float | None) -> tuple[dict, list]:
        from sim.observe import evaluate, full_gradient, using_generator

        kw = {"loss_fn": self.loss_fn, "batch_size": self.cfg.eval_batch_size, "world": self.world}
        with using_generator(self.model, self.eval_gen):
            grads, tr = full_gradient(self.model, self.Xtr, self.ytr, **kw)
            te = evaluate(self.model, self.Xte, self.yte, **kw)
        row = {
            "epoch": epoch,
            "loss": tr["loss"],
            "train_acc": tr["acc"],
            "test_loss": te["loss"],
            "test_acc": te["acc"],
            "epoch_loss": epoch_loss,
            "order_parameter": self.cfg.lr * tr["grad_sq"],
            "grad_norm": math.sqrt(tr["grad_sq"]),
            "steps": epoch * math.ceil(self.n / self.cfg.batch_size),
        }
        return row, grads

    def observe(self, epoch: int, row: dict, grads: list) -> None:
        import torch

        from sim.observe import gate_statistics, observe, save_observation, using_generator

        with using_generator(self.model, self.eval_gen):
            gates = gate_statistics(
                self.model, self.Xtr, batch_size=self.cfg.eval_batch_size, world=self.world
            )
        if not self.world.is_main:
            return
        layer_grads = [grads[i] for i in self.layer_param_index]
        scalars = {k: row[k] for k in ("loss", "train_acc", "test_acc", "order_parameter")}
        obs = observe(epoch, self.model, layer_grads, self.weight_units, gates, scalars)
        save_observation(self.run_dir / "observations" / f"epoch_{epoch:04d}.npz", obs)
        state = self.model.state_dict()
        runio.atomic_write(
            self.run_dir / "checkpoints" / f"model_epoch_{epoch:04d}.pt",
            lambda p: torch.save(state, p),
        )

    def summary(self, status: str) -> dict:
        rows = self.rows
        return {
            **(rows[-1] if rows else {}),
            "status": status,
            "first_zero_train_error_epoch": _first(rows, lambda r: r["train_acc"] == 1.0),
            "first_zero_loss_epoch": _first(rows, lambda r: r["loss"] == 0.0),
            "best_test_acc": max((r["test_acc"] for r in rows), default=None),
            "temperature": self.cfg.temperature,
            "n_parameters": self.n_parameters,
            "world_size": self.world.size,
            "total_wall_s": self.wall(),
        }


def run(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    figures: bool = True,
) -> TrainResult:
    """Train, measure and observe; write (or continue) the run directory.

    Args:
        cfg: the settings; validated here before anything is created. For ``resume``, build
            it with :func:`resume_config`.
        resume: continue the run in ``cfg.out`` from its last checkpoint.
        on_epoch: called with each metrics row (on every rank) as soon as it exists.
        on_step: called after every optimizer step with ``{epoch, step, steps, loss}``, after
            the step's checkpoint (if any) was written; an exception it raises stops the run
            there, as a crash would (no checkpoint is written on the way out).
        figures: write the figures of :mod:`sim.plot` at the end (rank 0).

    Returns:
        the run directory, all rows (those of earlier sessions too) and the summary.

    Raises:
        UmweltError: for a bad setting, model or dataset (before the run directory exists), a
            run that cannot be resumed, or a resume directory whose configuration differs.
    """
    from sim import distributed

    cfg = cfg.validated(resume=resume)
    world, device_name = distributed.setup(cfg.device)
    completed = False
    try:
        result = _run(cfg, world, device_name, resume, on_epoch, on_step, figures)
        completed = True
        return result
    finally:
        distributed.teardown(world, completed=completed)


def _run(cfg, world, device_name, resume, on_epoch, on_step, figures) -> TrainResult:
    tr = _Trainer(cfg, world, device_name, resume=resume)
    run_dir = tr.run_dir
    if resume:
        stored = json.loads((run_dir / "config.json").read_text()).get("data_sha256")
        if stored != tr.data_info["data_sha256"]:
            raise ConfigError(
                f"--resume {str(run_dir)!r}: the dataset {cfg.dataset!r} now has other contents "
                f"than when the run started (sha256 {tr.data_info['data_sha256'][:12]}… vs "
                f"{str(stored)[:12]}…)"
            )
        tr.load_checkpoint()
        if world.distributed:
            import torch.distributed as dist

            dist.barrier()  # every rank has read last.pt before rank 0 may replace it
    elif world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        runio.write_json(run_dir / "config.json", tr.config_record())
    result = TrainResult(run_dir=run_dir, metrics=tr.rows)
    if world.is_main and resume:
        runio.write_jsonl(run_dir / "metrics.jsonl", tr.rows)  # drop rows past the checkpoint
    status = "completed"
    try:
        for epoch in range(tr.epoch + 1, cfg.epochs + 1):
            t = [time.perf_counter()]
            epoch_loss = tr.train_epoch(on_step) if epoch > 0 else None
            t.append(time.perf_counter())
            row, grads = tr.measure(epoch, epoch_loss)
            t.append(time.perf_counter())
            converged = cfg.stop_at_zero_loss and row["loss"] == 0.0
            if epoch in cfg.observe_at or converged:
                tr.observe(epoch, row, grads)
                if epoch in cfg.hessian_at:  # after its checkpoint model_epoch_XXXX.pt exists
                    from sim.hessian import record_epoch

                    record_epoch(
                        run_dir,
                        epoch,
                        settings=cfg.hessian_settings,
                        world=world,
                        device=str(tr.device),
                    )
            t.append(time.perf_counter())
            del grads
            row["wall_s"] = tr.wall()
            row["timing"] = {  # seconds of this session's epoch (an unfinished one: its rest)
                "train_s": t[1] - t[0],
                "measure_s": t[2] - t[1],
                "observe_s": t[3] - t[2],
            }
            tr.rows.append(row)
            tr.epoch, tr.in_epoch = epoch, None
            if world.is_main:
                runio.write_jsonl(run_dir / "metrics.jsonl", tr.rows)
            tr.save_checkpoint()
            if on_epoch is not None:
                on_epoch(row)
            if not (math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"])):
                status = f"diverged at epoch {epoch} (non-finite loss or gradient); lower --lr"
                break
            if converged:
                status = f"converged at epoch {epoch} (zero training risk)"
                break
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {e!r}"
        raise
    finally:
        if world.is_main and tr.rows:
            result.summary = tr.summary(status)
            runio.write_json(run_dir / "summary.json", result.summary)
            if figures and status.startswith(("completed", "converged", "diverged")):
                from sim.plot import make_figures

                make_figures(run_dir)
    return result
