"""Eq. 20 through training (umwelt.circuits.moments, ``umwelt circuits --run``): the assembly
moments of one net over inputs, a planted broken weight symmetry, and eq. 20's prediction.

Oracles: every circuit of a tiny net listed in plain Python (its value, its perturbations,
summed by hand) for the measured moments, and — averaged over the sign flips ±A_l of the
symmetric part, the gates held fixed — for the μ term; at T = ∞, where the gates do not depend
on the weights, the measured means of seeded He nets against their μ terms; the exact
E[f²] = 2⟨x²⟩∏c² and E[f] = 0 of ReLU nets with symmetric weights; the μ term's degree L − k in
the shift.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from sim import api
from sim.cli import app
from sim.runs import Run
from umwelt import ConfigError, LayeredNetwork, ShapeError
from umwelt.circuits import ASSEMBLY_ORDERS, net_assembly_moments, plant_mean
from umwelt.circuits.moments import _gate_rng

runner = CliRunner()
DATA = "teacher:n=40,dim=5,n_test=10"


# -- the oracle: every circuit, by hand ----------------------------------------------------------


def _listed(weights, x, gates, entries):
    """``(f, gradient entries in row-major order per layer, Hessian entries)`` of one input, by
    listing every circuit ``(i_0, ..., i_{L-1})`` and its factors (THEORY.md §3)."""
    L = len(weights)
    widths = [weights[0].shape[0]] + [W.shape[1] for W in weights]
    grads = [np.zeros(W.shape) for W in weights]
    f, hess = 0.0, np.zeros(len(entries))
    for path in itertools.product(*(range(n) for n in widths[:-1])):
        units = (*path, 0)  # the output unit closes every circuit
        gate = [gates[l][units[l + 1]] if l < L - 1 else 1.0 for l in range(L)]
        factor = [weights[l][units[l], units[l + 1]] * gate[l] for l in range(L)]
        f += x[units[0]] * math.prod(factor)
        for l in range(L):  # Ω^(l): the weight of layer l differentiated out, its gate stays
            grads[l][units[l], units[l + 1]] += x[units[0]] * math.prod(
                factor[:l] + [gate[l]] + factor[l + 1 :]
            )
        for j, (l1, a, b, l2, c, d) in enumerate(entries):
            if units[l1 - 1 : l1 + 1] == (a, b) and units[l2 - 1 : l2 + 1] == (c, d):
                fs = list(factor)
                fs[l1 - 1], fs[l2 - 1] = gate[l1 - 1], gate[l2 - 1]
                hess[j] += x[units[0]] * math.prod(fs)
    return f, np.concatenate([g.ravel() for g in grads]), hess


def _listed_moments(weights, X, gates, entries):
    """``(B, 3, 2)``: per input and order the average value and the average square."""
    out = np.zeros((len(X), 3, 2))
    for b, x in enumerate(X):
        f, g, h = _listed(weights, x, [gl[b] for gl in gates], entries)
        for k, v in enumerate((np.array([f]), g, h)):
            out[b, k] = v.mean(), (v * v).mean()
    return out


@pytest.mark.parametrize("T", [0.0, 0.7])
def test_measured_moments_and_the_mu_term_against_circuits_listed_one_by_one(T):
    net = LayeredNetwork.he_normal((3, 3, 2, 1), seed=4)
    planted, plant = plant_mean(net, 0.6, 1.5, seed=3)  # a broken circuit with open gates
    X = np.random.default_rng(5).normal(0.5, 1.0, size=(3, 3))
    m = net_assembly_moments(planted, X, temperature=T, entries=12, seed=7, planted=plant)
    s = planted.relu_sample(X) if T == 0 else planted.sample(X, T, _gate_rng(7))
    gates = [g.astype(float) for g in s.gates]  # the gates the measurement used
    entries = [tuple(int(v) for v in e) for e in m.hessian_entries]
    assert m.entries == 12 and len(entries) == 12 and all(e[0] != e[3] for e in entries)

    per = _listed_moments(planted.weights, X, gates, entries)
    for k, key in enumerate(ASSEMBLY_ORDERS):
        assert m.mean[key] == pytest.approx(per[:, k, 0].mean(), rel=1e-12, abs=1e-14)
        assert m.second[key] == pytest.approx(per[:, k, 1].mean(), rel=1e-12)
        assert m.mean_se[key] == pytest.approx(per[:, k, 0].std(ddof=1) / math.sqrt(3), rel=1e-9)

    # the μ term: the mean over W_l = ±A_l + S_l (2^L sign patterns, gates held fixed) — every
    # circuit carries one weight of each layer, so this is its mean over independent signs too
    A = [W - S for W, S in zip(planted.weights, plant.shifts)]
    flips = [
        _listed_moments([g * a + S for g, a, S in zip(signs, A, plant.shifts)], X, gates, entries)
        for signs in itertools.product((-1.0, 1.0), repeat=net.depth)
    ]
    averaged = np.zeros(3)
    for k in range(3):  # the orders' means are linear: average the per-input means over flips
        averaged[k] = np.mean([p[:, k, 0].mean() for p in flips])
    for k, key in enumerate(ASSEMBLY_ORDERS):
        assert m.predicted_mean[key] == pytest.approx(averaged[k], rel=1e-10, abs=1e-14)
    assert all(abs(v) > 0.1 for v in m.predicted_mean.values())  # something to predict


def test_the_mu_term_has_degree_L_minus_k_in_the_shift():
    """At T = ∞ the gates are fair coins, the same for every shift: the μ term of order k is a
    sum of products of the L − k planted shifts left in each circuit."""
    net = LayeredNetwork.he_normal((5, 5, 5, 5, 1), seed=1)
    X = np.random.default_rng(2).normal(1.0, 1.0, size=(6, 5))
    mu = {}
    for s in (1.0, 2.0):
        p, plant = plant_mean(net, 0.5, s, seed=3)
        mu[s] = net_assembly_moments(p, X, temperature=math.inf, seed=4, planted=plant)
    for k, key in enumerate(ASSEMBLY_ORDERS):
        assert mu[1.0].predicted_mean[key] != 0
        ratio = mu[2.0].predicted_mean[key] / mu[1.0].predicted_mean[key]
        assert ratio == pytest.approx(2.0 ** (net.depth - k), rel=1e-10), key


# -- the prediction over nets ----------------------------------------------------------------------


def _over_nets(nets, widths, T, plant=None, entries=16):
    """``(nets, 3, 2)``: per net and order the measured mean and the μ term; and ``(nets, 2)``:
    the measured second moment of f and its prediction."""
    means, seconds = np.zeros((nets, 3, 2)), np.zeros((nets, 2))
    for r in range(nets):
        net = LayeredNetwork.he_normal(widths, seed=r)
        X = np.random.default_rng(10_000 + r).normal(1.0, 1.0, size=(8, widths[0]))
        planted = None
        if plant is not None:
            net, planted = plant_mean(net, *plant, seed=3)
        m = net_assembly_moments(net, X, temperature=T, entries=entries, seed=r, planted=planted)
        means[r, :, 0] = [m.mean[k] for k in ASSEMBLY_ORDERS]
        means[r, :, 1] = [m.predicted_mean[k] for k in ASSEMBLY_ORDERS]
        seconds[r] = m.second["f"], m.predicted_second["f"]
    return means, seconds


def _se(v: np.ndarray) -> np.ndarray:
    return v.std(0, ddof=1) / math.sqrt(v.shape[0])


def test_at_infinite_temperature_the_measured_means_follow_the_mu_term():
    """Gates independent of the weights (T = ∞), symmetric part of a law symmetric about 0:
    the mean over nets of every assembly is exactly the mean of its μ term."""
    means, _ = _over_nets(300, (6, 6, 6, 1), math.inf, plant=(0.25, 2.0))
    diff = means[:, :, 0] - means[:, :, 1]
    assert np.all(np.abs(diff.mean(0)) < 4 * _se(diff)), (diff.mean(0), _se(diff))
    mu = means[:, :, 1]
    assert np.all(mu.mean(0) > 8 * _se(mu)), (mu.mean(0), _se(mu))  # a μ term to follow
    # the same nets with nothing planted: no μ term, and the means vanish
    plain, _ = _over_nets(300, (6, 6, 6, 1), math.inf)
    assert np.all(plain[:, :, 1] == 0)
    assert np.all(np.abs(plain[:, :, 0].mean(0)) < 4 * _se(plain[:, :, 0]))
    assert np.all(means[:, :, 0].mean(0) > 4 * _se(means[:, :, 0]) + plain[:, :, 0].mean(0))


def test_with_no_planting_the_mu_term_vanishes():
    net = LayeredNetwork.he_normal((4, 5, 3, 1), seed=0)
    X = np.random.default_rng(1).normal(size=(5, 4))
    for planted, plant in [(net, None), plant_mean(net, 0.0, 3.0), plant_mean(net, 0.6, 0.0)]:
        m = net_assembly_moments(planted, X, planted=plant)
        assert m.predicted_mean == {"f": 0.0, "grad": 0.0, "hess": 0.0}
        if plant is None or plant.fraction == 0:
            assert m.broken == (0, 0, 0) and m.mu == (math.inf,) * 3 and m.bound_broken == 0
    # ReLU gates, symmetric weights: E[f] = 0 exactly, whatever the inputs' mean
    means, _ = _over_nets(300, (6, 6, 6, 1), 0.0)
    assert np.all(means[:, :, 1] == 0)
    assert abs(means[:, 0, 0].mean()) < 4 * _se(means[:, 0, 0])


@pytest.mark.parametrize("T", [0.0, 1.0])
def test_the_second_moment_of_f_follows_2_x2_c2(T):
    """E[f²] = 2⟨x²⟩∏c_l² for independent symmetric weights, at every temperature."""
    _, seconds = _over_nets(600, (4, 4, 4, 1), T, entries=1)
    d = seconds[:, 0] - seconds[:, 1]
    assert abs(d.mean()) < 4 * _se(d), (seconds.mean(0), _se(d))
    # over nets: E⟨x²⟩ = 2 (inputs N(1, 1)), E[c_l²] = 1 (He), so E[2⟨x²⟩∏c_l²] = 4
    assert abs(seconds[:, 1].mean() - 4.0) < 5 * _se(seconds[:, 1])


def test_the_bound_terms_and_mu():
    net = LayeredNetwork([np.full((4, 4), 0.5), np.full((4, 1), 0.5)])  # c_l² = 4·0.25/2
    p, plant = plant_mean(net, 0.125, 1.0)  # K = (2, 1): ⌊0.125·4 + ½⌋ = 1 (half up)
    m = net_assembly_moments(p, np.ones(4), planted=plant)
    assert plant.counts == (2, 1) and m.inputs == 1 and math.isnan(m.mean_se["f"])
    c = [math.sqrt(4 * np.mean(W * W) / 2) for W in p.weights]
    assert m.c == pytest.approx(c)
    assert m.mu == pytest.approx((1 - 2 * math.log(2) / math.log(4), 1.0))
    assert m.bound_symmetric == pytest.approx(math.prod(v * v / 2 for v in c))
    assert m.bound_broken == pytest.approx(c[0] * 2 / 2 * c[1] * 1 / 2)


# -- planting and bad values --------------------------------------------------------------------


def test_plant_mean_shifts_a_seeded_fraction_of_each_layer():
    net = LayeredNetwork.he_normal((5, 4, 3, 1), seed=0)
    p, plant = plant_mean(net, 0.3, -1.5, seed=9)
    assert plant.counts == (6, 4, 1)  # ⌊0.3·20 + ½⌋, ⌊0.3·12 + ½⌋, ⌊0.3·3 + ½⌋
    for W, P, S, k in zip(net.weights, p.weights, plant.shifts, plant.counts):
        np.testing.assert_allclose(P - W, S, rtol=0, atol=1e-15)
        assert np.count_nonzero(S) == k
        np.testing.assert_allclose(S[S != 0], -1.5 * np.sqrt(np.mean(W * W)))
    other, again = plant_mean(LayeredNetwork.he_normal((5, 4, 3, 1), seed=1), 0.3, -1.5, seed=9)
    assert all(np.array_equal(a != 0, b != 0) for a, b in zip(plant.shifts, again.shifts))
    _, elsewhere = plant_mean(net, 0.3, -1.5, seed=10)
    assert any(not np.array_equal(a != 0, b != 0) for a, b in zip(plant.shifts, elsewhere.shifts))
    _, every = plant_mean(net, 1.0, 1.0)
    assert every.counts == (20, 12, 3)
    assert plant.as_dict()["broken_weights"] == [6, 4, 1]


@pytest.mark.parametrize(
    "fraction, shift, needle",
    [
        (-0.1, 1.0, "plant fraction must be in [0, 1], got -0.1"),
        (1.5, 1.0, "plant fraction must be in [0, 1], got 1.5"),
        (math.nan, 1.0, "plant fraction must be in [0, 1], got nan"),
        ("0.5", 1.0, "plant fraction must be in [0, 1], got '0.5'"),
        (0.5, math.nan, "plant shift must be a finite number, got nan"),
        (0.5, math.inf, "plant shift must be a finite number, got inf"),
        (0.5, "up", "plant shift must be a number, got 'up'"),
    ],
)
def test_plant_mean_refuses_bad_values(fraction, shift, needle):
    net = LayeredNetwork.he_normal((3, 2, 1), seed=0)
    with pytest.raises(ConfigError) as e:
        plant_mean(net, fraction, shift)
    assert needle in str(e.value)


def test_net_assembly_moments_refuses_what_does_not_fit():
    net = LayeredNetwork.he_normal((3, 2, 1), seed=0)
    _, plant = plant_mean(LayeredNetwork.he_normal((3, 3, 1), seed=0), 0.5, 1.0)
    with pytest.raises(ShapeError, match=r"inputs must have shape \(B, 3\)"):
        net_assembly_moments(net, np.ones((2, 4)))
    with pytest.raises(ShapeError, match="non-finite"):
        net_assembly_moments(net, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ShapeError, match="do not fit the net"):
        net_assembly_moments(net, np.ones(3), planted=plant)
    with pytest.raises(ConfigError, match="entries must be an integer ≥ 1, got 0"):
        net_assembly_moments(net, np.ones(3), entries=0)
    with pytest.raises(ConfigError, match="temperature"):
        net_assembly_moments(net, np.ones(3), temperature=-1.0)


def test_one_layer_has_no_hessian_entries():
    net = LayeredNetwork.he_normal((3, 1), seed=0)
    p, plant = plant_mean(net, 1.0, 1.0)
    m = net_assembly_moments(p, np.ones((2, 3)), planted=plant)
    assert math.isnan(m.mean["hess"]) and math.isnan(m.predicted_mean["hess"]) and m.entries == 0
    assert m.predicted_mean["f"] == pytest.approx(np.ones(3) @ plant.shifts[0][:, 0])


# -- through a training run -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """``umwelt train`` of mlp:6 for two epochs, every epoch checkpointed (a few seconds)."""
    out = tmp_path_factory.mktemp("runs") / "train"
    api.train(model="mlp:6", dataset=DATA, epochs=2, batch_size=8, lr=0.05, observe_at=(0, 1, 2),
              out=out, figures=False)  # fmt: skip
    return out


def _tree(path):
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_the_moments_at_every_epoch_of_a_run_with_a_planted_symmetry(train_run, tmp_path):
    before = _tree(train_run)
    out = tmp_path / "out"
    r = api.circuits(run=train_run, plant_mean=(0.25, 1.0), inputs=16, samples=32, out=out)
    assert _tree(train_run) == before  # nothing written into the run
    assert r["mode"] == "training" and r["epochs"] == [0, 1, 2] and r["inputs"] == 16
    assert r["net"]["description"].startswith("MLP 5-6-1") and r["entries"] == 32
    assert r["plant_mean"]["broken_weights"] == [8, 2]  # ⌊0.25·30 + ½⌋, ⌊0.25·6 + ½⌋
    assert [m["epoch"] for m in r["moments"]] == [m["epoch"] for m in r["moments_planted"]]

    run = Run.open(train_run)
    X = run.data().X_train[:16].astype(np.float64)
    for e, row, planted_row in zip(r["epochs"], r["moments"], r["moments_planted"]):
        net = run.model(e, dtype="float64").to_network()
        m = net_assembly_moments(net, X, entries=32)
        assert row["mean"] == pytest.approx(m.mean) and row["second"] == pytest.approx(m.second)
        assert row["eq20"]["mean"] == {"f": 0.0, "grad": 0.0, "hess": 0.0}
        p, plant = plant_mean(net, 0.25, 1.0)
        mp = net_assembly_moments(p, X, entries=32, planted=plant)
        assert planted_row["eq20"]["mean"] == pytest.approx(mp.predicted_mean)
        assert all(v != 0 for v in planted_row["eq20"]["mean"].values())
        assert planted_row["eq20"]["second"]["f"] == pytest.approx(mp.predicted_second["f"])

    written = json.loads((out / "circuits.json").read_text())
    assert written["epochs"] == [0, 1, 2] and len(written["moments"]) == 3
    assert written["moments_planted"][0]["eq20"]["mu"][0] == pytest.approx(
        1 - 2 * math.log(8) / math.log(5)
    )
    assert written["moments"][0]["eq20"]["mu"] == ["inf", "inf"]
    png = out / "assembly_moments_training.png"
    assert written["figures"] == [str(png)]
    img = imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 0.05


def test_the_cli_measures_the_epochs_given(train_run):
    args = ["circuits", "--run", str(train_run), "--epochs", "2,0", "--inputs", "8"]
    res = runner.invoke(app, [*args, "--samples", "16", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["epochs"] == [0, 2] and r["moments_planted"] is None and r["plant_mean"] is None
    assert r["moments"][1]["eq20"]["second"]["grad"] is None  # NaN: no prediction there
    res = runner.invoke(app, [*args, "--samples", "16", "--plant-mean", "0.5:-1"])
    assert res.exit_code == 0, res.output
    assert "as trained" in res.output and "planted: 0.5 of each layer's weights" in res.output


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--epochs", "1,5"], "epoch 5 not in the run"),
        (["--epochs", "1,5,6"], "epochs 5, 6 not in the run"),
        (["--plant-mean", "2:1"], "plant fraction must be in [0, 1], got 2.0"),
        (["--plant-mean", "0.5:x"], "--plant-mean must be FRACTION:SHIFT"),
    ],
)
def test_bad_epochs_or_planting_are_one_line_and_write_nothing(train_run, tmp_path, extra, needle):
    before = _tree(train_run)
    out = tmp_path / "out"
    res = runner.invoke(app, ["circuits", "--run", str(train_run), *extra, "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith("error: ") and needle in res.stderr, res.stderr
    assert not out.exists() and _tree(train_run) == before


def test_a_conv_train_run_or_a_non_run_is_refused(tmp_path):
    vgg = tmp_path / "vgg"
    vgg.mkdir()
    (vgg / "config.json").write_text(json.dumps({"model": "vgg11", "dataset": DATA}))
    with pytest.raises(ConfigError, match="are for MLPs; the train run .* trains vgg11"):
        api.circuits(run=vgg)
    with pytest.raises(ConfigError, match="is not a run directory of umwelt train"):
        api.circuits(run=tmp_path)
    with pytest.raises(ConfigError, match="has no checkpoints to measure"):
        mlp = tmp_path / "mlp"
        mlp.mkdir()
        (mlp / "config.json").write_text(json.dumps({"model": "mlp:3", "dataset": DATA}))
        api.circuits(run=mlp)
