"""Capacity against data complexity at toy scale (THEORY.md §5, examples/04_three_phases.py):
on random labels, a net far too narrow for its data ends **frustrated** and a wide one
**converges**, each labelled by the default rule of :mod:`umwelt.phases` (online, in the rows,
and offline with the end-of-training Hessian).

The settings are those of the example's ``--quick`` run with a one-unit narrow net (17
parameters for n = 200 examples): its order parameter / risk stays ~5e-5, far below the rule's
``op_tol`` = 1e-3 (a two-unit net sits at 1e-4–1e-3 over seeds, too close to call). float64 and
η = 0.03 because the quadratic hinge's last margins creep up to 1 from below: the momentum
overshoot has to carry them across for N_Δ to reach 0 (see the example's docstring).
"""

import pytest

from sim import api
from sim.runs import Run

EPOCHS = 60
COMMON = dict(
    dataset="random-labels:n=200,dim=16,n_test=20",
    loss="quadratic-hinge",
    temperature=0.0,
    lr=0.03,
    batch_size=32,
    dtype="float64",
    epochs=EPOCHS,
    observe_at=(EPOCHS,),  # a run that stops earlier is observed at its last epoch
    figures=False,
)
HESSIAN = dict(examples=200, start_vectors=4, entries=0, bootstrap=20, figures=False)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _train(model: str, out, **kw) -> Run:
    return Run.open(api.train(model=model, out=out, **COMMON, **kw).run_dir)


def test_a_net_far_too_narrow_for_its_random_labels_is_frustrated(tmp_path):
    run = _train("mlp:1", tmp_path / "narrow", stop_at_phase="converged")
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == list(range(EPOCHS + 1))  # never converged
    last = rows[-1]
    assert last["phase"] == "frustration", last
    assert sum(r["phase"] == "frustration" for r in rows[-20:]) >= 18
    assert last["frac_unsatisfied"] > 0.5  # N_Δ ≫ 0: the risk plateaus well above 0
    assert last["loss"] > 0.1
    assert last["order_parameter"] / last["loss"] < 1e-3

    (h,) = api.hessian(run.path, epochs=(EPOCHS,), lanczos_steps=17, **HESSIAN)
    assert h["neg_share"] <= 0.05 and h["lambda_min"] >= -0.05 * h["lambda_max"]  # nearly PSD
    net = api.phases(run.path)["nets"]["finite_T"]
    assert net["hessian_epochs"] == [EPOCHS]
    assert net["summary"]["final"] == "frustration"
    assert "Hessian psd" in net["summary"]["final_reason"]


def test_a_wide_net_is_plastic_then_converges(tmp_path):
    run = _train("mlp:128", tmp_path / "wide", stop_at_phase="converged")
    rows = run.metrics()
    last = rows[-1]
    assert last["phase"] == "converged" and last["n_unsatisfied"] == 0 and last["loss"] == 0
    assert last["epoch"] < EPOCHS  # it stopped there
    phases = [r["phase"] for r in rows]
    assert phases.count("converged") == 1
    assert "plasticity" in phases and "frustration" not in phases
    began = run.summary()["phases"]["began"]
    assert began["plasticity"] < began["converged"] == last["epoch"]

    (h,) = api.hessian(run.path, epochs=(last["epoch"],), lanczos_steps=20, **HESSIAN)
    assert h["lambda_min"] == h["lambda_max"] == 0  # zero risk: no curvature at all
    assert api.phases(run.path)["nets"]["finite_T"]["summary"]["final"] == "converged"
