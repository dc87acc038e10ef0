"""The claims of symmetry about 0 of the net's numbers: the basis circuits at initialization
(eq. 14, fig. 3b), each layer's weights (fig. 3a) and the gradient's entries (fig. 4a) through
training, each by the mirror KS rule of :mod:`sim.reproduce.claims.rules`."""

from __future__ import annotations

import math

import numpy as np

from sim.reproduce.claims.evidence import Evidence
from sim.reproduce.claims.rules import FAILS, _Cell, _num, _symmetry_claim, _with_reason
from sim.reproduce.report import Claim

__all__ = ["circuit_symmetry", "gradient_symmetry", "weight_symmetry"]


def circuit_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "circuit_symmetry",
        "claim": "Uniformly sampled basis circuits ψ and their first- and second-order "
        "perturbations Ω⁽¹⁾, Ω⁽²⁾ are symmetric about 0 at initialization, μ(ψ) ≈ μ(−ψ)",
        "where": "eq. 14, fig. 3b",
        "paper": "μ(ψ) ≈ μ(−ψ) (histograms)",
        "figure": ev.figure("circuit_histograms"),
    }
    if ev.circuits is None or "symmetry" not in ev.circuits:
        return Claim(**base, reason="no circuit sample (circuits/circuits.json) was written")
    names = {"psi": "ψ", "omega1": "Ω⁽¹⁾", "omega2": "Ω⁽²⁾"}
    cells, ps = [], []
    for o, s in ev.circuits["symmetry"].items():
        m = round(_num(s.get("n")) * (1.0 - _num(s.get("frac_zero"))))
        cells.append(_Cell(names.get(o, o), _num(s.get("mirror_ks")), int(m)))
        ps.append(f"{names.get(o, o)} p = {_num(s.get('sym_test_pvalue')):.2g}")
    claim = _symmetry_claim(base, cells, "circuit values", all_resolved=True)
    return _with_reason(claim, f"{claim.reason}; exact mirror tests: {', '.join(ps)}")


def _layer_cells(ev: Evidence, kind: str) -> list[_Cell]:
    """Per observed epoch and layer, the mirror distance of the layer's ``kind`` (weight, grad)
    entries (``ks_stat`` is over all entries; over the non-zero ones it is ``ks_stat · n/m``)."""
    cells = []
    for o in ev.observations:
        e = int(o["epoch"])
        for l, (name, shape) in enumerate(zip(o["layer_names"], o["layer_shapes"])):
            n = int(np.prod(shape))
            zero = _num(o[f"{kind}_frac_zero"][l])
            m = round(n * (1.0 - zero)) if math.isfinite(zero) else 0
            ks = _num(o[f"{kind}_ks_stat"][l])
            D = ks * n / m if m else math.nan
            cells.append(_Cell(f"epoch {e}, layer {l + 1} ({name})", D, m))
    return cells


def weight_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "weights_symmetric",
        "claim": "Each layer's weight distribution stays nearly symmetric about 0 through training",
        "where": "fig. 3a",
        "paper": "symmetric ridgelines, intact and broken mixed",
        "figure": ev.figure("weights_ridgeline"),
    }
    return _symmetry_claim(base, _layer_cells(ev, "weight"), "weights", all_resolved=False)


def _pooled_gradient_cells(ev: Evidence) -> list[_Cell]:
    """Per observed epoch, the mirror distance of every gradient entry of the net (each layer
    in units of its RMS entry, as fig. 4a pools them), from the stored histograms: bins
    symmetric about 0, the exact zeros removed from the bin at 0; at the bins' resolution."""
    cells = []
    for o in ev.observations:
        edges = np.asarray(o["grad_edges"], float)
        counts = np.asarray(o["grad_hist"], float).sum(axis=0)
        under = float(np.sum(o["grad_under"]))
        over = float(np.sum(o["grad_over"]))
        sizes = np.prod(np.asarray(o["layer_shapes"], float), axis=1)
        zeros = float(np.nansum(sizes * np.asarray(o["grad_frac_zero"], float)))
        if not np.allclose(edges, -edges[::-1]) or edges.size % 2 == 0:
            continue  # not symmetric bins with an edge at 0
        zero_bin = int(np.searchsorted(edges, 0.0, side="right")) - 1  # [0, next edge)
        counts[zero_bin] = max(0.0, counts[zero_bin] - zeros)
        m = under + over + counts.sum()
        if m <= 0:
            cells.append(_Cell(f"epoch {int(o['epoch'])}", math.nan, 0))
            continue
        below = under + np.concatenate([[0.0], np.cumsum(counts)])  # #{v < t_k}, k = 0..K
        above = over + np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # #{v ≥ t_k}
        # P(v < t) vs P(-v < t) = P(v > -t): at the edges t_k = -t_{K-k}
        D = float(np.max(np.abs(below - above[::-1])) / m)
        cells.append(_Cell(f"epoch {int(o['epoch'])}", D, int(round(m))))
    return cells


def gradient_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "gradients_symmetric",
        "claim": "The entries of the full-training-set gradient ∂R/∂θ stay symmetric about 0 "
        "throughout training",
        "where": "fig. 4a",
        "paper": "symmetric ridgelines",
        "figure": ev.figure("gradients_ridgeline"),
    }
    claim = _symmetry_claim(base, _pooled_gradient_cells(ev), "gradient entries",
                            all_resolved=False)  # fmt: skip
    cells = _layer_cells(ev, "grad")
    bad = [c for c in cells if c.m and c.verdict == FAILS]
    note = "every layer pooled, each in units of its RMS entry (fig. 4a), at the bins' 0.1 RMS"
    if bad:
        worst = max(bad, key=lambda c: c.D)
        note += (
            f"; alone, {len(bad)} of {len(cells)} layer-epochs are asymmetric, e.g. {worst.text()}"
        )
        n_layers = len(ev.observations[0]["layer_names"])
        if worst.label.endswith(f"layer {n_layers} ({ev.observations[0]['layer_names'][-1]})"):
            note += " (the output layer's ∂R/∂W = −E[y ℓ'(yf) x] with x ≥ 0 shares one sign)"
    return _with_reason(claim, f"{claim.reason} ({note})")
