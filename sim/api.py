"""Every ``umwelt`` command as a Python function, for exploratory scripts and notebooks.

Each function takes the command's options as keywords (the fields of its Config, typed: tuples
for lists, numbers for numbers), runs the driver exactly as the CLI does and returns its result;
nothing is printed. Results are read back through :class:`sim.runs.Run`::

    from sim import api
    from sim.runs import Run

    for T in (0.0, 0.1, 1.0):
        res = api.simulate(temperature=T, hidden=(16, 16), epochs=5, out=f"runs/T{T:g}")
        run = Run.open(res.run_dir)
        last = run.metrics()[-1]
        print(T, last["test_acc"], last["relu_test_acc"], run.summary()["mc_test_acc_se"])

Bad options raise :class:`~umwelt.errors.UmweltError` (a ``ConfigError`` naming the value)
before anything is written, as on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "circuits",
    "exact",
    "hessian",
    "phases",
    "plot",
    "reproduce",
    "resume",
    "simulate",
    "sweep",
    "train",
]


def simulate(**options: Any):
    """``umwelt simulate``: a net at T and its ReLU twin; options are
    :class:`~sim.runs.SimulateConfig`'s fields. Returns a :class:`sim.simulate.SimulateResult`."""
    from sim.runs import SimulateConfig
    from sim.simulate import run

    return run(SimulateConfig(**options))


def train(**options: Any):
    """``umwelt train``: options are :class:`~sim.runs.TrainConfig`'s fields (``hessian``: a
    :class:`~sim.runs.HessianSettings`); with ``hessian_at`` the Hessian analysis of
    :mod:`sim.hessian` runs at those epochs. Returns a :class:`sim.train.TrainResult`."""
    from sim.runs import TrainConfig
    from sim.train import run

    figures = options.pop("figures", True)
    cfg = TrainConfig(**options)
    return run(cfg, figures=figures, analyse_hessian=_hessian_hook(cfg.hessian_at))


def resume(run_dir: Path | str, **options: Any):
    """``umwelt train --resume RUN``: continue a train run from its last checkpoint; options
    given again must equal the run's. Returns a :class:`sim.train.TrainResult`."""
    from sim.train import resume_config, run

    figures = options.pop("figures", True)
    cfg = resume_config(run_dir, options)
    return run(cfg, resume=True, figures=figures, analyse_hessian=_hessian_hook(cfg.hessian_at))


def hessian(run_dir: Path | str, **options: Any) -> list[dict]:
    """``umwelt hessian RUN``: options are :class:`~sim.hessian.HessianConfig`'s fields (the
    settings, ``epochs``, ``net``, ...). Returns the rows of the epochs analysed."""
    from sim.hessian import HessianConfig, run

    return run(HessianConfig(run=Path(run_dir), **options))


def phases(run_dir: Path | str, **thresholds: Any) -> dict:
    """``umwelt phases RUN``: every epoch's phase with these thresholds (the fields of
    :class:`umwelt.phases.PhaseRule`); writes nothing. Returns what ``--json`` prints."""
    from sim.phases import PhasesConfig, run

    return run(PhasesConfig(run=Path(run_dir), **thresholds))


def plot(run_dir: Path | str, **axes: Any) -> list[Path]:
    """``umwelt plot RUN``: redraw every figure of a run — or of a sweep directory, whose
    diagrams take ``x``, ``y`` and ``facet`` (row columns); the paths written."""
    if (Path(run_dir) / "sweep.json").is_file():
        from sim.sweep import plot as plot_sweep

        return plot_sweep(run_dir, **axes)
    from sim.plot import run
    from umwelt.errors import ConfigError

    if axes:
        raise ConfigError(f"{sorted(axes)} are for sweep directories; {run_dir} is not one")
    return run(run_dir)


def sweep(spec: Path | str | None = None, **options: Any):
    """``umwelt sweep SPEC.toml --out DIR``: options are :class:`~sim.sweep.SweepConfig`'s
    fields (``out``, ``executor``, ``jobs``, ``collect``, ...). Returns a
    :class:`sim.sweep.SweepResult` (each point's state, the collected rows)."""
    from sim.sweep import SweepConfig, run

    return run(SweepConfig(spec=spec, **options))


def circuits(**options: Any) -> dict:
    """``umwelt circuits``: options are :class:`~sim.circuits.CircuitsConfig`'s fields. Returns
    the result object that ``--json`` prints.

    Through training (eq. 20 at a run's checkpointed epochs, with a planted broken symmetry)::

        r = api.circuits(run="runs/mlp", epochs=(0, 10, 20), plant_mean=(0.25, 1.0),
                         inputs=64, samples=256, out="runs/mlp/eq20")
        for row in r["moments_planted"]:
            print(row["epoch"], row["mean"]["f"], row["mean_se"]["f"], row["eq20"]["mean"]["f"])
    """
    from sim.circuits import CircuitsConfig, run

    return run(CircuitsConfig(**options))


def exact(**options: Any) -> dict:
    """``umwelt exact``: options are :class:`~sim.exact.ExactConfig`'s fields. Returns the
    result object that ``--json`` prints."""
    from sim.exact import ExactConfig, run

    return run(ExactConfig(**options))


def reproduce(out: Path | str, **options: Any):
    """``umwelt reproduce OUT``: options are :class:`~sim.reproduce.ReproduceConfig`'s fields
    (``scale``, ``quick``, ``dataset``, ``seed``, ``device``, and any setting of the experiment,
    which otherwise comes from the scale). Runs or continues the reproduction in ``out`` and
    returns a :class:`sim.reproduce.ReproduceResult` (the claims, the report's paths)::

        r = api.reproduce("runs/repro", scale="cpu", dataset="cifar-10-python.tar.gz")
        for c in r.claims:
            print(c.key, c.measured_text(), c.verdict)
    """
    from sim.reproduce import ReproduceConfig, run

    return run(ReproduceConfig(out=Path(out), **options))


def _hessian_hook(hessian_at):
    if not hessian_at:
        return None
    from sim.hessian import record_epoch

    return record_epoch
