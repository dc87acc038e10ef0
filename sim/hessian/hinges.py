"""The hinge checks of one epoch: with a hinge loss the Hessian is the circuit part alone, zero
on its diagonal and in its trace (a quadratic hinge's equals its Gauss–Newton part there), and
:func:`hinge_check_row` tests both on the operator (:func:`umwelt.nn.hessian.hinge_checks`),
reusing the SLQ runs' trace estimate where it has an error bar."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["hinge_check_row"]


def hinge_check_row(op, cfg, summ: dict, seeds, stage: Callable, *, loss_name: str) -> dict:
    """The row keys of the hinge checks (``hinge_*``; ``gn_*`` and ``circuit_*`` too for the
    quadratic hinge), from ``summ``: the epoch's :func:`~umwelt.nn.hessian.spectral_summary`."""
    from umwelt.nn.hessian import CountedOperator, hinge_checks

    N = op.n
    row: dict[str, Any] = {}
    # hinge: the trace test takes the SLQ runs' estimate (no products of its own) when it
    # has an error bar; the quadratic hinge's circuit part needs 16 forms of its own
    given = None
    se = summ["trace_se"]
    if loss_name == "hinge" and se is not None and math.isfinite(se):
        given = (summ["trace"], se)
    probes = 16 if cfg.hinge_coords < N and given is None else 0
    hc_total = min(cfg.hinge_coords, N) + probes
    hc_done = [0]

    def tick_checks(m: int) -> None:
        hc_done[0] += m
        stage("checks", min(hc_done[0], hc_total), hc_total)

    hc = hinge_checks(
        CountedOperator(op, tick_checks),
        n_coords=min(cfg.hinge_coords, N),
        n_v=16,
        seed=seeds["checks"],
        warn=False,
        trace_estimate=given,
    )
    row |= {
        "hinge_diag_max_abs": hc["diag_max_abs"],
        "hinge_diag_rel": hc["diag_rel"],
        "hinge_trace": hc["trace"],
        "hinge_trace_se": hc["trace_se"],
        "hinge_ok": hc["ok"],
    }
    if "gn_trace" in hc:  # quadratic hinge: diag H = diag G, tr H = tr G
        row |= {
            k: hc[k]
            for k in (
                "gn_diag_max_abs",
                "gn_trace",
                "gn_active",
                "circuit_diag_max_abs",
                "circuit_diag_rel",
                "circuit_trace",
                "circuit_trace_se",
            )
        }
    return row
