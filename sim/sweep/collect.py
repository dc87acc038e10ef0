r"""Collecting a sweep: one row per point from its run directory, whatever finished where.

:func:`collect` reads every point of ``sweep.json`` — finished, running, interrupted, failed or
not started — and writes ``phases.jsonl`` and ``phases.csv`` (the same rows; the CSV without
the list-valued fields), so that a partial sweep or one that ran on a cluster collects the
same way at any time (``umwelt sweep DIR --collect``). A row:

``id``, ``status`` (:data:`sim.sweep.store.STATES`), the point's axis values under their option
names, then ``model``, ``width``, ``dataset``, ``temperature``, ``seed``, ``loss_name``,
``n_params`` (:math:`N`), ``n_train`` (:math:`n`), ``n_test``, the dataset's knobs as
``data_<knob>``, ``label_noise``, ``capacity_ratio`` (:math:`N/n`), ``epochs`` (the last one
run), ``final_loss``, ``train_acc``, ``test_acc``, ``n_unsatisfied`` (:math:`N_\Delta`),
``frac_unsatisfied`` (:math:`N_\Delta/n`), ``unsat_per_param`` (:math:`N_\Delta/N`),
``first_zero_error_epoch``, ``first_zero_loss_epoch``, ``order_parameter``, ``phase`` (the
final phase of :mod:`umwelt.phases`), ``converged`` (``phase == "converged"``), ``run_status``
(``summary.json``'s), ``wall_s``, ``error`` (a failed point's), and with a Hessian of the last
epoch ``hessian_epoch``, ``neg_share``, ``lambda_min``, ``lambda_max``.
"""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path
from typing import Any

from sim.runs import Run, io
from sim.sweep import store
from umwelt.errors import UmweltError

__all__ = ["COLUMNS", "collect", "point_row", "read_rows", "write_csv"]

#: the columns after ``id``, ``status`` and the axes, in order
COLUMNS = (
    "model", "width", "dataset", "temperature", "seed", "loss_name", "n_params", "n_train",
    "n_test", "label_noise", "capacity_ratio", "epochs", "final_loss", "train_acc", "test_acc",
    "n_unsatisfied", "frac_unsatisfied", "unsat_per_param", "first_zero_error_epoch",
    "first_zero_loss_epoch", "order_parameter", "phase", "converged", "run_status", "wall_s",
    "error", "hessian_epoch", "neg_share", "lambda_min", "lambda_max",
)  # fmt: skip


def point_row(sweep_dir: Path, record: dict[str, Any], state: str) -> dict[str, Any]:
    """The row of one point (see the module docstring); ``None`` for what it has not got."""
    cfg = record["config"]
    row: dict[str, Any] = {"id": record["id"], "status": state, **record["values"]}
    row.update(dict.fromkeys(c for c in COLUMNS if c not in row))
    for key in ("model", "width", "dataset", "temperature", "seed", "label_noise"):
        row[key] = cfg.get(key) if key not in record["values"] else row[key]
    row["loss_name"] = cfg.get("loss")
    rec = store.failure(sweep_dir, record["id"])
    if rec is not None and state != "done":
        row["error"] = rec.get("error")
    d = store.point_dir(sweep_dir, record["id"])
    if not (d / "config.json").is_file():
        return row
    try:
        run = Run.open(d)
        stored, summary, metrics = run.stored, _summary(run), run.metrics()
    except UmweltError as e:  # a damaged run: the row says so, the rest collects
        row["error"] = str(e)
        return row
    info = stored.get("dataset_info") or {}
    for knob, value in (info.get("knobs") or {}).items():
        row[f"data_{knob}"] = value
    n_params, n_train = stored.get("n_parameters"), stored.get("n_train")
    row.update(n_params=n_params, n_train=n_train, n_test=stored.get("n_test"))
    if n_params and n_train:
        row["capacity_ratio"] = n_params / n_train
    last = summary or (metrics[-1] if metrics else {})
    if last:
        row.update(
            epochs=last.get("epoch"),
            final_loss=last.get("loss"),
            train_acc=last.get("train_acc"),
            test_acc=last.get("test_acc"),
            n_unsatisfied=last.get("n_unsatisfied"),
            frac_unsatisfied=last.get("frac_unsatisfied"),
            order_parameter=last.get("order_parameter"),
            wall_s=last.get("total_wall_s", last.get("wall_s")),
        )
        if row["n_unsatisfied"] is not None and n_params:
            row["unsat_per_param"] = row["n_unsatisfied"] / n_params
        phases = last.get("phases") if isinstance(last.get("phases"), dict) else {}
        row["phase"] = phases.get("final", last.get("phase"))
        row["converged"] = None if row["phase"] is None else row["phase"] == "converged"
    if summary:
        row["run_status"] = summary.get("status")
        row["first_zero_error_epoch"] = summary.get("first_zero_train_error_epoch")
        row["first_zero_loss_epoch"] = summary.get("first_zero_loss_epoch")
    try:
        hessian = run.hessian_rows("finite_T")
    except UmweltError:
        hessian = []
    if hessian:
        h = hessian[-1]
        row.update(hessian_epoch=h.get("epoch"), neg_share=h.get("neg_share"),
                   lambda_min=h.get("lambda_min"), lambda_max=h.get("lambda_max"))  # fmt: skip
    return row


def _summary(run: Run) -> dict[str, Any]:
    try:
        return run.summary()
    except UmweltError:
        return {}


def read_rows(sweep_dir: Path | str) -> list[dict[str, Any]]:
    """Every point's row, read from the run directories now (nothing is written).

    Raises:
        ConfigError: when ``sweep_dir`` is not a sweep directory.
    """
    sweep_dir = Path(sweep_dir)
    rec = store.read_sweep(sweep_dir)
    st = store.states(sweep_dir, [p["id"] for p in rec["points"]])
    return [point_row(sweep_dir, p, st[p["id"]]) for p in rec["points"]]


def collect(sweep_dir: Path | str) -> list[dict[str, Any]]:
    """Every point's row (:func:`read_rows`), written to ``phases.jsonl`` and ``phases.csv``
    (atomically).

    Raises:
        ConfigError: when ``sweep_dir`` is not a sweep directory.
    """
    sweep_dir = Path(sweep_dir)
    rows = read_rows(sweep_dir)
    io.write_jsonl(sweep_dir / "phases.jsonl", rows)
    write_csv(sweep_dir / "phases.csv", rows)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as CSV (atomically): every scalar column, in first-seen order."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k, v in r.items() if k not in columns and not isinstance(v, list | dict)]
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return io.atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue()))
