"""``umwelt sweep``: the sweep file, the points as train runs, continuing, failures, Ctrl-C,
the executors (local pool; submitit's local cluster for the SLURM path) and the collection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sim import api
from sim.runs import Run
from sim.runs.lock import LOCK_NAME, is_held
from sim.sweep import SweepConfig, prepare, run, store
from sim.sweep.executors import run_local
from sim.sweep.spec import parse_spec, point_id
from umwelt.errors import ConfigError

UMWELT = [sys.executable, "-m", "sim.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DATA = "random-labels:n=20,dim=4,n_test=10"
TINY = f"""
[train]
epochs = 3
batch_size = 10
observe_at = [0]
dataset = "{DATA}"
[grid]
model = ["mlp:2", "mlp:6"]
"""


def _spec(tmp_path: Path, text: str = TINY, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# -- the sweep file -------------------------------------------------------------------------------


def test_the_grid_is_a_product_and_zip_varies_together():
    spec = parse_spec(
        f"""
        [train]
        epochs = 2
        dataset = "{DATA}"
        [grid]
        model = ["mlp:2", "mlp:4", "mlp:8"]
        temperature = [0.0, 0.1]
        [zip]
        lr = [0.1, 0.01]
        batch_size = [5, 10]
        """
    )
    assert len(spec.points) == 3 * 2 * 2
    assert spec.axes == ("model", "temperature", "lr", "batch_size")
    pairs = {(p.config.lr, p.config.batch_size) for p in spec.points}
    assert pairs == {(0.1, 5), (0.01, 10)}  # zipped, not crossed
    assert len({p.id for p in spec.points}) == 12
    for p in spec.points:
        assert p.id == point_id(p.config) and p.config.epochs == 2
        assert "validated" in p.config.marks


def test_ids_are_stable_across_spellings_and_files():
    a = parse_spec(f'[grid]\nmodel = ["mlp:4"]\ndataset = ["{DATA}"]\nwidth = [0.5]\n')
    b = parse_spec(f'[train]\nwidth = "1/2"\ndataset = "{DATA}"\n[grid]\nmodel = [" mlp:4"]\n')
    assert a.points[0].id == b.points[0].id
    c = parse_spec(f'[grid]\nmodel = ["mlp:4"]\ndataset = ["{DATA}"]\nwidth = [0.25]\n')
    assert c.points[0].id != a.points[0].id


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[grid\nmodel = 1", "not valid TOML"),
        ("[grids]\nmodel = ['mlp:4']", "unknown table [grids]"),
        ("[grid]\nmodle = ['mlp:4']", "unknown option 'modle'"),
        ("[grid]\nout = ['x']", "out is not a sweep option"),
        ("[grid]\nmodel = 'mlp:4'", "model must be a non-empty list"),
        ("[grid]\nmodel = []", "model must be a non-empty list"),
        (f"[train]\nmodel='mlp:4'\ndataset='{DATA}'\n[grid]\nmodel = ['mlp:2']", "more than one"),
        (f"[train]\ndataset='{DATA}'\n[zip]\nmodel=['mlp:2','mlp:3']\nseed=[1]", "equal lengths"),
        (f"[train]\ndataset='{DATA}'\n[grid]\nmodel=['mlp:2']\nepochs=[3, -1]", "epochs=-1"),
        (f"[train]\ndataset='{DATA}'\n[grid]\nmodel=['mlp:2']\nlr=['fast']", "0.25 or 1/8"),
        (f"[train]\ndataset='{DATA}'\n[grid]\nmodel=['mlp:2']\nloss=['l1']", "model=mlp:2 loss=l1"),
        (f"[train]\ndataset='{DATA}'\n[grid]\nmodel=['mlp:2', ' mlp:2']", "are the same run"),
        ("[grid]\nmodel=['mlp:2']", "--dataset is required"),
        (f"[train]\ndataset='{DATA}'\nhessian_at='last'\nhessian_settings='nope=1'", "nope"),
        (f"[train]\ndataset='{DATA}'\n[grid]\nhessian_at=[[1]]", "cannot vary"),
    ],
)
def test_a_bad_sweep_file_names_the_table_or_point_and_option(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_spec(text, where="s.toml")
    assert needle in str(e.value) and str(e.value).startswith("s.toml")
    assert "\n" not in str(e.value)


def test_a_point_too_large_for_memory_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("UMWELT_MEMORY_LIMIT", "64M")
    spec = _spec(tmp_path, f"[train]\ndataset='{DATA}'\n[grid]\nmodel=['mlp:2', 'mlp:100000']")
    with pytest.raises(ConfigError, match="point model=mlp:100000"):
        run(SweepConfig(spec=spec, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_bad_sweep_options_are_one_line_and_exit_2(tmp_path):
    spec = _spec(tmp_path)
    cases = [
        (["sweep", str(spec)], "--out DIR is required"),
        (["sweep", str(spec), "--out", str(tmp_path / "o"), "--executor", "pbs"], "executor"),
        (["sweep", str(spec), "--out", str(tmp_path / "o"), "--jobs", "0"], "jobs"),
        (["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")], "none.toml"),
        (["sweep", str(tmp_path), "--collect"], "not a sweep directory"),
        (["sweep", str(spec), "--out", str(spec)], "spec.toml"),
    ]
    for args, needle in cases:
        res = subprocess.run([*UMWELT, *args], env=ENV, capture_output=True, text=True)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2, (args, res.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
        assert not (tmp_path / "o").exists()


def test_without_submitit_the_slurm_executor_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now fails
    with pytest.raises(ConfigError, match=r"pip install 'umwelt\[slurm\]'"):
        prepare(SweepConfig(spec=_spec(tmp_path), out=tmp_path / "o", executor="slurm"))
    assert not (tmp_path / "o").exists()


def test_a_dry_run_lists_points_and_cost_and_writes_nothing(tmp_path):
    res = subprocess.run(
        [*UMWELT, "sweep", str(_spec(tmp_path)), "--out", str(tmp_path / "o"), "--dry-run"],
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "2 points" in res.stdout and "estimated total" in res.stdout
    assert not (tmp_path / "o").exists()
    est = run(SweepConfig(spec=_spec(tmp_path), out=tmp_path / "o", dry_run=True)).estimate
    assert [e["n_params"] for e in est] == [4 * 2 + 2, 4 * 6 + 6]  # no biases
    assert est[1]["flops"] > est[0]["flops"] > 0


# -- running and continuing -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    spec = _spec(tmp)
    result = api.sweep(spec, out=tmp / "out", jobs=2, figures=False)
    return spec, tmp / "out", result


def test_every_point_is_an_ordinary_train_run(swept):
    _, out, result = swept
    assert result.counts()["done"] == 2
    rec = json.loads((out / "sweep.json").read_text())
    for p in rec["points"]:
        run_ = Run.open(out / "points" / p["id"])
        assert run_.kind == "train" and run_.config.model == p["values"]["model"]
        assert run_.summary()["status"] == "completed" and len(run_.metrics()) == 4
        log = (out / "logs" / f"{p['id']}.log").read_text()
        assert f"{max(1, len(os.sched_getaffinity(0)) // 2)} threads" in log  # cores // jobs
    assert not is_held(out)


def test_the_table_has_a_row_per_point_with_the_run_values(swept):
    _, out, result = swept
    rows = [json.loads(line) for line in (out / "phases.jsonl").read_text().splitlines()]
    assert rows == json.loads(json.dumps(result.rows))
    for r in rows:
        m = Run.open(out / "points" / r["id"]).metrics()[-1]
        assert r["status"] == "done" and r["final_loss"] == m["loss"]
        assert r["n_unsatisfied"] == m["n_unsatisfied"] and r["n_train"] == 20
        assert r["unsat_per_param"] == m["n_unsatisfied"] / r["n_params"]
        assert r["capacity_ratio"] == r["n_params"] / 20 and r["data_n"] == 20
    header = (out / "phases.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "status", "model"] and "frac_unsatisfied" in header


def test_running_it_again_changes_no_point_and_collect_rebuilds_the_table(swept, tmp_path):
    spec, out, _ = swept
    before = _tree(out / "points")
    api.sweep(spec, out=out, figures=False)
    assert _tree(out / "points") == before  # finished points are skipped
    table = (out / "phases.csv").read_text()
    (out / "phases.csv").unlink()
    api.sweep(out=out, collect=True, figures=False)
    assert (out / "phases.csv").read_text() == table


def test_another_sweep_file_is_refused_unless_extend(swept, tmp_path):
    spec, out, _ = swept
    other = _spec(tmp_path, TINY.replace('"mlp:6"]', '"mlp:6", "mlp:3"]'), "other.toml")
    with pytest.raises(ConfigError, match="holds another sweep"):
        api.sweep(other, out=out, figures=False)
    before = _tree(out / "points")
    res = api.sweep(other, out=out, figures=False, extend=True)
    assert res.counts()["done"] == 3 and len(res.rows) == 3
    after = _tree(out / "points")
    assert {k: v for k, v in after.items() if k in before} == before  # old points kept as is
    assert len(json.loads((out / "sweep.json").read_text())["specs"]) == 2


def test_a_second_sweep_writer_is_refused_naming_the_holder(swept, tmp_path):
    spec, out, _ = swept
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"pid": sleeper.pid, "host": socket.gethostname(), "command": "umwelt sweep",
                "started": "t"}  # fmt: skip
        (out / LOCK_NAME).write_text(json.dumps(info))
        with pytest.raises(ConfigError, match=f"process {sleeper.pid}"):
            api.sweep(spec, out=out, figures=False)
    finally:
        sleeper.kill()
        sleeper.wait()
        (out / LOCK_NAME).unlink()


def test_an_interrupted_point_is_resumed_exactly(tmp_path):
    from sim.train import prepare as prepare_train
    from sim.train import run as train

    text = TINY.replace('["mlp:2", "mlp:6"]', '["mlp:6"]').replace(
        "epochs = 3", "epochs = 3\ncheckpoint_every = 1")  # fmt: skip
    out = tmp_path / "out"
    spec = parse_spec(text)
    store.write_sweep(out, store.merge(out, spec, extend=False))
    (point,) = spec.points
    cfg = replace(point.config, out=store.point_dir(out, point.id))
    steps = []

    def stop(info):
        steps.append(info)
        if len(steps) == 3:  # epoch 2, after its first step's checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # as a killed worker or a Ctrl-C leaves it
        train(prepare_train(cfg), on_step=stop, figures=False)
    assert store.point_state(out, point.id) == "interrupted"
    assert run_local(out, [point.id], jobs=1, threads=1) == {point.id: "done"}
    whole = train(prepare_train(replace(cfg, out=tmp_path / "whole")), figures=False)
    got = Run.open(cfg.out).metrics()
    for key in ("loss", "order_parameter", "n_unsatisfied", "test_loss"):
        assert [r[key] for r in got] == [r[key] for r in whole.metrics], key


def test_a_failing_point_is_retried_once_then_recorded_and_never_stops_the_sweep(tmp_path):
    out = tmp_path / "out"
    spec = parse_spec(_spec(tmp_path).read_text())
    rec = store.merge(out, spec, extend=False)
    bad = rec["points"][0]
    bad["config"]["dataset"] = str(tmp_path / "gone")  # vanished after the sweep was checked
    store.write_sweep(out, rec)
    states = run_local(out, [p["id"] for p in rec["points"]], jobs=2, threads=1)
    assert states == {bad["id"]: "failed", rec["points"][1]["id"]: "done"}
    failure = store.failure(out, bad["id"])
    assert failure["attempts"] == 2 and "gone" in failure["error"]
    again = run_local(out, [bad["id"]], jobs=1, threads=1)  # failed for good: not started
    assert again == {bad["id"]: "failed"} and store.failure(out, bad["id"])["attempts"] == 2
    (tmp_path / "gone").write_text("")  # still not a dataset
    res = run(SweepConfig(out=out, collect=True))
    (row,) = [r for r in res.rows if r["id"] == bad["id"]]
    assert row["status"] == "failed" and "gone" in row["error"]


# -- processes ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_leaves_every_point_resumable(tmp_path):
    spec = _spec(tmp_path, TINY.replace("epochs = 3", "epochs = 400").replace(
        "observe_at = [0]", "observe_at = [0]\ncheckpoint_every = 1"))  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.Popen([*UMWELT, "sweep", str(spec), "--out", str(out), "--jobs", "2",
                             "--quiet", "--no-figures"], env=ENV, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        t = time.time()
        while not list(out.glob("points/*/checkpoints/last.pt")):
            assert proc.poll() is None and time.time() - t < 120, "no point started"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "interrupted; every point is resumable: run the same command again"
    ]
    ids = [p["id"] for p in json.loads((out / "sweep.json").read_text())["points"]]
    states = store.states(out, ids)
    assert "interrupted" in states.values() and "running" not in states.values()
    assert not list(out.rglob("*.tmp")) and not is_held(out)
    assert (out / "phases.csv").is_file()  # collected on the way out
    for pid, s in states.items():
        if s == "interrupted":
            assert Run.open(out / "points" / pid).summary()["status"] == "interrupted"


@pytest.mark.slow
def test_the_slurm_path_through_submitits_local_cluster(tmp_path):
    pytest.importorskip("submitit")  # the test extra installs it: CI runs this
    out = tmp_path / "out"
    res = api.sweep(_spec(tmp_path), out=out, executor="slurm", slurm_cluster="local",
                    slurm_cpus_per_job=1, figures=False)  # fmt: skip
    assert res.counts()["done"] == 2
    jobs = json.loads((out / "slurm" / "jobs.json").read_text())
    assert set(jobs) == set(res.states)
    for r in res.rows:
        assert Run.open(out / "points" / r["id"]).summary()["status"] == "completed"


# -- the boundary and the figures -----------------------------------------------------------------


def test_the_boundary_is_estimated_per_facet_value_as_umwelt_boundary_does():
    from sim.sweep.boundary import N_BOOT, SEED, estimate
    from umwelt.boundary import boundary_from_rows

    rows = []
    for T in (0.0, 0.1):
        for n in (10, 20, 40):
            for N in (10, 20, 40, 80, 160, 320):
                for s in range(3):
                    ok = N > 4 * n if T else N > 2 * n or (N == 2 * n and s == 0)
                    rows.append({"temperature": T, "n_train": n, "n_params": N, "seed": s,
                                 "converged": ok, "model": f"mlp:{N}"})  # fmt: skip
    rows.append({"temperature": 0.0, "n_train": 20, "n_params": 10, "converged": None})
    got = estimate(rows, ["model", "dataset", "temperature", "seed"], x="n_params", y="n_train",
                   facet="temperature")  # fmt: skip
    assert [g["facet"] for g in got["groups"]] == [{"temperature": 0.0}, {"temperature": 0.1}]
    for g in got["groups"]:
        mine = [r for r in rows if r["temperature"] == g["facet"]["temperature"]]
        want = boundary_from_rows(mine, n_boot=N_BOOT, seed=SEED)
        assert [p["n_star"] for p in g["points"]] == [w.threshold.estimate for w in want]
        assert [p["low"] for p in g["points"]] == [w.threshold.ci_low for w in want]
        assert g["power_law"]["status"] == "fit"
    t0, t1 = (g["points"] for g in got["groups"])
    assert all(a["n_star"] < b["n_star"] for a, b in zip(t0, t1))  # the hotter net needs more
    assert t0[1]["frac_converged"] == [0, 0, 1 / 3, 1, 1, 1]  # at N = 40 one seed of three


def test_plot_draws_the_phase_diagrams_of_a_sweep(swept, tmp_path):
    _, out, _ = swept
    paths = api.plot(out)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{f}.png" for f in
                           ("phase_diagram", "frac_unsatisfied", "final_loss", "boundary_fits",
                            "collapse"))  # fmt: skip
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    with pytest.raises(ConfigError, match="--y 'model' is not a numeric column"):
        api.plot(out, y="model")
    res = subprocess.run([*UMWELT, "plot", str(out), "--x", "nope"], env=ENV,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nope" in res.stderr


def test_hessian_at_last_analyses_each_points_last_epoch(tmp_path):
    text = TINY.replace('["mlp:2", "mlp:6"]', '["mlp:3"]') + ("[zip]\nloss = ['quadratic-hinge']\n")
    settings = '"lanczos_steps=8,start_vectors=4,entries=0,grid_points=101"'
    text = text.replace("[grid]", f'hessian_at = "last"\nhessian_settings = {settings}\n[grid]')
    out = tmp_path / "out"
    res = api.sweep(_spec(tmp_path, text), out=out, jobs=1, figures=False)
    (row,) = res.rows
    h = Run.open(out / "points" / row["id"]).hessian_rows()
    assert [r["epoch"] for r in h] == [3] and row["hessian_epoch"] == 3
    assert row["neg_share"] == h[0]["neg_share"] and row["lambda_max"] == h[0]["lambda_max"]
    assert row["lambda_min"] <= row["lambda_max"]
