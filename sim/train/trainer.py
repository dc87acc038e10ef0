"""One process's state of a train run: data, model, optimizer, generators; one epoch's
training, measuring and observing (:mod:`sim.train.loop` drives it)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sim.runs import io
from sim.runs.train import (
    TrainConfig,
    build_model,
    fingerprint,
    load_data,
    model_checkpoint,
    observation_file,
    write_observation,
)
from sim.train import checkpoint
from umwelt.errors import ConfigError
from umwelt.seeds import streams

__all__ = ["Trainer", "seeds"]


def seeds(seed: int, rank: int = 0) -> dict[str, int]:
    """Independent seeds: the shared data order, and gate noise and evaluation of ``rank``.

    >>> s0, s1 = seeds(0, 0), seeds(0, 1)
    >>> s0["data_order"] == s1["data_order"], s0["gate_noise"] == s1["gate_noise"]
    (True, False)
    """
    shared = streams(seed, ("data_order",))
    return {**shared, **streams(seed, ("gate_noise", "evaluation"), spawn_key=(rank,))}


def _first(rows: list[dict], ok: Callable[[dict], bool]) -> int | None:
    return next((r["epoch"] for r in rows if ok(r)), None)


class Trainer:
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
        self.hessian_rows: list[dict] = []  # the Hessian rows recorded during this run
        self.stochastic = cfg.gate_mode == "sample" and cfg.temperature > 0
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

    def save_checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` (all ranks call it; rank 0 writes)."""
        checkpoint.save(self)

    def load_checkpoint(self) -> None:
        """Continue from ``checkpoints/last.pt``."""
        checkpoint.load(self)

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
        from umwelt.nn.observables import (
            effective_temperatures,
            evaluate,
            full_gradient,
            layer_norms,
            margin_statistics,
            using_generator,
        )

        kw = {"loss": self.loss_fn, "batch_size": self.cfg.eval_batch_size}
        with using_generator(self.model, self.eval_gen):
            grads, tr = full_gradient(self.model, self.Xtr, self.ytr, margins=True, **kw)
            te = evaluate(self.model, self.Xte, self.yte, **kw)
        norms = layer_norms(self.model, grads)
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
            **margin_statistics(tr["margins"]),  # of the same pass: the gates of `loss`
            "layer_grad_norms": norms["layer_grad_norms"],
            "weight_norms": norms["weight_norms"],
            "effective_temperature": effective_temperatures(self.model),
        }
        return row, grads

    def phases(self, rows: list[dict]) -> list:
        """The phase of every row (:func:`umwelt.phases.classify`, default thresholds)."""
        from umwelt.phases import classify

        return classify(rows, self.hessian_rows, stochastic=self.stochastic)

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
        from umwelt.phases import PhaseRule, summarize

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
            "phases": summarize(self.phases(rows), PhaseRule()),
        }
