"""``umwelt reproduce``: the quick reproduction end to end (CI runs it) — every claim a row with a
verdict, a self-contained page, an interrupted reproduction continued without retraining its
finished epochs, a finished one not redone, another reproduction's directory refused with
nothing changed — and each claim's rule on fabricated evidence."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_reproduce_report import _Checker
from typer.testing import CliRunner

from sim import api
from sim.cli import app
from sim.reproduce import CLAIMS, VERDICTS, Evidence, ReproduceConfig, evaluate, prepare, run
from sim.reproduce import claims as rules
from sim.runs import Run
from umwelt.errors import ConfigError

runner = CliRunner()
CHROMIUM = Path("/usr/bin/chromium")
STOP_AT_STEP = 30  # quick: 8 steps an epoch, so inside epoch 4 (epochs 0-3 checkpointed)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    """A quick reproduction interrupted inside epoch 4 (through the API), then continued by the
    command: ``(OUT, the rows before the interruption, the command's result)``."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    steps = 0

    def stop(info: dict) -> None:
        nonlocal steps
        steps += 1
        if steps == STOP_AT_STEP:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(ReproduceConfig(out=out, quick=True), on_step=stop)
    before = Run.open(out / "train").metrics()
    assert not (out / "REPORT.md").exists() and (out / "reproduce.json").is_file()
    res = runner.invoke(app, ["reproduce", str(out), "--quick"])
    assert res.exit_code == 0, res.output
    return out, before, res


def _table(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows[1:]]


def test_every_claim_is_a_row_with_a_verdict_and_every_setting_is_recorded(reproduction):
    out, _, res = reproduction
    md = (out / "REPORT.md").read_text()
    table = _table(md)
    assert len(table) == len(CLAIMS) >= 14
    for row in table:
        verdict = row[4]
        assert verdict.startswith(VERDICTS), row
        if verdict.startswith(VERDICTS[2]):
            assert "(" in verdict, row  # with its reason
        fig = row[5]
        if fig != "—":
            link = fig.partition("](")[2].rstrip(")")
            assert (out / link).is_file(), link
    wheres = " ".join(r[1] for r in table)
    for where in ("eq. 14", "fig. 3a", "fig. 4a", "fig. 4b", "fig. 8b", "fig. 8a", "fig. 7b",
                  "6b", "fig. 7c", "§5"):  # fmt: skip
        assert where in wheres, where
    settings = json.loads(md.split("```json", 1)[1].split("```", 1)[0])
    assert settings["reproduction"]["quick"] is True and settings["reproduction"]["seed"] == 0
    assert len(settings["dataset"]["arrays_sha256"]) == 64
    assert {"torch", "numpy", "umwelt"} <= settings["versions"].keys()
    assert settings["train_run"]["config"]["seeds"]["rank_0"]
    assert settings["hessian"]["seeds"] and settings["circuits"]["samples"] == 20_000
    assert "8.68·10¹²" in md and "supplement" in md and "11.9 %" in md  # stated once
    assert md.count("8.68·10¹²") == 1
    assert "report:" in res.stdout and "phases" in res.stdout  # the table, then the paths


def test_the_page_is_self_contained_valid_html(reproduction):
    out, _, _ = reproduction
    page = (out / "report.html").read_text()
    checker = _Checker()
    checker.feed(page)
    assert not checker.errors and checker.stack == []
    assert checker.rows == len(CLAIMS)
    assert checker.urls and all(u.startswith(("data:image/png;base64,", "#")) for u in checker.urls)
    assert len(checker.images) == len(set(checker.images)) >= 6  # each figure once, inline
    assert "<link" not in page and "<script" not in page and "http" not in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no headless browser at /usr/bin/chromium")
def test_the_page_loads_in_a_headless_browser(reproduction, tmp_path):
    out, _, _ = reproduction
    shutil.copy(out / "report.html", tmp_path / "report.html")
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         (tmp_path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert dom.count("<tr>") >= len(CLAIMS) + 1 and "Reproduction report" in dom


def test_an_interrupted_reproduction_continues_without_retraining_finished_epochs(reproduction):
    out, before, _ = reproduction
    rows = Run.open(out / "train").metrics()
    assert [r["epoch"] for r in before] == [0, 1, 2, 3]
    assert rows[: len(before)] == before  # the same rows, wall times included: not retrained
    assert rows[-1]["epoch"] > 3 and Run.open(out / "train").summary()["status"].startswith(
        ("completed", "converged")
    )


def test_a_finished_reproduction_is_not_redone(reproduction):
    out, _, _ = reproduction
    kept = {p: _tree(out / p) for p in ("train", "circuits")}
    mtime = (out / "train" / "checkpoints" / "last.pt").stat().st_mtime_ns
    res = runner.invoke(app, ["reproduce", str(out), "--quick", "--quiet"])
    assert res.exit_code == 0, res.output
    assert {p: _tree(out / p) for p in kept} == kept
    assert (out / "train" / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--quick", "--seed", "1"], "holds another reproduction: its seed = 0, this one's 1"),
     (["--quick", "--dataset", "teacher:n=64,dim=16"], "its dataset = "),
     (["--scale", "cpu"], "--dataset is required for the cpu scale")],
)  # fmt: skip
def test_another_reproductions_out_is_refused_and_nothing_changes(reproduction, args, needle):
    out, _, _ = reproduction
    kept = _tree(out)
    res = runner.invoke(app, ["reproduce", str(out), *args])
    assert res.exit_code == 2 and needle in res.stderr and res.stderr.count("\n") == 1, res.output
    assert _tree(out) == kept


def test_the_api_runs_the_same_reproduction(reproduction):
    out, _, _ = reproduction
    r = api.reproduce(out, quick=True)
    assert r.train_state == "done" and [c.key for c in r.claims] == [
        c.key for c in evaluate(Evidence(scale="quick", rows=[]))
    ]
    assert r.report_md == out / "REPORT.md"


# -- the settings ---------------------------------------------------------------------------------


def test_every_preset_validates_to_every_setting():
    for kw in ({"quick": True}, {"dataset": "cifar-10-python.tar.gz"}):
        cfg = ReproduceConfig(out="o", **kw).validated()
        unset = [k for k, v in cfg.to_json().items() if v is None]
        assert set(unset) <= {"classes", "subset", "subset_test"}, unset
        assert cfg.validated() is cfg and cfg.train_config().loss == "hinge"
    cpu = ReproduceConfig(out="o", dataset="data.tar.gz").validated()
    assert (cpu.model, cpu.width, cpu.subset, cpu.epochs) == ("vgg12", 0.125, 4000, 160)
    assert cpu.hessian_at == (0, 10, 20, 30, 40, 100, 160)  # the paper's epochs, clipped
    assert cpu.train_config().out == Path("o/train")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [({"scale": "tpu"}, "scale must be one of cpu, gpu, got 'tpu'"),
     ({}, "--dataset is required for the cpu scale: a CIFAR-10 path in one of these formats: "
          "official python batches"),
     ({"dataset": "digits"}, "must be a CIFAR-10 path"),
     ({"dataset": "", "quick": True}, "dataset must be a CIFAR-10 path, got ''"),
     ({"quick": "yes"}, "quick must be True or False, got 'yes'"),
     ({"quick": True, "seed": -2}, "seed must be an integer ≥ 0, got -2"),
     ({"quick": True, "circuit_samples": 1}, "circuit samples must be an integer ≥ 2, got 1"),
     ({"quick": True, "hessian_at": (99,)}, "hessian-at epoch 99 is outside the run's epochs "
                                             "0..40")],
)  # fmt: skip
def test_bad_settings_name_the_value(kw, needle):
    with pytest.raises(ConfigError, match=None) as e:
        ReproduceConfig(out="o", **kw).validated()
    assert needle in str(e.value)


def test_prepare_writes_nothing_and_refuses_what_is_not_a_reproduction(tmp_path):
    with pytest.raises(ConfigError, match="OUT is required"):
        prepare(ReproduceConfig(quick=True))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        prepare(ReproduceConfig(out=tmp_path / "file", quick=True))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no reproduction"):
        prepare(ReproduceConfig(out=tmp_path / "junk", quick=True))
    plan = prepare(ReproduceConfig(out=tmp_path / "new", quick=True))
    assert plan.train_state == "new" and plan.stored is None and plan.dataset_sha256 is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "junk"]


# -- the rules, on fabricated evidence ------------------------------------------------------------


def test_within_is_an_equivalence_test():
    assert rules.within(0.01, 0.09, high=0.1) == "holds"
    assert rules.within(0.11, 0.5, high=0.1) == "does not hold"
    assert rules.within(0.05, 0.15, high=0.1) == "not measurable at this scale"
    assert rules.within(0.96, 0.99, low=0.95) == "holds"


def _circuits(values: dict[str, np.ndarray]) -> dict:
    from umwelt.circuits import symmetry_stats

    return {"symmetry": {o: symmetry_stats(v).as_dict() for o, v in values.items()}}


@pytest.mark.parametrize(
    ("make", "verdict"),
    [(lambda r: r.normal(size=4000), "holds"),
     (lambda r: r.exponential(size=4000) - 0.3, "does not hold"),  # skewed: D ≈ 0.3
     (lambda r: r.normal(size=100), "not measurable at this scale")],  # D ± 0.22
)  # fmt: skip
def test_circuit_symmetry_holds_fails_or_cannot_tell(make, verdict):
    rng = np.random.default_rng(0)
    samples = {o: make(rng) for o in ("psi", "omega1", "omega2")}
    ev = Evidence(scale="cpu", rows=[], circuits=_circuits(samples))
    c = rules.circuit_symmetry(ev)
    assert c.verdict == verdict, c.reason
    assert c.ci[0] <= c.measured <= c.ci[1]


def _hessian_rows(fracs, se_fracs, coupling):
    return [
        {"epoch": e, "m2": 1.0 / (1 + e), "m2_se": 0.01, "loss": 1.0 / (1 + e),
         "density_asymmetry": 0.01, "density_asymmetry_se": 0.01, "neg_share": 0.5,
         "frac_means_below_015": s, "frac_means_below_015_lo": s - 0.01,
         "frac_means_below_015_hi": s + 0.01, "frac_means_below_015_per_example": f,
         "frac_means_below_015_per_example_lo": f - 0.005,
         "frac_means_below_015_per_example_hi": min(1.0, f + 0.005),
         "coupling_set_fraction": c, "coupling_set_fraction_lo": c / 2,
         "coupling_set_fraction_hi": c * 1.5}
        for e, f, s, c in zip((0, 10, 20), fracs, se_fracs, coupling)
    ]  # fmt: skip


def test_the_hessian_claims_on_rows_like_the_papers():
    rows = _hessian_rows((0.96, 0.97, 0.985), (0.1, 0.11, 0.1), (1e-5, 1e-4, 3e-4))
    ev = Evidence(scale="gpu", rows=[], hessian_rows=rows, n_params=10**7)
    got = {c.key: c for c in evaluate(ev)}
    assert got["means_015_per_example"].verdict == "holds"
    se = got["means_015_se"]
    assert se.verdict == "does not hold" and "erf(0.15/√2) = 11.9%" in se.reason
    assert got["esd_symmetric"].verdict == "holds"
    assert got["esd_contracts"].verdict == "holds" and got["esd_contracts"].measured < 1
    assert got["correlations_sparse"].verdict == "holds"  # 1e-5 → 3e-4, intervals apart
    assert got["coupling_fraction"].verdict == "holds"  # 3e-4 [1.5e-4, 4.5e-4] within ×3
    wide = _hessian_rows((0.96,) * 3, (0.1,) * 3, (1e-5, 1e-4, 1e-3))
    wide[-1] |= {"coupling_set_fraction_lo": 0.0, "coupling_set_fraction_hi": 0.01}
    c = rules.coupling_fraction(Evidence(scale="gpu", rows=[], hessian_rows=wide))
    assert c.verdict == "not measurable at this scale"


def _rows(n: int, *, converge: bool, ratio: float = 0.1) -> list[dict]:
    out = []
    for e in range(n + 1):
        L = 0.0 if converge and e == n else 0.7**e
        out.append({"epoch": e, "loss": L, "order_parameter": ratio * L, "train_acc":
                    1.0 if L == 0 else 0.9, "test_acc": 0.8})  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("phases", "scale", "verdict"),
    [(["undetermined", "plasticity", "plasticity", "converged"], "cpu", "holds"),
     (["undetermined", "plasticity", "plasticity"], "cpu", "not measurable at this scale"),
     (["undetermined", "plasticity", "plasticity"], "gpu", "does not hold"),
     (["plasticity", "frustration"], "cpu", "does not hold"),
     (["undetermined"], "cpu", "not measurable at this scale")],
)  # fmt: skip
def test_the_phase_sequence(phases, scale, verdict):
    ev = Evidence(scale=scale, rows=[], phases=list(enumerate(phases)))
    assert rules.phase_sequence(ev).verdict == verdict


def test_the_order_parameter_claims():
    ev = Evidence(scale="cpu", rows=_rows(30, converge=True))
    got = {c.key: c for c in evaluate(ev)}
    assert got["op_ratio"].verdict == "holds" and math.isclose(got["op_ratio"].measured, 0.1)
    assert got["op_rate"].verdict == "holds" and math.isclose(got["op_rate"].measured, 1.0)
    assert got["op_zero"].verdict == "holds" and got["zero_error"].verdict == "holds"
    far = Evidence(scale="cpu", rows=_rows(30, converge=False, ratio=1e-3))
    assert rules.order_parameter_ratio(far).verdict == "does not hold"
    stopped = Evidence(scale="cpu", rows=_rows(5, converge=False), phases=[(5, "plasticity")])
    assert rules.order_parameter_zero(stopped).verdict == "not measurable at this scale"


def test_without_data_every_claim_says_why_it_cannot_tell():
    for c in evaluate(Evidence(scale="cpu", rows=[])):
        assert c.verdict == "not measurable at this scale" and c.reason, c.key
