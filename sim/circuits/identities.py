r"""Step 1 of ``umwelt circuits``: the circuit identities, checked against torch autograd.

For every input, :math:`\sum_i \Psi_i = f(x)`, every gradient entry as the sum of
:math:`\Omega^{(l)}` and sampled Hessian entries as sums of :math:`\Omega^{(l,l')}`
(:mod:`sim.circuits`, step 1): the circuit side by enumerating every circuit
(:func:`_enumerated_sums`) or by dynamic programming over the circuit graph, the oracle by
torch autograd in float64 through the same net with the same gates fixed (:func:`_autograd`),
each error normwise relative (:func:`_rel`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sim.circuits.nets import _Net
from umwelt.errors import EnumerationLimitError

if TYPE_CHECKING:  # umwelt.circuits (networkx) is imported where it is used: a quick --help
    from umwelt.circuits import ConvCircuits, ConvNetwork


# -- the torch oracle -----------------------------------------------------------------------------


def _torch_f(net: ConvNetwork, x, gates, params):
    """``f`` of ``net`` in torch with ``params`` (the weights, layer by layer) and the gates
    fixed; max-pooling by ``torch.nn.functional.max_pool2d``."""
    import torch
    import torch.nn.functional as F

    a = torch.as_tensor(x.reshape(net.input_shape), dtype=torch.float64)[None]
    K = len(net.convs)
    gi = iter(gates)
    for W, pool in zip(params[:K], net.pool_after):
        h = torch.as_tensor(next(gi)[None]) > 0
        a = torch.where(h, F.conv2d(a, W, padding=W.shape[-1] // 2), 0.0)
        if pool:
            a = F.max_pool2d(a, 2)
    a = a.flatten(1)
    for W in params[K:-1]:
        a = torch.where(torch.as_tensor(next(gi)[None]) > 0, a @ W, 0.0)
    return (a @ params[-1])[0, 0]


def _autograd(net: ConvNetwork, x, gates, hess_entries) -> tuple[float, list, np.ndarray]:
    """``(f, gradient per layer, Hessian entries)`` by torch autograd in float64, the gates
    fixed; the entries ``(l, p, l', q)`` (flat indices) come from Hessian-vector products with
    the unit vectors of the distinct ``(l, p)``, forward-over-reverse (``torch.func.jvp`` of
    ``torch.func.grad``, batched by ``torch.func.vmap``)."""
    import torch
    from torch.func import grad, jvp, vmap

    from umwelt.nn.hessian.model import load_forward_ad

    load_forward_ad()
    params = tuple(torch.tensor(W, dtype=torch.float64) for W in net.weights)

    def f(*ps):
        return _torch_f(net, x, gates, ps)

    g = grad(f, argnums=tuple(range(len(params))))
    f0 = float(f(*params))
    grads = [t.numpy() for t in g(*params)]
    out = np.zeros(len(hess_entries))
    if len(hess_entries):
        cols = sorted({(l1, p) for l1, p, _, _ in hess_entries})
        where = {c: i for i, c in enumerate(cols)}
        tangents = [torch.zeros((len(cols), *W.shape), dtype=torch.float64) for W in params]
        for i, (l1, p) in enumerate(cols):
            tangents[l1 - 1].view(len(cols), -1)[i, p] = 1.0

        def hvp(*v):
            return jvp(g, params, v)[1]

        H = vmap(hvp)(*tangents)  # per layer (n_cols, *W.shape)
        for k, (l1, p, l2, q) in enumerate(hess_entries):
            out[k] = float(H[l2 - 1].reshape(len(cols), -1)[where[(l1, p)], q])
    return f0, grads, out


# -- the circuit side -----------------------------------------------------------------------------


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Normwise relative error ``max|a - b| / max|b|`` (0 when both vanish)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(b))), float(np.max(np.abs(a))) if not np.any(b) else 0.0)
    err = float(np.max(np.abs(a - b)))
    return 0.0 if err == 0 else err / scale if scale > 0 else math.inf


def _mlp_weight_entry(path: np.ndarray, l: int) -> tuple[int, int]:
    """The weight ``(a, b)`` a circuit uses in layer ``l`` (``b = 0`` for the output layer)."""
    L = path.size
    return int(path[l - 1]), int(path[l]) if l < L else 0


def _check_identities(cfg, n: _Net, X, G, rng) -> dict:
    """Circuit sums vs autograd for every input (:mod:`sim.circuits`, step 1)."""
    from umwelt.circuits import ConvCircuits, ConvNetwork

    B = X.shape[0]
    conv = n.net if n.kind == "conv" else ConvNetwork.from_layered(n.net)
    circuits = [ConvCircuits(conv, X[b].reshape(-1), G[b], pool=cfg.pool) for b in range(B)]
    counts = [cc.count for cc in circuits]
    total = sum(counts)
    enumerate_ = cfg.force_enumerate or total <= cfg.max_circuits
    if cfg.force_enumerate and total > cfg.max_circuits:
        raise EnumerationLimitError(
            f"enumerating {total} circuits ({B} inputs × {counts[0]} circuits"
            f"{'' if len(set(counts)) == 1 else ' or so'}) is over the memory budget of "
            f"{cfg.max_circuits} (--max-circuits); drop --enumerate to sum by dynamic programming"
        )
    D = conv.depth
    if enumerate_:  # one input's circuits at a time: units, parameters, values per layer
        from umwelt import memory

        memory.check_fits(f"enumerating {total:,} circuits", 8 * max(counts) * (2 * D + 8))
    # Hessian entries along sampled circuits: (input, l, p, l', q)
    entries: list[tuple[int, int, int, int, int]] = []
    if D >= 2:
        for _ in range(cfg.checks):
            b = int(rng.integers(B))
            if counts[b] == 0:
                continue
            path = circuits[b].sample_paths(1, rng)
            prm = circuits[b].params(path)[0]
            l1, l2 = sorted(int(v) for v in rng.choice(np.arange(1, D + 1), 2, replace=False))
            entries.append((b, l1, int(prm[l1 - 1]), l2, int(prm[l2 - 1])))
    f_c, f_t, g_c, g_t, h_c, h_t = [], [], [], [], [], []
    for b, cc in enumerate(circuits):
        mine = [e[1:] for e in entries if e[0] == b]
        ft, gt, ht = _autograd(conv, X[b], cc.forward.gates, mine)
        f_t.append(ft)
        g_t.append(np.concatenate([g.ravel() for g in gt]))
        h_t.extend(ht)
        if enumerate_:
            fc, gc, hc = _enumerated_sums(n, cc, X[b], G[b], mine, cfg.max_circuits)
        else:
            fc = cc.path_sum()
            gc = cc.gradient()
            hc = cc.hessian_entries(mine) if mine else np.zeros(0)
        f_c.append(fc)
        g_c.append(np.concatenate([g.ravel() for g in gc]))
        h_c.extend(hc)
    return {
        "circuits": circuits,
        "n_circuits": counts[0],
        "n_circuits_per_input": counts,
        "enumerated": bool(enumerate_),
        "method": "enumeration" if enumerate_ else "dynamic programming over the circuit graph",
        "f_autograd": f_t,
        "f_circuits": f_c,
        "sum_rel_error": _rel(f_c, f_t),
        "grad_rel_error": _rel(np.concatenate(g_c), np.concatenate(g_t)),
        "hessian_rel_error": _rel(h_c, h_t) if h_t else None,
        "grad_entries_checked": int(sum(g.size for g in g_t)),
        "hessian_entries_checked": len(h_t),
    }


def _enumerated_sums(n: _Net, cc: ConvCircuits, x, gates, entries, budget):
    """Σψ, every Σ Ω⁽¹⁾ and the Σ Ω⁽²⁾ of ``entries`` by listing every circuit."""
    from umwelt.circuits import PathIndex, circuit_values, sampled_first_order, second_order

    if n.kind == "mlp":  # the numba kernels of umwelt.circuits
        net = n.net
        psi = circuit_values(net, x.reshape(-1), gates, limit=budget)
        paths = PathIndex.from_network(net).all_paths(limit=budget)
        grads = []
        for l in range(1, net.depth + 1):
            om = sampled_first_order(net, x.reshape(-1), gates, paths, l)
            g = np.zeros(net.weights[l - 1].shape)
            col = paths[:, l] if l < net.depth else np.zeros(len(paths), dtype=np.int64)
            np.add.at(g, (paths[:, l - 1], col), om)
            grads.append(g)
        hess = []
        for l1, p, l2, q in entries:
            a, b = divmod(p, net.weights[l1 - 1].shape[1])
            c, d = divmod(q, net.weights[l2 - 1].shape[1])
            hess.append(second_order(net, x.reshape(-1), gates, l1, a, b, l2, c, d).sum())
        return float(psi.sum()), grads, np.array(hess)
    paths = cc.all_paths(limit=budget)
    psi = cc.values(paths)
    prm = cc.params(paths)
    grads = []
    for l, W in enumerate(cc.net.weights, start=1):
        om = cc.values(paths, l)
        grads.append(np.bincount(prm[:, l - 1], weights=om, minlength=W.size).reshape(W.shape))
    hess = []
    for l1, p, l2, q in entries:
        m = (prm[:, l1 - 1] == p) & (prm[:, l2 - 1] == q)
        hess.append(cc.values(paths[m], (l1, l2)).sum())
    return float(psi.sum()), grads, np.array(hess)
