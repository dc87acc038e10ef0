r"""What is measured on a gated network while it learns (THEORY.md §4, §7).

Every function here is generic over any model whose weights are ``nn.Linear`` / ``nn.Conv2d``
layers (bias-free) and whose gates are :class:`umwelt.nn.gate.Gate` modules listed in
``model.gates`` (the gated MLP and the VGG nets alike). The full-data quantities take a
``torch.distributed`` process ``group``: each rank works on its contiguous shard of the
examples and the sums and counts are all-reduced (:mod:`umwelt.nn.parallel`), so under
``torchrun`` they equal the single-process values, and alone (``group=None``, nothing
initialized) the same code runs on all examples.

From one pass over the training set (:func:`full_gradient`):

* the risk :math:`R = \frac1n\sum_i \ell(y_i f(x_i))` and the accuracy (:math:`y f > 0`; an
  output of 0 is wrong), in the model's gate mode (in ``"sample"`` mode each example's gates
  are drawn once: a one-draw Monte Carlo estimate of the risk);
* the gradient :math:`\nabla_\theta R` of that same pass and the plasticity order parameter
  :math:`\eta\|\nabla_\theta R\|^2` (eq. 15, :func:`order_parameter`).

Per weight layer :math:`l` (in the order of ``model.modules()``, :func:`weight_layers`), the
arrays of one observed epoch (:func:`observe`):

* **weight histograms on fixed bins** (fig. 3a): entries of :math:`W_l` in units of
  :math:`u_l`, the root mean square of the layer's weights *at initialization* (≈ the He
  standard deviation :math:`g/\sqrt{\mathrm{fan_{in}}}`), on the bins :data:`WEIGHT_EDGES`
  (``-8 … 8`` in steps of 0.1), identical at every epoch, plus counts below and above;
* **gradient histograms** (fig. 4a): entries of :math:`\partial R/\partial W_l` in units of
  their root mean square *at this epoch* (the gradient shrinks by orders of magnitude; its shape
  is what is compared), on :data:`GRAD_EDGES`, with the unit saved;
* **symmetry statistics** of weights and gradients (:func:`symmetry_statistics`): mean, std,
  skewness, fraction of positive entries among the non-zero ones, the sign test's p-value
  (binomial, :math:`P(+) = 1/2`) and the two-sample Kolmogorov–Smirnov p-value of
  :math:`\{g\}` against :math:`\{-g\}` (a descriptive symmetry score: the two samples are not
  independent, so read it as a distance, not an exact test);
* **gate entropy, agreement with the ReLU gates and fraction open** per gate layer
  (:func:`gate_statistics`);
* **within-layer weight correlation spectra** (Fok et al., seed 001; THEORY.md §7,
  :func:`correlation_spectra`): the eigenvalues of the Gram matrix
  :math:`W W^\top/\mathrm{fan_{in}}` and of the correlation-coefficient matrix between the
  layer's neurons (rows of ``weight`` reshaped to ``(n_out, fan_in)``: output units, or output
  channels of a convolution), largest first, and the correlation spectrum's participation ratio
  :math:`(\sum\lambda)^2 / (n_{\rm out}\sum\lambda^2)` (1 when isotropic).

Saving and loading the observations is the drivers' business.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from umwelt._checks import check_int, check_positive
from umwelt.errors import ShapeError
from umwelt.nn.gate import gate_entropy_bits
from umwelt.nn.losses import LossFn, get_loss
from umwelt.nn.parallel import all_gather_shards, all_reduce_sum, local_batches

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = [
    "GRAD_EDGES",
    "MARGIN_QUANTILES",
    "WEIGHT_EDGES",
    "correlation_spectra",
    "effective_temperatures",
    "layer_norms",
    "margin_statistics",
    "evaluate",
    "fixed_histogram",
    "full_gradient",
    "gate_statistics",
    "observe",
    "order_parameter",
    "symmetry_statistics",
    "using_generator",
    "weight_layers",
]

#: Bin edges of the weight histograms, in units of each layer's initial RMS weight.
WEIGHT_EDGES = np.linspace(-8.0, 8.0, 161)
#: Bin edges of the gradient histograms, in units of each layer's RMS gradient entry.
GRAD_EDGES = np.linspace(-8.0, 8.0, 161)

_STATS = ("mean", "std", "skewness", "frac_zero", "frac_pos", "sign_p", "ks_stat", "ks_p")


# -- shared by the training loop ------------------------------------------------------------------


def _loss_fn(loss: str | LossFn) -> LossFn:
    """The mean loss ``loss`` names (:func:`umwelt.nn.losses.get_loss`), or ``loss`` itself."""
    return loss if callable(loss) else get_loss(loss)


def _check_data(X: torch.Tensor, y: torch.Tensor) -> int:
    """``n`` for inputs ``(n, ...)`` and labels ``(n,)``, else :class:`ShapeError`."""
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ShapeError(
            f"X must be (n, ...) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if X.shape[0] == 0:
        raise ShapeError("the data set is empty")
    return X.shape[0]


def _output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    f = model(x)
    return f[:, 0] if f.ndim == 2 else f  # (B,); a plain nn.Sequential gives (B, 1)


# -- the model's layers and gates -----------------------------------------------------------------


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` of every ``nn.Linear`` and ``nn.Conv2d``, input side first."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


@contextlib.contextmanager
def using_generator(model: nn.Module, generator) -> Iterator[None]:
    """Draw the gates from ``generator`` inside the block; restore each gate's own after."""
    saved = [g.generator for g in model.gates]
    try:
        for g in model.gates:
            g.generator = generator
        yield
    finally:
        for g, s in zip(model.gates, saved, strict=True):
            g.generator = s


# -- full-data passes -----------------------------------------------------------------------------


def full_gradient(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
    margins: bool = False,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    r"""The gradient of the risk over the whole training set, with its loss and accuracy.

    .. math::
        \nabla_\theta R = \sum_{\text{batches } b} \frac{|b|}{n}\,\nabla_\theta
        \bar\ell_b, \qquad \bar\ell_b = \frac1{|b|}\sum_{i\in b}\ell(y_i f(x_i)),

    each rank summing over the batches of its shard of ``range(n)``, then all ranks adding
    their sums (one all-reduce per dtype). The model's gates are used as they are (mode,
    generator); the model is put in eval mode; ``.grad`` is not touched
    (``torch.autograd.grad``).

    Args:
        model: maps ``(B, ...)`` to ``(B,)`` (or ``(B, 1)``).
        X: inputs ``(n, ...)`` on the model's device, the same on every rank.
        y: labels ``(n,)`` in ``{-1, +1}``.
        loss: a name of :data:`umwelt.nn.losses.LOSSES` or a mean loss ``(f, y) -> ()``.
        batch_size: examples per forward pass.
        group: the process group (``None``: the default one, or alone).
        margins: also return every example's margin :math:`y_i f(x_i)` of this pass (the
            same gates), gathered from all ranks, as ``stats["margins"]`` (float64, ``(n,)``).

    Returns:
        ``(grads, stats)``: one tensor per parameter with ``requires_grad`` (in
        ``model.parameters()`` order, zero for a parameter the loss does not reach), and
        ``{"loss": R, "acc": ..., "grad_sq": ‖∇R‖²}`` (``grad_sq`` summed in float64).

    Raises:
        ShapeError: for ``X``, ``y`` that are not ``(n, ...)``, ``(n,)`` with ``n > 0``.
        ConfigError: for an unknown loss or a batch size that is not a positive integer.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 1), temperature=0.0, seed=0, dtype=torch.float64)
    >>> X, y = torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    >>> _, stats = full_gradient(model, X, y)  # f = 0: hinge loss 1, every example wrong
    >>> stats
    {'loss': 1.0, 'acc': 0.0, 'grad_sq': 0.0}
    """
    loss_fn = _loss_fn(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    stats = torch.zeros(2, dtype=torch.float64, device=X.device)  # loss sum, correct count
    kept: list[torch.Tensor] = []
    model.eval()
    with torch.enable_grad():
        for sl in local_batches(n, batch_size, group):
            xb, yb = X[sl], y[sl]
            f = _output(model, xb)  # (b,)
            if margins:
                kept.append((f.detach() * yb).double())  # (b,)
            batch = loss_fn(f, yb)
            for g, d in zip(
                grads,
                torch.autograd.grad(batch * (xb.shape[0] / n), params, allow_unused=True),
                strict=True,
            ):
                if d is not None:
                    g += d
            stats[0] += batch.detach().double() * xb.shape[0]
            stats[1] += (f.detach() * yb > 0).sum()
    all_reduce_sum([*grads, stats], group)
    sq = sum((g.double() ** 2).sum() for g in grads)
    out = {"loss": stats[0].item() / n, "acc": stats[1].item() / n, "grad_sq": float(sq)}
    if margins:
        local = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.float64, device=X.device)
        out["margins"] = all_gather_shards(local, n, group).cpu().numpy()
    return grads, out


#: the quantiles of the margins y·f that a row records (fractions)
MARGIN_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5)


def margin_statistics(margins: np.ndarray | torch.Tensor) -> dict:
    r"""The unsatisfied constraints of the margins :math:`m_i = y_i f(x_i)` (THEORY.md §5).

    :math:`N_\Delta = \#\{i : m_i < 1\}`, the examples with non-zero hinge (or quadratic-hinge)
    loss (Geiger et al. 2019, Spigler et al. 2019: a net has fitted its data when
    :math:`N_\Delta = 0`). For a stochastic net pass ``(S, n)`` margins of ``S`` gate draws:
    :math:`N_\Delta` is then the mean count over the draws.

    Args:
        margins: ``(n,)``, or ``(S, n)`` for ``S`` draws.

    Returns:
        ``n_unsatisfied`` (an int for one draw, else the mean), ``frac_unsatisfied``
        (:math:`N_\Delta / n`) and ``margin_quantiles`` (the 1, 5, 25, 50 % quantiles of all
        margins, of every draw pooled).

    >>> s = margin_statistics(np.array([2.0, 1.0, 0.5, -3.0]))
    >>> s["n_unsatisfied"], s["frac_unsatisfied"]
    (2, 0.5)
    >>> margin_statistics(np.array([[2.0, 0.5], [2.0, 2.0]]))["n_unsatisfied"]  # mean of 1, 0
    0.5
    """
    m = margins.detach().cpu().numpy() if isinstance(margins, torch.Tensor) else margins
    m = np.asarray(m, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[-1] == 0:
        raise ShapeError(f"margins must be (n,) or (S, n) with n > 0, got {m.shape}")
    per_draw = (~(m.reshape(-1, m.shape[-1]) >= 1)).sum(axis=1)  # (S,); a NaN margin counts
    with np.errstate(invalid="ignore"):  # a diverged net's ±inf margins
        quantiles = np.quantile(m, MARGIN_QUANTILES).tolist()
    count = int(per_draw[0]) if m.ndim == 1 else float(per_draw.mean())
    return {
        "n_unsatisfied": count,
        "frac_unsatisfied": float(per_draw.mean() / m.shape[-1]),
        "margin_quantiles": quantiles,
    }


def layer_norms(model: nn.Module, grads: list[torch.Tensor] | None = None) -> dict:
    r"""Per weight layer (:func:`weight_layers` order): :math:`\|W_l\|_F` and, given the
        full-data gradient ``grads`` (one tensor per trainable parameter, as
        :func:`full_gradient` returns them), :math:`\|\partial R/\partial W_l\|_F` — the order
        parameter split by layer (eq. 16): their squares sum to :math:`\|
    abla_	heta R\|^2` for a
        bias-free net.

        Returns:
            ``{"weight_norms": [...]}`` and, with ``grads``, ``"layer_grad_norms": [...]``
            (float lists, one per weight layer).
    """
    layers = weight_layers(model)
    out = {"weight_norms": [float(m.weight.detach().double().norm()) for _, m in layers]}
    if grads is not None:
        params = [p for p in model.parameters() if p.requires_grad]
        if len(grads) != len(params):
            raise ShapeError(
                f"expected one gradient per parameter ({len(params)}), got {len(grads)}"
            )
        by_id = {id(p): g for p, g in zip(params, grads, strict=True)}
        out["layer_grad_norms"] = [float(by_id[id(m.weight)].double().norm()) for _, m in layers]
    return out


def effective_temperatures(model: nn.Module) -> list[float]:
    r"""Per gated layer :math:`l`, :math:`T_l / \|W_l\|_F`: the paper writes
    :math:`W = \hat W / T` with :math:`\|\hat W\|_F = 1`, so a layer whose weights grow during
    training is colder (0 at :math:`T = 0`). Gate :math:`l` follows weight layer :math:`l`
    (:func:`weight_layers` order); the output layer has no gate.

    >>> from umwelt.nn import build_mlp
    >>> m = build_mlp((2, 3, 1), temperature=0.5, seed=0, dtype=torch.float64)
    >>> t = effective_temperatures(m)
    >>> norm = float(weight_layers(m)[0][1].weight.detach().norm())
    >>> len(t) == 1 and abs(t[0] * norm - 0.5) < 1e-12
    True
    """
    layers = weight_layers(model)
    gates = list(getattr(model, "gates", ()))
    out = []
    for g, (_, m) in zip(gates, layers, strict=False):
        norm = float(m.weight.detach().double().norm())
        out.append(0.0 if g.temperature == 0 else (g.temperature / norm if norm > 0 else math.inf))
    return out


def order_parameter(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> float:
    r"""The plasticity order parameter :math:`\eta\,\|\nabla_\theta R\|^2` (eq. 15).

    :math:`R` is the loss averaged over the whole of ``(X, y)``; its gradient is
    :func:`full_gradient`'s (minibatches weighted by their share of the examples, so an unequal
    last batch is exact; in ``"sample"`` mode each example's gates are drawn once; ``.grad``
    untouched).

    Args:
        lr: the step size :math:`\eta` that rescales the squared norm.
        loss, batch_size, group: as for :func:`full_gradient`.

    Returns:
        :math:`\eta \sum_\theta (\partial R / \partial\theta)^2` as a float.

    Raises:
        ConfigError: unless ``lr`` is finite and > 0; as :func:`full_gradient` otherwise.
    """
    lr = check_positive("learning rate", lr)
    _, stats = full_gradient(model, X, y, loss=loss, batch_size=batch_size, group=group)
    return lr * stats["grad_sq"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> dict[str, float]:
    r"""Mean loss and accuracy of ``model`` in its current gate mode, over all of ``(X, y)``.

    .. math::
        R = \frac1n\sum_i \ell(y_i f(x_i)), \qquad
        \mathrm{acc} = \frac1n\,\#\{i : y_i f(x_i) > 0\}

    (an output of exactly 0 is wrong). No gradients; the model is put in eval mode.

    Args:
        X: inputs ``(n, ...)``; y: labels ``(n,)`` in ``{-1, +1}``.
        loss, batch_size, group: as for :func:`full_gradient`.

    Returns:
        ``{"loss": R, "acc": ...}``.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 1), temperature=0.0, seed=0, dtype=torch.float64)
    >>> X, y = torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    >>> round(evaluate(model, X, y, loss="logistic")["loss"], 12)  # f = 0: log 2
    0.69314718056
    """
    loss_fn = _loss_fn(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    stats = torch.zeros(2, dtype=torch.float64, device=X.device)  # loss sum, correct count
    model.eval()
    for sl in local_batches(n, batch_size, group):
        f = _output(model, X[sl])  # (b,)
        stats[0] += loss_fn(f, y[sl]).double() * f.shape[0]
        stats[1] += (f * y[sl] > 0).sum()
    all_reduce_sum([stats], group)
    return {"loss": stats[0].item() / n, "acc": stats[1].item() / n}


@torch.no_grad()
def gate_statistics(
    model: nn.Module,
    X: torch.Tensor,
    *,
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> dict[str, np.ndarray]:
    r"""Per gate layer: mean entropy (bits), agreement with the ReLU gates, fraction open.

    For each batch, two forward passes with every gate recording: one in ``"relu"`` mode (the
    :math:`T = 0` gates :math:`1[z > 0]` of these weights), one in ``"sample"`` mode at each
    gate's temperature (drawn from the gates' current generators). Per gate layer :math:`l`,
    averaged over examples and units (a convolution's gate layer has ``C·H·W`` units per
    example):

    * ``gate_entropy`` — the entropy of :math:`\mathrm{Bern}(\sigma(z/T))` at the sampled
      pass's logits (:func:`umwelt.nn.gate.gate_entropy_bits`): 0 at ``T = 0``, 1 at
      ``T = inf``;
    * ``gate_agreement`` — the fraction of sampled gates equal to the ReLU gates: 1 at
      ``T = 0``, about 1/2 at ``T = inf``;
    * ``gate_open`` — the fraction of sampled gates that are open.

    The gates' modes and recording are restored after (their ``last_gates`` / ``last_logits``
    are cleared); the model is put in eval mode.

    Args:
        X: inputs ``(n, ...)``, the same on every rank.
        batch_size, group: as for :func:`full_gradient`.

    Returns:
        ``{"gate_entropy", "gate_agreement", "gate_open"}``, float64 arrays ``(G,)``.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 4, 1), temperature=0.0, seed=0)
    >>> s = gate_statistics(model, torch.randn(5, 2))
    >>> s["gate_entropy"].tolist(), s["gate_agreement"].tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    batch_size = check_int("batch size", batch_size)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ShapeError(f"X must be a non-empty (n, ...) tensor, got shape {tuple(X.shape)}")
    gates = list(model.gates)
    G = len(gates)
    sums = torch.zeros(4, G, dtype=torch.float64, device=X.device)  # H, agree, open, units
    saved = [(g.mode, g.record) for g in gates]
    model.eval()
    try:
        for sl in local_batches(X.shape[0], batch_size, group):
            xb = X[sl]
            for g in gates:
                g.mode, g.record = "relu", True
            model(xb)
            relu = [g.last_gates for g in gates]
            for g in gates:
                g.mode = "sample"
            model(xb)
            for l, (g, h0) in enumerate(zip(gates, relu, strict=True)):
                sums[0, l] += gate_entropy_bits(g.last_logits, g.temperature).sum()
                sums[1, l] += (g.last_gates == h0).sum()
                sums[2, l] += g.last_gates.sum()
                sums[3, l] += g.last_gates.numel()
    finally:
        for g, (mode, record) in zip(gates, saved, strict=True):
            g.mode, g.record = mode, record
            g.last_gates = g.last_logits = None
    all_reduce_sum([sums], group)
    s = sums.cpu().numpy()
    units = np.where(s[3] > 0, s[3], np.nan)
    return {
        "gate_entropy": s[0] / units,
        "gate_agreement": s[1] / units,
        "gate_open": s[2] / units,
    }


# -- statistics of one layer's entries ------------------------------------------------------------


def fixed_histogram(v: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Counts of ``v`` in the bins ``edges`` and the numbers below and above them.

    >>> counts, under, over = fixed_histogram(np.array([-2.0, 0.5, 0.5, 3.0]), np.arange(3.0))
    >>> counts.tolist(), under, over
    ([2, 0], 1, 1)
    """
    counts, _ = np.histogram(v, bins=edges)
    return counts.astype(np.int64), int(np.sum(v < edges[0])), int(np.sum(v > edges[-1]))


def symmetry_statistics(v: np.ndarray) -> dict[str, float]:
    r"""How symmetric about 0 the entries ``v`` are.

    Returns:
        ``mean``, ``std``, ``skewness`` (:math:`m_3/m_2^{3/2}`, NaN when all entries are
        equal), ``frac_zero``, ``frac_pos`` (positive among the non-zero), ``sign_p`` (two-sided
        binomial test of ``frac_pos = 1/2``), ``ks_stat`` and ``ks_p`` (two-sample KS of
        ``v`` against ``-v``, asymptotic); NaN where undefined (no non-zero entries), and all
        NaN when ``v`` has a non-finite entry.

    >>> s = symmetry_statistics(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    >>> (s["mean"], s["skewness"], s["frac_pos"], s["ks_stat"])
    (0.0, 0.0, 0.5, 0.0)
    """
    from scipy import stats

    v = np.asarray(v, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):  # a diverged net: nothing meaningful to test
        return dict.fromkeys(_STATS, math.nan)
    n = v.size
    mean = float(v.mean()) if n else math.nan
    c = v - mean
    m2 = float(np.mean(c**2)) if n else math.nan
    m3 = float(np.mean(c**3)) if n else math.nan
    pos, neg = int(np.sum(v > 0)), int(np.sum(v < 0))
    out = {
        "mean": mean,
        "std": math.sqrt(m2) if n else math.nan,
        "skewness": m3 / m2**1.5 if n and m2 > 0 else math.nan,
        "frac_zero": (n - pos - neg) / n if n else math.nan,
        "frac_pos": pos / (pos + neg) if pos + neg else math.nan,
        "sign_p": float(stats.binomtest(pos, pos + neg, 0.5).pvalue) if pos + neg else math.nan,
        "ks_stat": math.nan,
        "ks_p": math.nan,
    }
    if pos + neg and n > 1:  # (one entry: no distribution to compare)
        ks = stats.ks_2samp(v, -v, method="asymp")
        out["ks_stat"], out["ks_p"] = float(ks.statistic), float(ks.pvalue)
    return out


def correlation_spectra(weight: np.ndarray) -> dict[str, np.ndarray | float]:
    r"""Spectra of the within-layer weight correlations (Fok et al.; THEORY.md §7).

    With :math:`W` the weight reshaped to ``(n_out, fan_in)`` (row :math:`i`: the incoming
    weights of neuron / output channel :math:`i`):

    * ``gram``: eigenvalues of :math:`W W^\top / \mathrm{fan_{in}}`, ``(n_out,)``;
    * ``corr``: eigenvalues of the correlation-coefficient matrix :math:`C_{ij}` of the rows
      (each centred and scaled to unit norm; a row that is constant counts as zero),
      ``(n_out,)``;
    * ``participation``: :math:`(\sum\lambda)^2 / (n_{\rm out}\sum\lambda^2)` of ``corr``, 1 for
      an isotropic (permutation-symmetric, uncorrelated) layer, about :math:`1/n_{\rm out}` when
      one direction dominates.

    Eigenvalues are sorted, largest first; all NaN for a non-finite weight. Independent
    Gaussian rows give a Marchenko–Pastur ``corr`` spectrum with ratio
    :math:`n_{\rm out}/\mathrm{fan_{in}}`.

    >>> s = correlation_spectra(np.eye(3))
    >>> np.round(s["corr"], 6).tolist(), round(s["participation"], 6)
    ([1.5, 1.5, 0.0], 0.666667)
    """
    W = np.asarray(weight, dtype=np.float64)
    W = W.reshape(W.shape[0], -1)  # (n_out, fan_in)
    n_out, fan_in = W.shape
    if not np.all(np.isfinite(W)):  # a diverged net
        nan = np.full(n_out, math.nan)
        return {"gram": nan, "corr": nan.copy(), "participation": math.nan}
    gram = np.linalg.eigvalsh(W @ W.T / fan_in)[::-1]  # (n_out,)
    Wc = W - W.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(Wc, axis=1, keepdims=True)
    U = np.divide(Wc, norm, out=np.zeros_like(Wc), where=norm > 0)
    corr = np.clip(np.linalg.eigvalsh(U @ U.T)[::-1], 0.0, None)  # (n_out,)
    sq = float(np.sum(corr**2))
    part = float(np.sum(corr) ** 2 / (n_out * sq)) if sq > 0 and n_out > 1 else math.nan
    return {"gram": gram.copy(), "corr": corr.copy(), "participation": part}


# -- one observed epoch ---------------------------------------------------------------------------


def observe(
    epoch: int,
    model: nn.Module,
    layer_grads: list[torch.Tensor],
    weight_units: np.ndarray,
    gates: dict[str, np.ndarray],
    scalars: dict[str, float],
) -> dict[str, np.ndarray]:
    r"""Everything recorded at one observed epoch, as arrays (e.g. for one ``.npz``).

    Args:
        epoch: the epoch.
        model: the network (its weight layers in :func:`weight_layers` order).
        layer_grads: :math:`\partial R/\partial W_l` per weight layer, same order.
        weight_units: ``(L,)`` initial RMS weight per layer (the weight histograms' unit).
        gates: :func:`gate_statistics` of this epoch.
        scalars: e.g. ``loss``, ``order_parameter``, stored as 0-d arrays.

    Returns:
        ``{name: array}``: ``epoch``, ``layer_names`` ``(L,)``, ``layer_shapes`` ``(L, 4)``
        (padded with 1), ``weight_edges``, ``grad_edges``, ``weight_unit`` and ``grad_unit``
        ``(L,)``, ``weight_hist`` / ``grad_hist`` ``(L, 160)`` with ``*_under`` / ``*_over``
        ``(L,)``, ``weight_<stat>`` / ``grad_<stat>`` ``(L,)`` for each
        :func:`symmetry_statistics` key, ``corr_participation`` ``(L,)``, per layer
        ``corr_eigs_XX`` / ``gram_eigs_XX`` ``(n_out,)`` (``XX`` = layer index), the ``gates``
        arrays and the ``scalars``.
    """
    layers = weight_layers(model)
    L = len(layers)
    if len(layer_grads) != L or np.shape(weight_units) != (L,):
        raise ShapeError(
            f"need one gradient and one unit per weight layer ({L}), got {len(layer_grads)} "
            f"gradients and units of shape {np.shape(weight_units)}"
        )
    obs: dict[str, np.ndarray] = {
        "epoch": np.array(epoch),
        "layer_names": np.array([n for n, _ in layers], dtype=np.str_),
        "layer_shapes": np.array(
            [list(m.weight.shape) + [1] * (4 - m.weight.ndim) for _, m in layers], dtype=np.int64
        ),
        "weight_edges": WEIGHT_EDGES,
        "grad_edges": GRAD_EDGES,
        "weight_unit": np.asarray(weight_units, dtype=np.float64),
    }
    nb = len(WEIGHT_EDGES) - 1
    arrays = {key: np.zeros((L, nb), dtype=np.int64) for key in ("weight_hist", "grad_hist")} | {
        key: np.zeros(L, dtype=np.int64)
        for key in ("weight_under", "weight_over", "grad_under", "grad_over")
    }
    arrays["grad_unit"] = np.zeros(L)
    arrays["corr_participation"] = np.zeros(L)
    for kind in ("weight", "grad"):
        for s in _STATS:
            arrays[f"{kind}_{s}"] = np.zeros(L)
    for l, ((_, m), g) in enumerate(zip(layers, layer_grads, strict=True)):
        w = m.weight.detach().to("cpu", torch.float64).numpy()
        gv = g.detach().to("cpu", torch.float64).numpy().ravel()
        unit = float(weight_units[l])
        arrays["weight_hist"][l], arrays["weight_under"][l], arrays["weight_over"][l] = (
            fixed_histogram(w.ravel() / unit, WEIGHT_EDGES)
        )
        rms = float(np.sqrt(np.mean(gv**2)))
        arrays["grad_unit"][l] = rms
        scaled = gv / rms if rms > 0 else gv
        arrays["grad_hist"][l], arrays["grad_under"][l], arrays["grad_over"][l] = fixed_histogram(
            scaled, GRAD_EDGES
        )
        for kind, v in (("weight", w.ravel()), ("grad", gv)):
            for s, val in symmetry_statistics(v).items():
                arrays[f"{kind}_{s}"][l] = val
        spec = correlation_spectra(w)
        obs[f"corr_eigs_{l:02d}"] = spec["corr"]
        obs[f"gram_eigs_{l:02d}"] = spec["gram"]
        arrays["corr_participation"][l] = spec["participation"]
    obs.update(arrays)
    obs.update({k: np.asarray(v, dtype=np.float64) for k, v in gates.items()})
    obs.update({k: np.array(float(v)) for k, v in scalars.items()})
    return obs
