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

from sim.figures import make_figures
from sim.runs import io
from sim.runs.hessian import HessianSettings
from sim.runs.train import (
    CHECKPOINT,
    PAPER_OBSERVE_AT,
    TrainConfig,
    build_model,
    check_resumable,
    fingerprint,
    load_data,
    model_checkpoint,
    observation_file,
    resolve_dataset,
    write_observation,
)
from umwelt.errors import ConfigError
from umwelt.seeds import streams

__all__ = [
    "PAPER_OBSERVE_AT",
    "HessianHook",
    "HessianSettings",
    "TrainConfig",
    "TrainResult",
    "prepare",
    "resume_config",
    "run",
    "seeds",
]

_FORMAT = 2  # 2: gate noise and evaluation draws from umwelt.nn.GateNoise


def prepare(cfg: TrainConfig, *, resume: bool = False) -> TrainConfig:
    """``cfg`` validated, with the filesystem checked: the one step before a run writes.

    Validates the values (:meth:`TrainConfig.validated`, pure), then looks at the disk: ``out``
    (default ``runs/train-<time>``) must be a new or empty directory — or, for ``resume``, a
    run with its checkpoint — and a dataset path becomes absolute (the run resumes from
    anywhere). Nothing is created. :func:`run` calls it; a config it returned (or
    :func:`resume_config` did) is taken as is, so the CLI calls it first, to fail before it
    draws anything, and every setting is checked once.

    Raises:
        ConfigError: naming the first bad value, or the unusable run directory.
    """
    mark = "prepared to resume" if resume else "prepared"
    if mark in cfg.marks:
        return cfg
    cfg = cfg.validated()
    out = cfg.out if cfg.out is not None else io.default_run_dir("train")
    if resume:
        check_resumable(out)
    else:
        out = io.check_out_dir(out)
    return replace(cfg, out=out, dataset=resolve_dataset(cfg.dataset)).marked(mark)


def resume_config(run_dir: Path | str, given: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of the run in ``run_dir``, checked against options given again.

    Args:
        run_dir: the run directory to resume.
        given: options passed now (``{field: value}``, typed; unset ones left out). Each must
            equal the run's own (after normalization: each is validated in the run's
            configuration, values only); ``out``, if given, must be ``run_dir``.

    Returns:
        the run's validated :class:`TrainConfig` with ``out = run_dir``, prepared
        (:func:`prepare`) to resume: :func:`run` takes it as is.

    Raises:
        ConfigError: when ``run_dir`` is not a resumable run, or naming the first option whose
            value differs from the run's ``config.json``.
    """
    run_dir = Path(run_dir)
    check_resumable(run_dir)  # the filesystem, once
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        base = replace(TrainConfig.from_json(stored), out=run_dir)
    except (ValueError, TypeError, ConfigError) as e:
        raise ConfigError(f"--resume {str(run_dir)!r}: unreadable config.json ({e})") from None
    base = base.validated()  # its dataset is as the run resolved it (absolute for a path)
    for key, value in (given or {}).items():
        if key == "out":
            if value is not None and Path(value).resolve() != run_dir.resolve():
                raise ConfigError(
                    f"--out {str(value)!r} differs from --resume {str(run_dir)!r}; give one"
                )
            continue
        if key not in {f.name for f in fields(TrainConfig)}:
            raise ConfigError(f"unknown option {key!r}")
        new = getattr(replace(base, **{key: value}).validated(), key)
        if key == "dataset":
            new = resolve_dataset(new)  # a relative path given again names the same data
        old = getattr(base, key)
        if new != old:
            raise ConfigError(
                f"--resume {str(run_dir)!r}: {key} = {new!r} differs from the run's "
                f"{key} = {old!r} (config.json); resume with the run's settings or start a new run"
            )
    return base.marked("prepared to resume")


def seeds(seed: int, rank: int = 0) -> dict[str, int]:
    """Independent seeds: the shared data order, and gate noise and evaluation of ``rank``.

    >>> s0, s1 = seeds(0, 0), seeds(0, 1)
    >>> s0["data_order"] == s1["data_order"], s0["gate_noise"] == s1["gate_noise"]
    (True, False)
    """
    shared = streams(seed, ("data_order",))
    return {**shared, **streams(seed, ("gate_noise", "evaluation"), spawn_key=(rank,))}


#: ``(run_dir, epoch, *, settings, world, device) -> row | None``: a Hessian analysis of an
#: epoch of a run in progress (:func:`sim.hessian.record_epoch`)
HessianHook = Callable[..., dict | None]


@dataclass
class TrainResult:
    """What a run produced: its directory, the metric rows and the summary."""

    run_dir: Path
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _first(rows: list[dict], ok: Callable[[dict], bool]) -> int | None:
    return next((r["epoch"] for r in rows if ok(r)), None)


class _Trainer:
    """The state of one run in one process (rank); :func:`run` drives it."""

    def __init__(self, cfg: TrainConfig, world, device_name: str, *, resume: bool):
        import torch

        from umwelt.nn.device import resolve_device, resolve_dtype
        from umwelt.nn.models import count_parameters
        from umwelt.nn.noise import GateNoise
        from umwelt.nn.observables import weight_layers
        from umwelt.nn.train import get_loss, make_optimizer

        self.cfg, self.world, self.resume = cfg, world, resume
        self.run_dir = Path(cfg.out)
        data = load_data(cfg)
        self.device = resolve_device(device_name)
        self.dtype = resolve_dtype(cfg.dtype)
        self.model = build_model(cfg, data.input_shape, device=self.device, dtype=self.dtype)
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
            "data_sha256": fingerprint(data),
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
            "versions": io.versions(),
        }

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t0

    def _rng_states(self) -> dict:
        """Every generator's state; per-rank ones gathered from all ranks (a collective)."""
        import torch

        from umwelt.nn.parallel import all_gather_bytes

        dev = str(self.device)
        states = {
            "data_order": self.order_gen.get_state(),
            "gate_noise": all_gather_bytes(self.noise_gen.get_state(), device=dev),
            "evaluation": all_gather_bytes(self.eval_gen.get_state(), device=dev),
            "torch_cpu": all_gather_bytes(torch.get_rng_state(), device=dev),
            "torch_cuda": None,
        }
        if self.device.type == "cuda":
            cuda = torch.cuda.get_rng_state(self.device)
            states["torch_cuda"] = all_gather_bytes(cuda, device=dev)
        return states

    def save_checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (all ranks call it; rank 0 writes)."""
        import torch

        rng = self._rng_states()
        if not self.world.is_main:
            return
        in_epoch = None if self.in_epoch is None else self.in_epoch.state_dict()
        state = {
            "format": _FORMAT,
            "epoch": self.epoch,
            "in_epoch": in_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "metrics": json.dumps(io.to_jsonable(self.rows)),
            "wall_s": self.wall(),
            "world_size": self.world.size,
        }
        io.atomic_write(self.run_dir / "checkpoints" / CHECKPOINT, lambda p: torch.save(state, p))

    def load_checkpoint(self) -> None:
        import torch

        from umwelt.nn.train import EpochState

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
            self.in_epoch = EpochState.from_state_dict(ck["in_epoch"], self.device)

    # -- training ---------------------------------------------------------------------------------

    def train_epoch(self, on_step) -> float:
        """Finish the current epoch's steps (from a checkpoint's position if resuming)."""
        from umwelt.nn.train import EpochState, em_steps, epoch_order

        cfg, n = self.cfg, self.n
        if self.in_epoch is None:
            self.in_epoch = EpochState(epoch_order(n, self.order_gen).to(self.device))
        steps = math.ceil(n / cfg.batch_size)
        self.model.train()

        def step_done(state: EpochState, loss) -> None:
            if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.pos < n:
                self.save_checkpoint()
            if on_step is not None:
                info = {"epoch": self.epoch + 1, "step": state.step, "steps": steps}
                on_step({**info, "loss": float(loss)})

        return em_steps(
            self.model,
            self.Xtr,
            self.ytr,
            self.optimizer,
            self.in_epoch,
            batch_size=cfg.batch_size,
            loss=self.loss_fn,
            on_step=step_done,
        )

    # -- measuring --------------------------------------------------------------------------------

    def measure(self, epoch: int, epoch_loss: float | None) -> tuple[dict, list]:
        from umwelt.nn.observables import evaluate, full_gradient, using_generator

        kw = {"loss": self.loss_fn, "batch_size": self.cfg.eval_batch_size}
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

        from umwelt.nn.observables import gate_statistics, observe, using_generator

        with using_generator(self.model, self.eval_gen):
            gates = gate_statistics(self.model, self.Xtr, batch_size=self.cfg.eval_batch_size)
        if not self.world.is_main:
            return
        layer_grads = [grads[i] for i in self.layer_param_index]
        scalars = {k: row[k] for k in ("loss", "train_acc", "test_acc", "order_parameter")}
        obs = observe(epoch, self.model, layer_grads, self.weight_units, gates, scalars)
        write_observation(self.run_dir / "observations" / observation_file(epoch), obs)
        state = self.model.state_dict()
        io.atomic_write(
            self.run_dir / "checkpoints" / model_checkpoint(epoch),
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
    analyse_hessian: HessianHook | None = None,
) -> TrainResult:
    """Train, measure and observe; write (or continue) the run directory.

    Args:
        cfg: the settings; validated and the filesystem checked here (:func:`prepare`)
            before anything is created, unless ``cfg`` is :func:`prepare`'s result. For
            ``resume``, build it with :func:`resume_config`.
        resume: continue the run in ``cfg.out`` from its last checkpoint.
        on_epoch: called with each metrics row (on every rank) as soon as it exists.
        on_step: called after every optimizer step with ``{epoch, step, steps, loss}``, after
            the step's checkpoint (if any) was written; an exception it raises stops the run
            there, as a crash would (no checkpoint is written on the way out).
        figures: write the figures of :mod:`sim.figures` at the end (rank 0).
        analyse_hessian: the Hessian analysis of the epochs ``cfg.hessian_at``, called on
            every rank right after the epoch's checkpoint is written, as
            ``analyse_hessian(run_dir, epoch, settings=cfg.hessian, world=, device=)``:
            :func:`sim.hessian.record_epoch` (which the CLI passes). Required when
            ``cfg.hessian_at`` names epochs.

    Returns:
        the run directory, all rows (those of earlier sessions too) and the summary.

    Raises:
        UmweltError: for a bad setting, model or dataset (before the run directory exists), a
            run that cannot be resumed, or a resume directory whose configuration differs.
    """
    from sim import distributed

    cfg = prepare(cfg, resume=resume)
    if cfg.hessian_at and analyse_hessian is None:
        raise ConfigError(
            f"hessian_at = {cfg.hessian_at} needs the Hessian analysis: pass "
            "analyse_hessian=sim.hessian.record_epoch (umwelt train --hessian-at does)"
        )
    world, device_name = distributed.setup(cfg.device)
    completed = False
    try:
        hooks = (on_epoch, on_step, analyse_hessian)
        result = _run(cfg, world, device_name, resume, hooks, figures)
        completed = True
        return result
    finally:
        distributed.teardown(world, completed=completed)


def _run(cfg, world, device_name, resume, hooks, figures) -> TrainResult:
    on_epoch, on_step, analyse_hessian = hooks
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
        io.write_json(run_dir / "config.json", tr.config_record())
    result = TrainResult(run_dir=run_dir, metrics=tr.rows)
    if world.is_main and resume:
        io.write_jsonl(run_dir / "metrics.jsonl", tr.rows)  # drop rows past the checkpoint
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
                    analyse_hessian(
                        run_dir,
                        epoch,
                        settings=cfg.hessian,
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
                io.write_jsonl(run_dir / "metrics.jsonl", tr.rows)
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
            io.write_json(run_dir / "summary.json", result.summary)
            if figures and status.startswith(("completed", "converged", "diverged")):
                make_figures(run_dir)
    return result
