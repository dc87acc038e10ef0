r"""Running a reproduction: check everything, train (or continue), sample the circuits, decide the
claims, write the report.

:func:`prepare` looks at the values and the disk and writes nothing: ``OUT`` must be new, empty,
or a reproduction of the same settings (its ``reproduce.json``); a cpu or gpu reproduction's
dataset must be a readable CIFAR-10 path, whose SHA-256 must not have changed since the
reproduction started; the train run underneath is new, resumable, or finished. :func:`run`
then holds ``OUT/.lock`` (one writer) and does only what is missing, so that the same command
after an interruption continues where it stopped: the train run resumes from its last
checkpoint (``umwelt train --resume``), the circuits are sampled unless ``circuits.json``
exists, and the claims and the report are always made anew from the files.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sim.reproduce.claims import Evidence, evaluate, rules
from sim.reproduce.config import ReproduceConfig, is_family
from sim.reproduce.report import Claim, write_report
from sim.runs import TrainConfig, io
from sim.runs.lock import LOCK_NAME, RunLock, check_not_held
from sim.runs.untrusted import load_json
from umwelt.errors import ConfigError, UmweltError

__all__ = [
    "SETTINGS_FILE",
    "command_line",
    "ReproducePlan",
    "ReproduceResult",
    "dataset_checksum",
    "notes",
    "prepare",
    "run",
]

SETTINGS_FILE = "reproduce.json"
#: the statuses of a train run that has nothing left to do
_FINISHED = ("completed", "converged", "diverged", "stopped")
#: the train run's figures a claim may show (``figures/<name>.png``)
_TRAIN_FIGURES = (
    *("weights_ridgeline", "gradients_ridgeline", "order_parameter", "learning_curves"),
    *("hessian_spectrum", "hessian_entries", "hessian_followed", "hessian_means"),
)


@dataclass(frozen=True)
class ReproducePlan:
    """A checked reproduction, ready to run: nothing has been written yet.

    Attributes:
        cfg: the validated settings (the dataset path absolute).
        train: the train run's config, prepared to start or to resume.
        train_state: ``new``, ``resume`` or ``done`` (finished: not trained again).
        stored: ``OUT/reproduce.json`` of an earlier session, or ``None``.
        dataset_format: the CIFAR-10 format (``None`` for a synthetic family).
        dataset_sha256: the SHA-256 of the dataset file (or of a directory's files).
    """

    cfg: ReproduceConfig
    train: TrainConfig
    train_state: str
    stored: dict | None = None
    dataset_format: str | None = None
    dataset_sha256: str | None = None


@dataclass
class ReproduceResult:
    """What a reproduction produced: its directory, the claims and the two report files."""

    out: Path
    claims: list[Claim] = field(default_factory=list)
    report_md: Path | None = None
    report_html: Path | None = None
    train_state: str = "new"  # what this session found: new, resume or done
    wall_s: float = 0.0


def dataset_checksum(path: Path | str) -> str:
    """SHA-256 of a dataset file, or of a directory: of every file under it, in sorted order
    of their relative paths, each path and then its bytes."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if p != path:
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# -- prepare: every check, nothing written --------------------------------------------------------


def prepare(cfg: ReproduceConfig) -> ReproducePlan:
    """``cfg`` validated and the filesystem checked; nothing is created.

    Raises:
        UmweltError: one line naming the bad value: an unknown scale, a missing or unreadable
            dataset (with the formats accepted), ``OUT`` a file or a directory of something
            else or of another reproduction's settings, a held lock, a train run that does
            not fit the memory.
    """
    from sim.runs.train import resolve_dataset

    cfg = cfg.validated()
    out = io.check_lookup(Path(cfg.out), "OUT")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT {str(out)!r} is a file, not a directory")
    try:
        io.check_out_place(out)
    except ConfigError as e:  # its messages name --out
        raise ConfigError(str(e).replace("--out ", "OUT ", 1)) from None
    if out.is_dir():
        check_not_held(out)
    stored = _stored(out)
    cfg = replace(cfg, dataset=resolve_dataset(cfg.dataset)).validated()
    fmt = sha = None
    if not is_family(cfg.dataset):
        from umwelt.data import detect_format

        fmt = detect_format(cfg.dataset)  # DataError: the path, and the formats expected
        sha = dataset_checksum(cfg.dataset)
    if stored is not None:
        _check_same(out, stored, cfg, sha)
    state, train = _train_plan(cfg)
    return ReproducePlan(cfg, train, state, stored, fmt, sha)


def _stored(out: Path) -> dict | None:
    """``OUT/reproduce.json``; ``None`` for a new or empty ``OUT``; refuses anything else."""
    if not out.is_dir():
        return None
    path = out / SETTINGS_FILE
    if not path.is_file():
        if any(p.name != LOCK_NAME for p in out.iterdir()):
            raise ConfigError(
                f"OUT {str(out)!r} already exists and holds no reproduction (no {SETTINGS_FILE}); "
                "choose a new directory"
            )
        return None
    try:
        stored = load_json(path)
    except ConfigError as e:
        raise ConfigError(f"OUT {str(out)!r}: {e}") from None
    if not (isinstance(stored, dict) and isinstance(stored.get("settings"), dict)):
        raise ConfigError(f"OUT {str(out)!r}: {SETTINGS_FILE} holds no reproduction's settings")
    return stored


def _check_same(out: Path, stored: dict, cfg: ReproduceConfig, sha: str | None) -> None:
    """That ``OUT`` holds a reproduction of exactly these settings and this dataset."""
    mine, theirs = io.to_jsonable(cfg.settings()), stored["settings"]
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        if mine.get(key) != theirs.get(key):
            raise ConfigError(
                f"OUT {str(out)!r} holds another reproduction: its {key} = "
                f"{theirs.get(key)!r}, this one's {mine.get(key)!r}; choose a new OUT, or "
                "rerun with its settings to continue it"
            )
    if stored.get("dataset_sha256") != sha:
        raise ConfigError(
            f"OUT {str(out)!r}: the dataset {cfg.dataset!r} has other contents than when the "
            f"reproduction started (sha256 {str(sha)[:12]}… vs "
            f"{str(stored.get('dataset_sha256'))[:12]}…)"
        )


def _train_plan(cfg: ReproduceConfig) -> tuple[str, TrainConfig]:
    """``(state, prepared TrainConfig)`` of ``OUT/train``: new, to resume, or done."""
    from sim.runs.train import CHECKPOINT
    from sim.train import prepare as prepare_train
    from sim.train import resume_config

    tc = cfg.train_config()
    run_dir = Path(tc.out)
    if not (run_dir / "checkpoints" / CHECKPOINT).is_file():
        return "new", prepare_train(tc)  # a new run dir (or one killed before its checkpoint)
    given = {f.name: getattr(tc, f.name) for f in fields(TrainConfig) if f.name != "out"}
    train = resume_config(run_dir, given)  # every setting equal to the run's
    try:
        status = str((load_json(run_dir / "summary.json") or {}).get("status", ""))
    except (FileNotFoundError, ConfigError, AttributeError):
        status = ""
    return ("done" if status.startswith(_FINISHED) else "resume"), train


# -- run ------------------------------------------------------------------------------------------


def run(
    cfg: ReproduceConfig | ReproducePlan,
    *,
    on_epoch: Callable[[dict], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ReproduceResult:
    """Reproduce: train (or continue), sample the circuits, decide every claim, write
    ``OUT/REPORT.md`` and ``OUT/report.html``.

    Args:
        cfg: the settings (checked here by :func:`prepare`), or :func:`prepare`'s plan.
        on_epoch: called with each metrics row of the train run.
        on_step: called after each optimizer step (``{epoch, step, steps, loss}``); an
            exception it raises stops the reproduction there, resumable.
        on_stage: called with the name of each stage as it begins (``train``, ``circuits``,
            ``claims``).

    Raises:
        UmweltError: as :func:`prepare`, before anything is written.
    """
    plan = cfg if isinstance(cfg, ReproducePlan) else prepare(cfg)
    t0 = time.perf_counter()
    out = Path(plan.cfg.out)

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name)

    created = not out.exists()
    lock = RunLock(out, "umwelt reproduce").acquire()
    try:
        stored = plan.stored or _write_settings(out, plan)
        stage("train")
        try:
            _train(plan, on_epoch, on_step)
        except UmweltError:
            if plan.stored is None and not Path(plan.train.out).exists():
                _unwrite(out, lock, created)  # refused before the train run began (its data)
            raise
        stage("circuits")
        circuits = _circuits(plan)
        stage("claims")
        ev = _evidence(plan, circuits)
        claims = _publish_figures(out, evaluate(ev))
        settings = _settings(plan, stored, circuits, time.perf_counter() - t0)
        md, page = write_report(out, claims, settings, notes(plan.cfg, ev))
    finally:
        lock.release()
    return ReproduceResult(out, claims, md, page, plan.train_state, time.perf_counter() - t0)


def _unwrite(out: Path, lock: RunLock, created: bool) -> None:
    """Remove what this session wrote into ``OUT`` before its train run began: a bad input
    found only then (a dataset smaller than its subset) leaves nothing behind."""
    (out / SETTINGS_FILE).unlink(missing_ok=True)
    lock.release()
    if created and not any(out.iterdir()):
        out.rmdir()


def _write_settings(out: Path, plan: ReproducePlan) -> dict:
    record = {
        "settings": plan.cfg.settings(),
        "dataset_sha256": plan.dataset_sha256,
        "dataset_format": plan.dataset_format,
        "started": datetime.now().isoformat(timespec="seconds"),
        "versions": io.versions(),
    }
    io.write_json(out / SETTINGS_FILE, record)
    return record


def _train(plan: ReproducePlan, on_epoch, on_step) -> None:
    from sim.figures import figure_path, make_figures
    from sim.hessian import record_epoch
    from sim.train import run as train

    if plan.train_state == "done":
        if not figure_path(plan.train.out, "learning_curves").is_file():
            make_figures(plan.train.out)  # a session stopped while drawing them
        return
    train(plan.train, resume=plan.train_state == "resume", on_epoch=on_epoch, on_step=on_step,
          analyse_hessian=record_epoch)  # fmt: skip


def _circuits(plan: ReproducePlan) -> dict:
    """The circuit symmetry at initialization (``OUT/circuits``), unless it was sampled."""
    from sim.circuits import CircuitsConfig
    from sim.circuits import run as circuits

    out = Path(plan.cfg.out) / "circuits"
    try:
        return load_json(out / "circuits.json")  # written last: the sample is complete
    except FileNotFoundError:
        pass
    cfg = plan.cfg
    return circuits(
        CircuitsConfig(
            checkpoint=Path(plan.train.out),
            which="init",
            seed=cfg.seed,
            inputs=cfg.circuit_inputs,
            samples=cfg.circuit_samples,
            checks=cfg.circuit_checks,
            out=out,
        )
    )


def _evidence(plan: ReproducePlan, circuits: dict) -> Evidence:
    import numpy as np

    from sim.figures import figure_path
    from sim.phases import PhasesConfig
    from sim.phases import run as phases
    from sim.runs import Run

    run_dir = Path(plan.train.out)
    r = Run.open(run_dir)
    entries = []
    for d in r.hessian()[1]:
        if "entry_value" in d and "entry_live" in d:
            live = np.asarray(d["entry_live"], bool)
            entries.append((int(d["epoch"]), np.asarray(d["entry_value"], float)[live]))
    labels = phases(PhasesConfig(run=run_dir))["nets"]["finite_T"]["epochs"]
    figures = {n: figure_path(run_dir, n) for n in _TRAIN_FIGURES}
    figures["circuit_histograms"] = Path(plan.cfg.out) / "circuits" / "circuit_histograms.png"
    return Evidence(
        scale=plan.cfg.preset,
        rows=r.metrics(),
        summary=r.summary() or {},
        observations=r.observations(),
        hessian_rows=r.hessian_rows(),
        entries=entries,
        circuits=circuits,
        phases=[(int(p["epoch"]), str(p["phase"])) for p in labels],
        n_params=int(r.stored.get("n_parameters", 0)),
        figures={n: p for n, p in figures.items() if p.is_file()},
        seed=plan.cfg.seed,
    )


def _publish_figures(out: Path, claims: list[Claim]) -> list[Claim]:
    """The claims with their figures copied to ``OUT/figures/`` (where REPORT.md links them)."""
    done: dict[Path, Path] = {}
    published = []
    for c in claims:
        if c.figure is not None:
            src = Path(c.figure)
            if src not in done:
                dst = out / "figures" / src.name
                io.atomic_write(dst, lambda tmp, s=src: shutil.copyfile(s, tmp))
                done[src] = dst
            c = replace(c, figure=done[src])
        published.append(c)
    return published


def _settings(plan: ReproducePlan, stored: dict, circuits: dict, wall: float) -> dict[str, Any]:
    """Every setting, seed, version and checksum of the report (enough to rerun it exactly)."""
    from sim.runs import Run

    cfg = plan.cfg
    r = Run.open(plan.train.out)
    s = r.stored
    summary = r.summary() or {}
    hessian = r.hessian()[0]
    keep = (
        *("net", "n_parameters", "inputs", "input_source", "samples", "seed", "method"),
        *("enumerated", "sum_rel_error", "grad_rel_error", "hessian_rel_error", "wall_s"),
    )
    return {
        "command": command_line(cfg),
        "reproduction": cfg.to_json(),
        "dataset": {
            "spec": cfg.dataset,
            "format": plan.dataset_format,
            "sha256": plan.dataset_sha256,
            "sha256_of": "the file"
            if cfg.dataset and Path(cfg.dataset).is_file()
            else ("its files, sorted by path" if plan.dataset_format else "none (a family)"),
            "arrays_sha256": s.get("data_sha256"),
            "n_train": s.get("n_train"),
            "n_test": s.get("n_test"),
            "info": s.get("dataset_info"),
        },
        "train_run": {
            "dir": "train",
            "config": {k: v for k, v in s.items() if k not in ("versions", "dataset_info")},
            "status": summary.get("status"),
            "last_epoch": summary.get("epoch"),
            "wall_s": summary.get("total_wall_s"),
        },
        "hessian": {
            k: hessian.get(k)
            for k in ("settings", "seeds", "grid_bound", "grid_points", "band_level")
        },  # fmt: skip
        "circuits": {"dir": "circuits", **{k: circuits.get(k) for k in keep}},
        "rules": rules(),
        "started": stored.get("started"),
        "this_session_wall_s": wall,
        "versions": io.versions(),
    }


def command_line(cfg: ReproduceConfig) -> str:
    """The ``umwelt reproduce`` command of ``cfg`` (its settings beyond the CLI's options
    come from the scale).

    >>> command_line(ReproduceConfig(out="o", quick=True).validated())
    'umwelt reproduce o --scale cpu --quick --seed 0 --device cpu'
    """
    parts = ["umwelt reproduce", str(cfg.out), "--scale", cfg.scale]
    if cfg.quick:
        parts.append("--quick")
    if cfg.dataset is not None and not (cfg.quick and not _given_dataset(cfg)):
        parts += ["--dataset", cfg.dataset]
    parts += ["--seed", str(cfg.seed), "--device", str(cfg.device)]
    return " ".join(parts)


def _given_dataset(cfg: ReproduceConfig) -> bool:
    from sim.reproduce.config import PRESETS, QUICK

    return cfg.dataset != PRESETS[QUICK]["dataset"]


def notes(cfg: ReproduceConfig, ev: Evidence) -> list[str]:
    """The paper's own inconsistencies where they matter, and this scale's departures from
    the paper, each stated once."""
    from umwelt import memory

    full = memory.vgg_sizes("vgg12", 1.0, (3, 32, 32))[0]
    out = [
        "The paper's network: §I.1.3 trains a 12-layer VGG with ~10⁷ parameters (this "
        f"project's vgg12 at width 1 has {full:,}); §II.6.4 gives N = 8.68·10¹² 'parameters', "
        "about N² for a ~2.95·10⁶-parameter net, i.e. a count of Hessian entries, not of "
        "parameters. The coupling fraction 3.39·10⁻⁴ is read as a fraction of the entries, as "
        "the text counts them ('possible coefficients between it and the rest of the entries').",
        "The supplement with the experiment's settings (supp. H B, I) is not available: the "
        "optimizer (SGD, step size, momentum, batch size), He initialization, the Hessian's "
        "estimators and the bootstrap sizes are this project's choices, all recorded below.",
        "Fig. 7b's normalization is ambiguous: dividing an entry's mean by its bootstrap "
        "standard deviation (the standard error) makes |mean|/SE of an entry with zero "
        "expectation a |N(0, 1)| variable, of which only erf(0.15/√2) = 11.9 % fall below 0.15, "
        "so the paper's ≥ 95 % is unreachable under that reading by any network; dividing by "
        "the spread of the per-example contributions (√n × SE) makes it attainable. Both are "
        "reported.",
    ]
    if cfg.preset != "gpu":
        out.append(
            f"Scale: {cfg.preset} — {cfg.model} at width {cfg.width:g} (N = {ev.n_params:,} "
            f"parameters), {len(ev.rows) - 1 if ev.rows else 0} epochs trained of "
            f"{cfg.epochs}, on {cfg.dataset}: numbers that depend on N and the data (the "
            "coupling fraction, the epochs of the phases) are not the paper's; a claim the "
            "run cannot decide says 'not measurable at this scale'."
        )
    status = str(ev.summary.get("status", ""))
    if status and not status.startswith(("completed", "converged")):
        out.append(f"The train run's status: {status}.")
    return out
