"""``umwelt phases RUN``: offline labels equal the online ones, other thresholds, old runs."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from sim import api
from sim.cli import app

runner = CliRunner()
DATA = "teacher:n=60,dim=6,n_test=20"


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sim"
    api.simulate(temperature=0.2, hidden=(12,), epochs=14, dataset=DATA, samples=3, out=out)
    return out


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "train"
    api.train(model="mlp:12", dataset=DATA, epochs=12, batch_size=10, lr=0.05, out=out,
              observe_at=(0,), figures=False)  # fmt: skip
    return out


def _tree(d):
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*")}


@pytest.mark.parametrize("which", ["sim_run", "train_run"])
def test_offline_labels_equal_the_online_ones(which, request):
    d = request.getfixturevalue(which)
    before = _tree(d)
    res = runner.invoke(app, ["phases", str(d), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert set(r["nets"]) == ({"finite_T", "relu"} if which == "sim_run" else {"finite_T"})
    for net in r["nets"].values():
        assert net["missing"] == []
        assert all(e["phase"] == e["recorded"] for e in net["epochs"])
    assert _tree(d) == before  # nothing written


def test_other_thresholds_relabel_without_retraining(sim_run):
    default = api.phases(sim_run)["nets"]["relu"]["epochs"]
    short = api.phases(sim_run, window=3)["nets"]["relu"]["epochs"]
    assert [e["phase"] for e in default[:9]] == ["undetermined"] * 9  # W = 10 epochs
    assert (
        [e["phase"] for e in short[:2]] == ["undetermined"] * 2 != [e["phase"] for e in short[2:4]]
    )
    assert sum(e["phase"] == "undetermined" for e in short) < sum(
        e["phase"] == "undetermined" for e in default
    )
    assert any(e["phase"] != e["recorded"] for e in short)
    table = runner.invoke(app, ["phases", str(sim_run), "--window", "3"])
    assert table.exit_code == 0 and "final:" in table.output and "relu" in table.output


def test_a_run_from_before_the_phases_says_what_is_missing(sim_run, tmp_path):
    d = tmp_path / "old"
    shutil.copytree(sim_run, d)
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    new = ("n_unsatisfied", "frac_unsatisfied", "margin_quantiles", "phase")
    old = [{k: v for k, v in r.items() if k.removeprefix("relu_") not in new} for r in rows]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    r = api.phases(d)
    fin = r["nets"]["finite_T"]
    assert fin["missing"] == ["n_unsatisfied", "frac_unsatisfied"]
    assert {e["phase"] for e in fin["epochs"]} == {"undetermined"}
    assert r["nets"]["relu"]["missing"] == ["relu_n_unsatisfied", "relu_frac_unsatisfied"]
    assert fin["epochs"][0]["recorded"] is None
    res = runner.invoke(app, ["phases", str(d)])
    assert res.exit_code == 0 and "missing fields" in res.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--window", "1"], "window must be an integer ≥ 2"),
        (["--flat-tol", "1.5"], "flat_tol must be in [0, 1), got 1.5"),
        (["--op-tol", "-1"], "op_tol"),
    ],
)
def test_bad_thresholds_are_one_line(sim_run, args, needle):
    before = _tree(sim_run)
    res = runner.invoke(app, ["phases", str(sim_run), *args])
    assert (
        res.exit_code == 2
        and res.output.strip().splitlines() == [f"error: {needle}"]
        or (
            res.exit_code == 2
            and needle in res.output
            and len(res.output.strip().splitlines()) == 1
        )
    ), res.output
    assert _tree(sim_run) == before


def test_not_a_run(tmp_path):
    res = runner.invoke(app, ["phases", str(tmp_path)])
    assert res.exit_code == 2 and "no config.json" in res.output and "Traceback" not in res.output
