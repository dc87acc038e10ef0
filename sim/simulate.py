r"""``umwelt simulate``: a network at temperature :math:`T` and its ReLU twin, trained side by side.

Both nets start from one He-normal initialization and see one data order. The finite-:math:`T`
net is trained by generalized EM (THEORY.md §2): each minibatch samples every gate (E-step) and
takes an SGD-with-momentum step with the gates held fixed (M-step). The twin is the plain ReLU
network (the :math:`T \to 0` limit). At ``temperature = 0`` the two are the same computation and
every column of their metrics is identical.

Evaluation of the finite-:math:`T` net averages over ``samples`` independent gate draws (one
draw at :math:`T = 0`, where the gates are deterministic): ``loss`` is the risk
:math:`\mathbb{E}_h[\ell]` and ``train_acc``/``test_acc`` the expected accuracy of one sampled
network; the summary adds their Monte Carlo standard errors and the accuracy of the ensemble
prediction :math:`\mathrm{sign}\,\hat{\mathbb{E}}_h[f(x)]`.

The run directory (every file written atomically, metrics and weights after every epoch)::

    config.json        every setting, the seeds and library versions
    metrics.jsonl      one row per epoch (epoch 0 = initialization)
    summary.json       the final row and the Monte Carlo accuracies with standard errors
    figures/*.png      learning curves, gate entropy/agreement, order parameter
    checkpoints/*.pt   state dicts: init.pt, finite_T.pt, relu.pt (weights_only=True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.figures import simulate_figures
from sim.runs import io
from sim.runs.lock import claim_new
from sim.runs.simulate import SimulateConfig, build_net, load_data
from umwelt.seeds import streams

__all__ = ["SimulateConfig", "SimulateResult", "prepare", "run"]


@dataclass
class SimulateResult:
    """What a run produced: its directory, the metric rows and the summary."""

    run_dir: Path
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _seeds(seed: int) -> dict[str, int]:
    """Independent streams for data order, training gate noise and evaluation gate noise."""
    return streams(seed, ("data_order", "gate_noise", "evaluation"))


def _draws(model, X, S: int, batch_size: int):
    """Outputs of ``S`` gate draws, shape ``(S, n)`` (one draw when the net is deterministic)."""
    import torch

    if all(g.mode != "sample" or g.temperature == 0.0 for g in model.gates):
        S = 1  # deterministic gates: one draw is exact
    with torch.no_grad():
        return torch.stack(
            [
                torch.cat([model(X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)])
                for _ in range(S)
            ]
        )  # (S, n)


def _mc_metrics(model, X, y, *, S: int, loss_fn, batch_size: int) -> dict[str, float]:
    """Risk and accuracy over gate draws; standard errors across draws; ensemble accuracy."""
    f = _draws(model, X, S, batch_size)  # (S, n)
    losses = np.array([float(loss_fn(fs, y)) for fs in f])
    accs = _correct(f, y).double().mean(dim=1).cpu().numpy()
    n = len(accs)

    def mean_se(a: np.ndarray) -> tuple[float, float]:
        # one draw is returned as is: averaging copies could change its last bit (T = 0 twin)
        return (float(a[0]), 0.0) if n == 1 else (float(a.mean()), float(a.std(ddof=1) / n**0.5))

    with np.errstate(invalid="ignore", over="ignore"):  # a diverged net: inf/NaN, quietly
        (loss, loss_se), (acc, acc_se) = mean_se(losses), mean_se(accs)
    return {
        "loss": loss,
        "loss_se": loss_se,
        "acc": acc,
        "acc_se": acc_se,
        "ensemble_acc": float(_correct(f.mean(dim=0), y).double().mean()),
        "draws": n,
        "margins": (f * y).double().cpu().numpy(),  # (S, n): y·f of every draw
    }


def _correct(f, y):
    """``sign(f) == y`` with ``f = 0`` counted as wrong."""
    return f * y > 0


def _check_memory(cfg: SimulateConfig) -> None:
    """Refuse a run whose nets, data and evaluation draws cannot fit (before anything exists)."""
    from umwelt import memory
    from umwelt.data import spec_sizes

    n_train, n_test, shape = spec_sizes(cfg.dataset)
    widths, n = (math.prod(shape), *cfg.hidden, 1), n_train + n_test
    it = 8 if cfg.dtype == "float64" else 4
    P, units = memory.mlp_parameters(widths), memory.mlp_activations(widths)
    need = 2 * memory.training_bytes(P, units, batch=max(cfg.batch_size, 1024), itemsize=it)
    need += memory.dataset_bytes(n, widths[0], it) + cfg.samples * n * (3 * it + 24)  # the draws
    shown = "-".join(map(str, widths))
    memory.check_fits(f"simulate (widths {shown}, {n:,} examples × {cfg.samples} draws)", need)


def prepare(cfg: SimulateConfig) -> SimulateConfig:
    """``cfg`` validated, with its run directory checked: the one step before a run writes.

    Validates the values (:meth:`SimulateConfig.validated`, pure), then looks at the disk:
    ``out`` (default ``runs/simulate-<time>``) must be a new or empty directory; nothing is
    created. :func:`run` calls it; a config it returned is taken as is, so the CLI calls it
    first, to fail before it draws anything, and every setting is checked once.

    Raises:
        ConfigError: naming the first bad value, or the unusable run directory.
    """
    if "prepared" in cfg.marks:
        return cfg
    cfg = cfg.validated()
    _check_memory(cfg)
    out = io.check_out_dir(cfg.out if cfg.out is not None else io.default_run_dir("simulate"))
    return replace(cfg, out=out).marked("prepared")


def run(
    cfg: SimulateConfig,
    *,
    on_epoch: Callable[[dict], None] | None = None,
) -> SimulateResult:
    """Train the finite-T net and its ReLU twin side by side and write the run directory.

    Args:
        cfg: the settings; validated and its run directory checked here (:func:`prepare`)
            before anything is created, unless ``cfg`` is :func:`prepare`'s result.
        on_epoch: called with each metrics row as soon as it exists (progress display).

    Returns:
        the run directory, the rows and the summary.

    Raises:
        UmweltError: for any bad setting or dataset, before the run directory exists.
    """
    import torch

    from umwelt.nn import (
        GateNoise,
        epoch_order,
        gate_statistics,
        make_optimizer,
    )
    from umwelt.nn import train_epoch as em_epoch
    from umwelt.nn.device import resolve_device, resolve_dtype
    from umwelt.nn.observables import (
        effective_temperatures,
        full_gradient,
        layer_norms,
        margin_statistics,
    )
    from umwelt.nn.train import get_loss
    from umwelt.phases import classify

    cfg = prepare(cfg)
    data = load_data(cfg)  # flattened: an MLP sees images as vectors
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    widths = (data.dim, *cfg.hidden, 1)
    seeds = _seeds(cfg.seed)
    eval_bs = max(cfg.batch_size, 1024)  # examples per pass of the full-data measurements
    run_dir = Path(cfg.out)
    lock = claim_new(run_dir, "umwelt simulate")  # one writer: taken before the first file
    try:
        io.write_json(
            run_dir / "config.json",
            {
                **asdict(cfg),
                "widths": widths,
                "seeds": seeds,
                "dataset_info": data.info,
                "n_train": data.n_train,
                "n_test": data.n_test,
                "versions": io.versions(),
            },
        )

        def tensor(a):
            return torch.as_tensor(a, dtype=dtype, device=device)

        Xtr, ytr, Xte, yte = map(tensor, (data.X_train, data.y_train, data.X_test, data.y_test))
        loss_fn = get_loss(cfg.loss)
        nets = {
            "": build_net(cfg, widths, "finite_T", dtype=dtype, device=device),
            "relu_": build_net(cfg, widths, "relu", dtype=dtype, device=device),
        }
        opts = {k: make_optimizer(m, cfg.lr, cfg.momentum) for k, m in nets.items()}
        order_gen = torch.Generator().manual_seed(seeds["data_order"])
        noise_gen = GateNoise(seeds["gate_noise"], device)
        eval_gen = GateNoise(seeds["evaluation"], device)
        model = nets[""]
        model.set_generator(noise_gen)
        ckpt = run_dir / "checkpoints"
        io.atomic_write(ckpt / "init.pt", lambda p: torch.save(model.state_dict(), p))

        def measure(epoch: int, epoch_losses: dict[str, float], t0: float) -> dict:
            row: dict[str, Any] = {"epoch": epoch}
            model.set_generator(eval_gen)  # evaluation draws never touch the training noise stream
            for prefix, net in nets.items():
                tr = _mc_metrics(net, Xtr, ytr, S=cfg.samples, loss_fn=loss_fn, batch_size=eval_bs)
                te = _mc_metrics(net, Xte, yte, S=cfg.samples, loss_fn=loss_fn, batch_size=eval_bs)
                row[f"{prefix}loss"] = tr["loss"]
                row[f"{prefix}train_acc"] = tr["acc"]
                row[f"{prefix}test_loss"] = te["loss"]
                row[f"{prefix}test_acc"] = te["acc"]
                row[f"{prefix}epoch_loss"] = epoch_losses.get(prefix)
                grads, full = full_gradient(net, Xtr, ytr, loss=cfg.loss, batch_size=eval_bs)
                row[f"{prefix}order_parameter"] = cfg.lr * full["grad_sq"]
                # N_Δ of the evaluation's draws (a mean over them at T > 0), margins pooled
                stats = margin_statistics(tr["margins"] if tr["draws"] > 1 else tr["margins"][0])
                row |= {f"{prefix}{k}": v for k, v in stats.items()}
                norms = layer_norms(net, grads)
                row[f"{prefix}layer_grad_norms"] = norms["layer_grad_norms"]
                row[f"{prefix}weight_norms"] = norms["weight_norms"]
                row[f"{prefix}effective_temperature"] = effective_temperatures(net)
            gates = gate_statistics(model, Xtr, batch_size=1024)
            row.update({k: gates[k].tolist() for k in ("gate_entropy", "gate_agreement")})
            model.set_generator(noise_gen)
            row["wall_s"] = time.perf_counter() - t0
            return row

        result = SimulateResult(run_dir=run_dir)
        t0 = time.perf_counter()

        def save() -> None:
            # the weights first: metrics.jsonl never names an epoch whose weights are not on disk
            for prefix, name in (("", "finite_T"), ("relu_", "relu")):
                state = nets[prefix].state_dict()
                io.atomic_write(ckpt / f"{name}.pt", lambda p, s=state: torch.save(s, p))
            io.write_jsonl(run_dir / "metrics.jsonl", result.metrics)

        stochastic = cfg.temperature > 0  # the finite-T net samples its gates

        def label(row: dict) -> None:
            """The online phase of each net (umwelt.phases, default thresholds)."""
            rows = [*result.metrics, row]
            row["phase"] = classify(rows, stochastic=stochastic)[-1].phase
            row["relu_phase"] = classify(rows, prefix="relu_")[-1].phase

        status = "completed"
        try:
            for epoch in range(cfg.epochs + 1):
                losses: dict[str, float] = {}
                if epoch > 0:
                    order = epoch_order(data.n_train, order_gen)  # one order for both nets
                    for prefix, net in nets.items():
                        losses[prefix] = em_epoch(
                            net,
                            Xtr,
                            ytr,
                            opts[prefix],
                            batch_size=cfg.batch_size,
                            order=order,
                            loss=cfg.loss,
                        )
                row = measure(epoch, losses, t0)
                label(row)
                if not math.isfinite(row["loss"]) or not math.isfinite(row["relu_loss"]):
                    status = f"diverged at epoch {epoch} (non-finite loss); lower --lr"
                    result.metrics.append(row)
                    break
                result.metrics.append(row)
                save()
                if on_epoch is not None:
                    on_epoch(row)
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            if result.metrics:
                result.summary = _summarize(
                    cfg,
                    result.metrics,
                    nets,
                    (Xtr, ytr, Xte, yte),
                    eval_gen,
                    loss_fn,
                    status,
                    time.perf_counter() - t0,
                )
                io.write_json(run_dir / "summary.json", result.summary)
                simulate_figures(run_dir, result.metrics, cfg)
        return result
    finally:
        lock.release()


def _first_zero_error(rows: list[dict], key: str) -> int | None:
    return next((r["epoch"] for r in rows if r[key] == 1.0), None)


def _summarize(cfg, rows, nets, tensors, eval_gen, loss_fn, status, wall_s) -> dict:
    from umwelt.phases import PhaseRule, classify, summarize

    Xtr, ytr, Xte, yte = tensors
    model = nets[""]
    model.set_generator(eval_gen)
    mc = {}
    for split, X, y in (("train", Xtr, ytr), ("test", Xte, yte)):
        m = _mc_metrics(model, X, y, S=cfg.samples, loss_fn=loss_fn, batch_size=1024)
        mc[f"mc_{split}_acc"] = m["acc"]
        mc[f"mc_{split}_acc_se"] = m["acc_se"]
        mc[f"ensemble_{split}_acc"] = m["ensemble_acc"]
        mc["mc_draws"] = m["draws"]
    return {
        **rows[-1],
        **mc,
        "status": status,
        "first_zero_train_error_epoch": _first_zero_error(rows, "train_acc"),
        "relu_first_zero_train_error_epoch": _first_zero_error(rows, "relu_train_acc"),
        "temperature": cfg.temperature,
        "total_wall_s": wall_s,
        "phases": {
            "finite_T": summarize(classify(rows, stochastic=cfg.temperature > 0), PhaseRule()),
            "relu": summarize(classify(rows, prefix="relu_"), PhaseRule()),
        },
    }
