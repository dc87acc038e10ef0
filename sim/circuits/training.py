r"""``umwelt circuits --run``: the assembly moments of a training run, epoch by epoch.

The net of each checkpointed epoch of an MLP run (``umwelt train`` or ``umwelt simulate``) over
the same inputs: the mean and second moment of ``f``, of every gradient entry and of sampled
Hessian entries beside eq. 20's prediction (:mod:`umwelt.circuits.moments`), and with
``plant_mean`` once more with a planted broken weight symmetry (:mod:`sim.circuits`, *Through
training*). Nothing is written into the run directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.circuits.config import CircuitsConfig
from sim.circuits.figures import _training_figure
from sim.circuits.nets import _load_input, _to_net
from umwelt.errors import ConfigError, ShapeError, UmweltError


def _open_mlp_run(path: Path, epochs: tuple[int, ...] | None):
    """``(Run, the epochs to measure)``, or :class:`ConfigError` for a directory that is not a
    training run of an MLP, one without checkpoints, or epochs it did not checkpoint."""
    from sim.runs import Run

    run = Run.open(path)
    if run.kind == "train" and not str(run.config.model).startswith("mlp:"):
        raise ConfigError(
            f"--run: the assembly moments through training are for MLPs; the train run "
            f"{str(run.path)!r} trains {run.config.model}"
        )
    found = run.require_checkpoints(purpose=" to measure")
    missing = [e for e in epochs or () if e not in found]
    if missing:
        raise ConfigError(
            f"epoch{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not in the "
            f"run {str(run.path)!r}: its checkpointed epochs are {', '.join(map(str, found))}"
        )
    return run, tuple(epochs or found)


def _run_inputs(cfg: CircuitsConfig, run, n0: int) -> tuple[np.ndarray, str]:
    """``(X (B, n_0), where they come from)``: ``x``, else the run's first training examples
    (when its dataset loads), else standard-normal vectors."""
    if cfg.x is not None:
        x = np.asarray(_load_input(cfg.x) if isinstance(cfg.x, Path) else cfg.x, dtype=np.float64)
        if x.size != n0:
            raise ShapeError(
                f"the input has {x.size} values (shape {x.shape}) but the net takes {n0}"
            )
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"the input {str(cfg.x)!r} holds non-finite values")
        return x.reshape(1, n0), "given"
    try:
        X = np.asarray(run.data().X_train[: cfg.inputs], dtype=np.float64).reshape(-1, n0)
        return X, f"training set of the run ({run.config.dataset})"
    except (UmweltError, ValueError, OSError) as e:
        rng = np.random.default_rng(cfg.seed + 1)
        return rng.normal(size=(cfg.inputs, n0)), f"standard normal (the run's data: {e})"


def _through_training(cfg: CircuitsConfig, t0: float) -> dict:
    """The assembly moments at the run's epochs (:mod:`sim.circuits`, *Through training*)."""
    import torch

    from umwelt.circuits import net_assembly_moments, plant_mean

    run, epochs = _open_mlp_run(cfg.run, cfg.epochs)
    rows, planted_rows, plant = [], [], None
    X = where = net = None
    for e in epochs:
        kind, net = _to_net(run.model(e, dtype=torch.float64))
        if kind != "mlp":
            raise ConfigError(f"--run: the net of {str(run.path)!r} is not an MLP")
        if X is None:
            X, where = _run_inputs(cfg, run, net.widths[0])
        opts = {"temperature": cfg.temperature, "entries": cfg.samples, "seed": cfg.seed}
        rows.append((e, net_assembly_moments(net, X, **opts)))
        if cfg.plant_mean is not None:
            planted, plant = plant_mean(net, *cfg.plant_mean, seed=cfg.seed)
            planted_rows.append((e, net_assembly_moments(planted, X, planted=plant, **opts)))
    out: dict[str, Any] = {
        "mode": "training",
        "net": {
            "kind": "mlp",
            "description": f"MLP {'-'.join(map(str, net.widths))} from {cfg.run}",
            "run": str(cfg.run),
            "run_kind": run.kind,
        },
        "depth": net.depth,
        "n_parameters": int(sum(w.size for w in net.weights)),
        "temperature": cfg.temperature,
        "seed": cfg.seed,
        "inputs": int(X.shape[0]),
        "input_source": where,
        "entries": rows[0][1].entries,
        "epochs": list(epochs),
        "plant_mean": None if plant is None else plant.as_dict(),
        "moments": [{"epoch": e, **m.as_dict()} for e, m in rows],
        "moments_planted": [{"epoch": e, **m.as_dict()} for e, m in planted_rows] or None,
    }
    if cfg.out is not None:
        out["figures"] = [str(_training_figure(cfg, out, rows, planted_rows))]
    out["wall_s"] = time.perf_counter() - t0
    if cfg.out is not None:
        from sim.runs import write_json

        write_json(Path(cfg.out) / "circuits.json", out)
    return out
