"""Terminal display for the CLI: progress bars and result tables (rich)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = [
    "circuits_table",
    "epoch_progress",
    "exact_table",
    "reproduce_table",
    "simulate_table",
    "sweep_progress",
    "sweep_table",
    "train_progress",
    "train_table",
]

console = Console(stderr=True)


def _progress(bar_width: int, *, transient: bool = False) -> Progress:
    """A bar with the task's name, count, elapsed time and a status field (80 columns), drawn
    on a terminal only: written to a file or a pipe a bar is its last state, and when a run
    fails it would stand above the one line that says why."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=bar_width),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
        disable=not console.is_terminal,  # see above
    )


@contextlib.contextmanager
def epoch_progress(total: int, label: str) -> Iterator[Callable[[dict], None]]:
    """A progress bar over epochs; yields ``advance(row)`` that shows the row's headline."""
    progress = _progress(bar_width=24)
    with progress:
        task = progress.add_task(label, total=total, status="")

        def advance(row: dict) -> None:
            status = (
                f"T-net {row['loss']:.2g}/{row['train_acc']:.3f}  "
                f"ReLU {row['relu_loss']:.2g}/{row['relu_train_acc']:.3f} (loss/acc)"
            )
            progress.update(task, completed=row["epoch"], status=status)

        yield advance


def simulate_table(result) -> None:
    """The finite-T net and its ReLU twin, column by column, at the last epoch."""
    s = result.summary
    table = Table(title=f"epoch {s['epoch']} ({s['status']}, {s['total_wall_s']:.1f} s)")
    table.add_column("metric")
    table.add_column(f"T = {s['temperature']:g}", justify="right")
    table.add_column("ReLU twin", justify="right")
    for label, key in [
        ("train loss (risk)", "loss"),
        ("test loss", "test_loss"),
        ("train accuracy", "train_acc"),
        ("test accuracy", "test_acc"),
        ("order parameter η‖∇R‖²", "order_parameter"),
    ]:
        table.add_row(label, f"{s[key]:.4g}", f"{s['relu_' + key]:.4g}")
    table.add_row(
        "first epoch with zero training error",
        str(s["first_zero_train_error_epoch"]),
        str(s["relu_first_zero_train_error_epoch"]),
    )
    table.add_row(
        "MC test accuracy ± SE", f"{s['mc_test_acc']:.4f} ± {s['mc_test_acc_se']:.4f}", ""
    )
    table.add_row(
        f"ensemble test accuracy ({s['mc_draws']} draws)", f"{s['ensemble_test_acc']:.4f}", ""
    )
    for l, (h, a) in enumerate(zip(s["gate_entropy"], s["gate_agreement"]), start=1):
        table.add_row(f"layer {l}: gate entropy (bits) / agreement", f"{h:.3f} / {a:.3f}", "")
    Console().print(table)


def exact_table(r: dict) -> None:
    """Exact output moments per input beside the ReLU output and the Monte Carlo estimates."""
    widths = "-".join(map(str, r["widths"]))
    out = Console(highlight=False)
    table = Table(
        title=escape(
            f"widths {widths}, T = {r['temperature']:g}: "
            f"{r['n_configurations']} gate configurations per input"
        )
    )
    mc = r.get("monte_carlo")
    cols = ["x", "ReLU f(x)", "E[f] exact", "Var[f] exact"]
    if mc:
        cols += [f"E[f] MC ({mc['samples']}) (z)", "Var[f] MC (z)"]
    for col in cols:
        table.add_column(escape(col), justify="right")
    for i, (f0, m, v) in enumerate(zip(r["relu_output"], r["mean"], r["var"])):
        cells = [str(i), f"{f0:.4f}", f"{m:.4f}", f"{v:.4f}"]
        if mc:
            cells += [
                f"{mc['mean'][i]:.4f}±{mc['mean_se'][i]:.4f} ({_z(mc['z_mean'][i])})",
                f"{mc['var'][i]:.4f}±{mc['var_se'][i]:.4f} ({_z(mc['z_var'][i])})",
            ]
        table.add_row(*cells)
    out.print(table)
    for i, nv in enumerate(mc.get("no_variation") or [] if mc else []):
        if nv is not None:
            q = nv.get("exact_probability")
            verdict = "" if q is None else (
                f"; exact P({nv['event']}) = {q:.2g} vs 3/S = {nv['upper_bound']:.2g}: "
                + ("DISAGREES" if nv["disagrees"] else "agrees")
            )  # fmt: skip
            out.print(escape(f"x{i}: {nv['reason']}{verdict}"))
    for l, m in enumerate(r["marginals"], start=1):
        line = f"layer {l}: P(h=1 | x0) = " + " ".join(f"{p:.3f}" for p in m[0])
        if mc:
            z = mc["max_z_marginals_per_layer"][l - 1]
            line += f"; Monte Carlo max |z| = {'--' if z is None or z != z else f'{z:.2f}'}"
        out.print(escape(line))


def _z(z) -> str:
    """A z-score, or ``no var.`` where the draws did not vary (its SE is 0: no z exists)."""
    return "no var." if z is None or z != z else f"{z:.1f}"


class _TrainProgress:
    """Callbacks of :func:`train_progress`: ``step(info)`` and ``epoch(row)``."""

    def __init__(self, progress: Progress, epochs_task, steps_task):
        self._p, self._e, self._s = progress, epochs_task, steps_task
        self._headline = ""

    def step(self, info: dict) -> None:
        self._p.update(
            self._s,
            completed=info["step"],
            total=info["steps"],
            description=f"epoch {info['epoch']}",
            status=f"batch loss {info['loss']:.2g}",
        )

    def epoch(self, row: dict) -> None:
        self._headline = f"loss {row['loss']:.2g} acc {row['train_acc']:.3f}/{row['test_acc']:.3f}"
        self._p.update(self._e, completed=row["epoch"], status=self._headline)

    def stage(self, name: str) -> None:
        """What follows the training (``umwelt reproduce``: ``circuits``, ``claims``), shown on
        the steps' bar."""
        if name != "train":
            self._p.update(self._s, description=name, status="")


@contextlib.contextmanager
def train_progress(epochs: int, label: str, start: int = 0) -> Iterator[_TrainProgress]:
    """Two bars (80 columns): epochs, with the last epoch's training loss and training/test
    accuracy, and the steps of the current epoch with the last minibatch loss."""
    progress = _progress(bar_width=20)
    with progress:
        e = progress.add_task(label, total=epochs, completed=start, status="")
        s = progress.add_task("epoch", total=None, status="")
        yield _TrainProgress(progress, e, s)


def train_table(result) -> None:
    """The last epoch of a training run."""
    s = result.summary
    table = Table(title=f"epoch {s.get('epoch')} ({s['status']}, {s['total_wall_s']:.1f} s)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, key in [
        ("training loss (risk)", "loss"),
        ("test loss", "test_loss"),
        ("training accuracy", "train_acc"),
        ("test accuracy", "test_acc"),
        ("order parameter η‖∇R‖²", "order_parameter"),
        ("best test accuracy", "best_test_acc"),
    ]:
        v = s.get(key)
        table.add_row(label, "—" if v is None else f"{v:.4g}")
    for label, key in [
        ("first epoch with zero training error", "first_zero_train_error_epoch"),
        ("first epoch with zero training loss", "first_zero_loss_epoch"),
        ("parameters", "n_parameters"),
        ("processes", "world_size"),
    ]:
        table.add_row(label, str(s.get(key)))
    Console().print(table)


def circuits_table(r: dict) -> None:
    """``umwelt circuits``: the identities' errors and the symmetry statistics per order."""
    out = Console(highlight=False)
    n = r["n_circuits"]
    counts = r["n_circuits_per_input"]
    count = f"{n:,}" if len(set(counts)) == 1 else f"{min(counts):,} to {max(counts):,}"
    T = f"T = {r['temperature']:g}" if r["temperature"] else "ReLU gates"
    out.print(
        escape(
            f"{r['net']['description']}: {count} circuits per input, {r['inputs']} inputs "
            f"({r['input_source']}), {T}"
        )
    )
    ident = Table(title=escape(f"identities, float64 ({r['method']})"))
    for col in ("identity", "entries", "relative error"):
        ident.add_column(col, justify="right" if col != "identity" else "left")

    def err(v) -> str:
        return "—" if v is None else f"{v:.2e}"

    ident.add_row("Σψ = f(x)", str(r["inputs"]), err(r["sum_rel_error"]))
    ident.add_row(
        "ΣΩ⁽¹⁾ = ∂f/∂W (autograd)", f"{r['grad_entries_checked']:,}", err(r["grad_rel_error"])
    )
    ident.add_row(
        "ΣΩ⁽²⁾ = ∂²f/∂W∂W' (autograd)",
        str(r["hessian_entries_checked"]),
        err(r["hessian_rel_error"]),
    )
    out.print(ident)
    init = r.get("symmetry_init")
    sym = Table(title=escape(f"circuit symmetry, {r['samples']:,} uniformly sampled per order"))
    cols = ["order", "mean/std", "skewness", "P(>0 | ≠0)", "zeros", "p mirror-KS", "p Wilcoxon"]
    for col in cols:
        sym.add_column(col, justify="left" if col == "order" else "right")
    names = {"psi": "ψ", "omega1": "Ω⁽¹⁾", "omega2": "Ω⁽²⁾"}
    for o, s in r["symmetry"].items():
        rows = [(names[o], s)]
        if init and o in init:
            rows = [(f"{names[o]} ({r['net'].get('which')})", s), (f"{names[o]} (init)", init[o])]
        for label, v in rows:
            sym.add_row(
                label,
                f"{v['mean_over_std']:+.4f}",
                f"{v['skewness']:+.3f}",
                f"{v['frac_positive']:.4f}",
                f"{v['frac_zero']:.3f}",
                f"{v['sym_test_pvalue']:.3g}",
                f"{v['wilcoxon_pvalue']:.3g}",
            )
    out.print(sym)
    out.print(
        escape(
            "p mirror-KS: test of ψ against −ψ (KS distance of the sample and its mirror image, "
            "sign-flip null); zeros (closed gates) are left out of P(>0) and the tests"
        )
    )
    if "circuit" in r:
        c = r["circuit"]
        out.print(
            escape(f"circuit {c['index']}: {' → '.join(c['units'])} → f, ψ = {c['value']:.6g}")
        )
    for p in r.get("figures", []):
        out.print(escape(f"figure: {p}"))


__all__ += ["circuit_moments_table"]


def circuit_moments_table(r: dict) -> None:
    """``umwelt circuits --run``: the assembly moments per epoch beside eq. 20's prediction."""
    out = Console(highlight=False)
    T = f"T = {r['temperature']:g}" if r["temperature"] else "ReLU gates"
    out.print(
        escape(
            f"{r['net']['description']}: {r['inputs']} inputs ({r['input_source']}), {T}, "
            f"{r['entries']} Hessian entries"
        )
    )

    def num(v: float | None) -> str:
        return "—" if v is None or v != v else f"{v:.3g}"  # None in JSON, NaN here: undefined

    def pm(m: float | None, se: float | None) -> str:
        if m is None or m != m:
            return "—"
        return f"{m:+.3g}" if se is None or se != se else f"{m:+.3g} ± {se:.2g}"

    tables = [("as trained", r["moments"])]
    if r.get("moments_planted"):
        p = r["plant_mean"]
        tables.append(
            (
                f"planted: {p['fraction']:g} of each layer's weights + {p['shift']:g} RMS "
                f"(broken weights per layer {p['broken_weights']})",
                r["moments_planted"],
            )
        )
    for title, rows in tables:
        t = Table(title=escape(f"{title}: mean ± SE over inputs (below it, eq. 20's)"))
        for col in ("epoch", "f", "E[f²]", "∂f/∂W", "∂²f/∂W∂W'"):
            t.add_column(escape(col), justify="right")
        for row in rows:
            m, se, q, e = row["mean"], row["mean_se"], row["second"], row["eq20"]
            t.add_row(
                str(row["epoch"]),
                *(f"{pm(m[k], se[k])}\n[dim]{num(e['mean'][k])}[/dim]" for k in ("f",)),
                f"{num(q['f'])}\n[dim]{num(e['second']['f'])}[/dim]",
                *(f"{pm(m[k], se[k])}\n[dim]{num(e['mean'][k])}[/dim]" for k in ("grad", "hess")),
            )
        out.print(t)
    for p in r.get("figures", []):
        out.print(escape(f"figure: {p}"))


# -- umwelt hessian --------------------------------------------------------------------------------

__all__ += ["hessian_progress", "hessian_table"]

_HESSIAN_STAGES = {
    "slq": "SLQ products",
    "checks": "hinge checks",
    "entries": "entry columns",
}


@contextlib.contextmanager
def hessian_progress(label: str) -> Iterator[Callable[[str, int, int, str], None]]:
    """Two bars for :func:`sim.hessian.run`: the epochs (first the pass for the extremes, then
    the analysis), and the current stage of the epoch (SLQ products, hinge-check products,
    entry columns). Yields the ``progress(stage, done, total, info)`` callback."""
    # transient: gone when it ends, so the table (or one error line) remains
    progress = _progress(bar_width=20, transient=True)
    with progress:
        top = progress.add_task(label, total=None, status="")
        sub = progress.add_task("", total=None, status="", visible=False)

        def update(stage: str, done: int, total: int, info: str = "") -> None:
            if stage in ("extremes", "epochs"):
                what = "extremes" if stage == "extremes" else "analysis"
                progress.update(
                    top, description=f"{label} {what}", completed=done, total=total, status=info
                )
            else:
                progress.update(
                    sub,
                    description=_HESSIAN_STAGES.get(stage, stage),
                    completed=done,
                    total=total,
                    status="",
                    visible=True,
                )

        yield update


def hessian_table(rows: list[dict], out_dir=None) -> None:
    """Per analysed epoch: the spectrum's ends and balance, the entries' statistics, the loss."""
    out = Console(highlight=False)
    if not rows:
        return
    r0 = rows[0]
    table = Table(
        title=escape(
            f"Hessian: N = {r0['n_params']:,} parameters, {r0['n_examples']:,} examples, "
            f"T = {r0['temperature']:g}"
        ),
        caption=escape(
            "neg mass: spectral weight below 0; asym.: ∫λ³ρ/(∫λ²ρ)^1.5; trace: Hutchinson; "
            "<0.15: fraction of sampled entries with |mean|/std < 0.15; coupl.: log n̄_corr/log N"
        ),
    )
    cols = ["epoch", "λ_min", "λ_max", "neg mass", "asym.", "trace", "<0.15", "coupl.", "loss", "s"]
    for col in cols:
        table.add_column(escape(col), justify="right")

    def f(v, fmt: str = ".3g") -> str:
        return "—" if v is None or (isinstance(v, float) and v != v) else format(v, fmt)

    for r in rows:
        table.add_row(
            str(r["epoch"]),
            f(r.get("lambda_min")),
            f(r.get("lambda_max")),
            f(r.get("neg_mass"), ".3f"),
            f(r.get("asymmetry"), "+.2f"),
            f(r.get("trace"), ".2g"),
            f(r.get("frac_means_below_015"), ".3f"),
            f(r.get("coupling_exponent"), ".3f"),
            f(r.get("loss"), ".3g"),
            f(r.get("wall_s"), ".0f"),
        )
    out.print(table)
    bad = [str(r["epoch"]) for r in rows if r.get("hinge_ok") is False]
    if bad:
        out.print(
            escape(
                f"warning: the diagonal or trace is not ≈ 0 at epochs {', '.join(bad)} although "
                "the loss is the hinge (THEORY.md §3): biases, mean-field gates or a smooth loss?"
            )
        )
    if out_dir is not None:
        out.print(escape(f"results: {out_dir}"))


def phases_table(r: dict) -> None:
    """Each net's phases as runs of epochs, with the reason at the run's last epoch."""
    out = Console(highlight=False)
    for net, d in r["nets"].items():
        table = Table(title=escape(f"{r['run']} ({r['kind']} run): {net}"))
        for col in ("epochs", "phase", "recorded online", "why (at the last epoch)"):
            table.add_column(col)
        spans: list[list] = []
        for e in d["epochs"]:
            key = (e["phase"], e["recorded"])
            if spans and spans[-1][0] == key:
                spans[-1][2] = e
            else:
                spans.append([key, e, e])
        for (phase, recorded), a, b in spans:
            epochs = str(a["epoch"]) if a is b else f"{a['epoch']}–{b['epoch']}"
            table.add_row(epochs, phase, str(recorded or "—"), escape(b["reason"]))
        out.print(table)
        s = d["summary"]
        began = ", ".join(f"{p} from {e}" for p, e in s["began"].items())
        out.print(escape(f"final: {s['final']}; {began}"))
        if d["missing"]:
            out.print(escape(f"missing fields (a run before phases existed): {d['missing']}"))


@contextlib.contextmanager
def sweep_progress(total: int, label: str) -> Iterator[Callable[[dict, set], None]]:
    """One bar over a sweep's points (finished or failed ones complete it), with the done /
    running / failed counts and the time left; yields ``update(states, running)``."""
    from rich.progress import TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )
    with progress:
        task = progress.add_task(label, total=total, status="")

        def update(states: dict, running: set) -> None:
            n = {s: sum(v == s for v in states.values()) for s in ("done", "failed")}
            waiting = len(states) - n["done"] - n["failed"] - len(running)
            status = (
                f"done {n['done']}  running {len(running)}  failed {n['failed']}  waiting {waiting}"
            )
            progress.update(
                task, total=len(states), completed=n["done"] + n["failed"], status=status
            )

        yield update


def sweep_table(result) -> None:
    """A sweep's points by state, and the phases of the finished ones by axis values."""
    out = Console(highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    out.print(escape(f"sweep {result.out}: {len(result.states)} points: {counts}"))
    if result.estimate:
        table = Table(title="points (dry run: nothing written)")
        for col in ("id", "point", "N params", "n train", "epochs", "GFLOP", "est. s"):
            table.add_column(col)
        for e in result.estimate:
            cells = (f"{e['n_params']:,}", f"{e['n_train']:,}", str(e["epochs"]),
                     f"{e['flops'] / 1e9:.3g}", f"{e['seconds']:.0f}")  # fmt: skip
            table.add_row(e["id"], escape(e["label"]), *cells)
        out.print(table)
        total = sum(e["seconds"] for e in result.estimate)
        out.print(f"estimated total: {total / 60:.1f} min of one job (an upper bound when "
                  "points stop at a phase)")  # fmt: skip
        return
    phases: dict[str, int] = {}
    for r in result.rows:
        if r.get("phase") is not None:
            phases[r["phase"]] = phases.get(r["phase"], 0) + 1
    if phases:
        out.print("final phases: " + ", ".join(f"{n} {p}" for p, n in sorted(phases.items())))
    failed = [r for r in result.rows if r["status"] == "failed"]
    for r in failed[:5]:
        out.print(escape(f"failed {r['id']}: {r.get('error')}"))
    if result.boundary:
        table = Table(title="the boundary: N* where P(converged) = ½ (90 % bootstrap interval)")
        keys = [k for k in result.boundary[0] if k not in _BOUNDARY_FIELDS]
        for col in (*keys, "complexity", "N*", "interval", "converged", "status"):
            table.add_column(col)

        def g(v) -> str:
            return "—" if v is None else f"{v:.3g}"

        for b in result.boundary:
            table.add_row(*(str(b[k]) for k in keys), g(b["complexity"]), g(b["n_star"]),
                          f"[{g(b['low'])}, {g(b['high'])}]",
                          f"{b['n_converged']}/{b['n_runs']}", b["status"])  # fmt: skip
        out.print(table)


#: the fields of a boundary row that are not its group's axis values
_BOUNDARY_FIELDS = frozenset(
    {"complexity", "n_star", "low", "high", "status", "reason", "b0", "b1", "n_runs",
     "n_converged"}
)  # fmt: skip


def reproduce_table(result) -> None:
    """``umwelt reproduce``: one row per claim, the measured value with its interval and the
    verdict (the reasons are in REPORT.md)."""
    out = Console(highlight=False)
    colour = {"holds": "green", "does not hold": "red"}
    table = Table(title=escape(f"{result.out}: the paper's claims ({result.wall_s:.0f} s)"))
    for col in ("claim", "where", "measured [95 % CI]", "verdict"):
        table.add_column(col, overflow="fold")
    for c in result.claims:
        style = colour.get(c.verdict, "dim")
        table.add_row(escape(c.key), escape(c.where), escape(c.measured_text()),
                      f"[{style}]{escape(c.verdict)}[/{style}]")  # fmt: skip
    out.print(table)
