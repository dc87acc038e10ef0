r"""The fixed-gate Hessian products of a gated net (the package's docstring derives them):
the kept primal pass of a batch (:class:`_Primal`), the tangent and adjoint passes of ``k``
vectors together (:func:`_block`) and :class:`GatedProducts`, which keeps the passes and takes
products, blocks and per-example entries."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from umwelt.nn.hessian.base import Batch
from umwelt.nn.hessian.gated.entries import _Entries, _EntryRows, _Units
from umwelt.nn.hessian.gated.layers import GatedLayer
from umwelt.nn.hessian.gated.maps import _by_batch, _by_channels, _Maps, _maps_for, _side_by_side
from umwelt.nn.losses import LossFn
from umwelt.nn.models import FlatMLP
from umwelt.nn.vgg import GatedVGG

__all__ = ["DEFAULT_CACHE_BYTES", "GatedProducts"]

DEFAULT_CACHE_BYTES = 2**30  # primal passes kept per operator (1 GiB), batch by batch
MIN_BLOCK_BYTES = 64 * 2**20  # a block product's tangents may always take this much (64 MiB)
MAX_BLOCK = 16  # vectors in one block pass, at most
BLOCK_ROWS = 256  # examples × vectors per chunk of a block pass, at most (cache-sized calls)
# a block's memory, measured (GatedProducts.block_memory): per example and vector, the tangents
# kept and about this many times the widest layer (the unfolded input of a convolution, its
# output, the adjoints); per vector, about this many parameter-sized tensors
_TRANSIENT = 14
_WEIGHT_COPIES = 6


@dataclass
class _Primal:
    """The v-independent part of a batch's products (see the module docstring)."""

    inputs: list[torch.Tensor]  # a_{l-1} as layer l reads it
    gates: list[torch.Tensor | float | None]  # h_l; at the maxima after a pooling
    argmax: list[torch.Tensor | None]  # the pooling's choices
    shapes: list[tuple[int, ...] | None]  # x_l's shape before the pooling
    flat_from: list[tuple[int, ...] | None]  # a_{l-1}'s shape before layer l flattens it
    adjoints: list[torch.Tensor | None]  # δ_l = ∂(c·f)/∂z_l, l ≥ 1
    curvature: torch.Tensor | None  # d = w ℓ''(f), (B,); None when it is 0
    nbytes: int
    tangent_bytes: int  # a block's memory per example and vector (GatedProducts.block_memory)
    size: int = 0  # examples of the batch, kept or not
    kept: torch.Tensor | None = None  # their positions in the batch (None: all, in order)
    bad: torch.Tensor | None = None  # positions in the batch whose f, ℓ' or ℓ'' is not finite

    @property
    def n(self) -> int:
        """Examples kept (those with a share in :math:`H`)."""
        return self.inputs[0].shape[0]

    @property
    def positions(self) -> torch.Tensor:
        """The kept examples' positions in the batch, ``(n,)`` int64."""
        if self.kept is not None:
            return self.kept
        return torch.arange(self.n, device=self.inputs[0].device)

    def rows(self, start: int, stop: int) -> _Primal:
        """The kept pass of examples ``start:stop`` (views, no copy)."""
        sl = slice(start, stop)
        n = len(range(*sl.indices(self.n)))

        def cut(t):
            return t[sl] if isinstance(t, torch.Tensor) else t

        def resized(shape):
            return None if shape is None else (n, *shape[1:])

        return _Primal(
            inputs=[cut(t) for t in self.inputs],
            gates=[cut(h) for h in self.gates],
            argmax=[cut(i) for i in self.argmax],
            shapes=[resized(t) for t in self.shapes],
            flat_from=[resized(t) for t in self.flat_from],
            adjoints=[cut(t) for t in self.adjoints],
            curvature=cut(self.curvature),
            nbytes=0,
            tangent_bytes=self.tangent_bytes,
            size=n,
            kept=self.positions[sl],
        )


class GatedProducts:
    r"""Fixed-gate products :math:`HV` of one model's risk, batch by batch, with a cache.

    Args:
        model: the model (:func:`gated_layers` must accept it).
        layers: its :func:`gated_layers`.
        loss: per-example losses ``(f, y) -> (B,)``; each :math:`\ell_i` must depend on
            :math:`f_i` only (:math:`c` and :math:`d` are taken elementwise).
        cache_bytes: the most memory the kept primal passes may take, in bytes; batches are kept
            in the order they are first met while they fit (0: keep none). A block product's
            tangents take at most as much again (:meth:`columns`, :meth:`chunk_examples`),
            at least those of one vector on one example.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: tuple[GatedLayer, ...],
        loss: LossFn,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        self.layers = layers
        self.cache_bytes = cache_bytes
        if isinstance(model, GatedVGG):
            self._prepare: Callable[[torch.Tensor], torch.Tensor] = _checked(model)
        elif isinstance(model, FlatMLP):
            self._prepare = model._flat
        else:
            self._prepare = _identity
        self._loss = loss
        p = next(model.parameters())
        self._maps = _maps_for(p.dtype, p.device)
        # blocks pay where the stacked calls run faster: float64 on a CPU (_SlowConvMaps) and,
        # unmeasured, CUDA; not oneDNN's float32 on a CPU (product_columns)
        self._stacks = p.device.type != "cpu" or p.dtype == torch.float64
        params = dict(model.named_parameters())
        self._weight_bytes = sum(params[lay.name].numel() for lay in layers) * p.element_size()
        self._cache: dict[tuple[int, int], _Primal] = {}
        self._stamp: tuple[int, ...] | None = None

    @property
    def cached_bytes(self) -> int:
        """Memory held by the kept primal passes, in bytes."""
        return sum(p.nbytes for p in self._cache.values())

    @property
    def vector_bytes(self) -> int:
        """A block's memory per vector that does not grow with the examples: about
        :data:`_WEIGHT_COPIES` parameter-sized tensors (the vector, its weights stacked and
        flipped, the result and its terms)."""
        return _WEIGHT_COPIES * self._weight_bytes

    @property
    def block_bytes(self) -> int:
        """The most memory a block product's tangents may take: :attr:`cache_bytes`, at least
        :data:`MIN_BLOCK_BYTES`."""
        return max(self.cache_bytes, MIN_BLOCK_BYTES)

    def primal(
        self, params: dict[str, torch.Tensor], batch: Batch, *, weighted: bool = True
    ) -> _Primal:
        r"""The batch's primal pass: kept, or computed (and kept if it fits the budget).

        Kept passes are dropped when a parameter has changed in place since (its version).
        ``weighted=False``: the pass of the unweighted losses (:math:`c = \ell'`,
        :math:`d = \ell''`, every :math:`w_i` taken as 1), for per-example products
        (:meth:`example_entries`); kept alongside the weighted one.
        """
        stamp = tuple(p._version for p in params.values())
        if stamp != self._stamp:
            self._cache.clear()
            self._stamp = stamp
        key = (batch.index.start, batch.index.stop, weighted)
        p = self._cache.get(key)
        if p is None:
            if not weighted:
                batch = replace(batch, w=torch.ones_like(batch.w))
            p = self._primal(params, batch)
            if self.cached_bytes + p.nbytes <= self.cache_bytes:
                self._cache[key] = p
        return p

    @torch.no_grad()
    def _primal(self, params: dict[str, torch.Tensor], batch: Batch) -> _Primal:
        L = len(self.layers)
        inputs, gates, argmax, shapes, flat_from = [], [], [], [], []
        a = self._prepare(batch.x)
        B = max(a.shape[0], 1)
        kept, widest = 0, 0  # per example: the tangents kept, the widest layer
        for layer in self.layers:
            W = params[layer.name]
            flat_from.append(a.shape if layer.flatten else None)
            if layer.flatten:
                a = a.flatten(1)  # (B, c·h·w)
            inputs.append(a)
            kept += a.numel() // B
            z = self._maps.forward(layer, a, W)
            widest = max(widest, a.numel() // B, z.numel() // B)
            h: torch.Tensor | float | None = None
            if layer.gate == "relu":
                h = (z > 0).to(z.dtype)
            elif layer.gate == "sample":
                h = batch.masks[layer.mask].to(z.dtype)
            elif layer.gate == "half":
                h = 0.5
            x = z if h is None else z * h  # x = dg(h) z
            idx = shape = None
            if layer.pool:
                shape = x.shape
                x, idx = F.max_pool2d(x, 2, return_indices=True)  # (B, c, h/2, w/2)
                if isinstance(h, torch.Tensor):
                    h = _at(h, idx)  # the gates at the maxima
            gates.append(h)
            argmax.append(idx)
            shapes.append(shape)
            a = x
        f = a[:, 0]  # (B,)
        size = f.shape[0]
        c, d = self._loss_derivatives(f, batch)
        keep = (c != 0) | ~torch.isfinite(f)  # a NaN must still reach the product
        bad = ~(torch.isfinite(f) & torch.isfinite(c))
        if d is not None:
            keep |= d != 0
            bad |= ~torch.isfinite(d)
        bad = bad.nonzero()[:, 0] if bool(bad.any()) else None
        rows = None
        if not bool(keep.all()):  # e.g. inactive hinges: no share in H, dropped
            rows = keep.nonzero()[:, 0]
            inputs, c = [t[rows] for t in inputs], c[rows]
            d = None if d is None else d[rows]
            gates = [h[rows] if isinstance(h, torch.Tensor) else h for h in gates]
            argmax = [None if i is None else i[rows] for i in argmax]
            shapes = [None if t is None else (len(rows), *t[1:]) for t in shapes]
            flat_from = [None if t is None else (len(rows), *t[1:]) for t in flat_from]
        adjoints: list[torch.Tensor | None] = [None] * L  # δ_0 is not needed (ȧ_0 = 0)
        dz = c[:, None]  # (B, 1)
        for l in range(L - 1, 0, -1):
            adjoints[l] = dz
            if l > 1:
                layer = self.layers[l]
                g = self._maps.input_grad(layer, dz, params[layer.name], inputs[l].shape)
                dz = _through_gate(l - 1, g[:, None], gates, argmax, shapes, flat_from)[:, 0]
        held = [*inputs, *adjoints, *gates, *argmax, d]
        nbytes = sum(t.numel() * t.element_size() for t in held if isinstance(t, torch.Tensor))
        tangent = (kept + _TRANSIENT * widest) * inputs[0].element_size()
        return _Primal(
            inputs, gates, argmax, shapes, flat_from, adjoints, d, nbytes, tangent, size, rows, bad
        )

    def _loss_derivatives(
        self, f: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:math:`c = w\\ell'(f)` and :math:`d = w\\ell''(f)` (``None`` when it is 0), by
        autograd of the per-example loss: any loss of :math:`f_i` alone (hinge, quadratic hinge,
        logistic or a callable)."""
        fq = f.detach().requires_grad_()
        with torch.enable_grad():
            risk = (batch.w * self._loss(fq, batch.y)).sum()
            (c,) = torch.autograd.grad(risk, fq, create_graph=True)
            d = None
            if c.requires_grad:
                (d,) = torch.autograd.grad(c.sum(), fq, allow_unused=True)
        if d is not None and not bool(d.any()):
            d = None
        return c.detach(), d

    def columns(self, primal: _Primal) -> int:
        """How many vectors one block pass on ``primal`` takes: as many as fit
        :attr:`block_bytes` on one example (:meth:`block_memory`), at least 1 and at most
        :data:`MAX_BLOCK`; 1 when a convolution is grouped (its output channels cannot be
        stacked)."""
        if any(layer.conv is not None and layer.conv[3] != 1 for layer in self.layers):
            return 1
        per = primal.tangent_bytes + self.vector_bytes
        return int(max(1, min(MAX_BLOCK, self.block_bytes // per)))

    def product_columns(self, primal: _Primal) -> int:
        """How many vectors one pass of :meth:`product` takes in a ``matmat``: :meth:`columns`,
        except on a CPU in float32, where a block runs no faster than its columns one by one:
        1 there. oneDNN's convolutions at ``vgg12``'s shapes run a block of 8 at most 1.20×
        faster than 8 products at width 1/8 and 1.02× at 1/4 (NCHW; channels-last 1.03× and
        0.80×; one thread, ``umwelt bench kernels``), and the gating, pooling and the block's
        layout copies gain nothing: ``matmat(8)`` with blocks measured 0.94× of 8 products at
        width 1/8, 0.92× at 1/4, 0.56× at full width."""
        if not self._stacks:
            return 1
        return self.columns(primal)

    def chunk_examples(self, primal: _Primal, k: int) -> int:
        """Examples per chunk of a block pass of ``k`` vectors: as many as fit
        :attr:`block_bytes` (:meth:`block_memory`), at most :data:`BLOCK_ROWS` ``// k``
        (cache-sized calls run faster on a CPU), at least 1."""
        fit = (self.block_bytes // k - self.vector_bytes) // max(primal.tangent_bytes, 1)
        return int(max(1, min(BLOCK_ROWS // k, fit)))

    def block_memory(self, primal: _Primal, k: int) -> int:
        """The memory (bytes) a product of ``k`` vectors on ``primal`` holds beyond the kept
        pass, at most: ``k'`` × (``chunk`` × :attr:`_Primal.tangent_bytes` +
        :attr:`vector_bytes`) for a block of ``k' = min(k,`` :meth:`columns` ``)`` vectors on
        a chunk of :meth:`chunk_examples` examples. The constants are measured (peak resident
        memory on ``vgg12``, float32 and float64, one thread)."""
        k = min(k, self.product_columns(primal))
        chunk = min(self.chunk_examples(primal, k), max(primal.n, 1))
        return k * (chunk * primal.tangent_bytes + self.vector_bytes)

    @torch.no_grad()
    def product(
        self, primal: _Primal, params: dict[str, torch.Tensor], V: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        r"""This batch's share of :math:`HV` for ``k`` vectors at once, per parameter.

        Args:
            primal: the batch's :meth:`primal` pass.
            params: the weights by name.
            V: each weight's part of the ``k`` vectors, ``(k, *shape)`` by name (``k`` at
                most :meth:`columns`).

        Returns:
            The batch's share of :math:`HV`, ``(k, *shape)`` by name; the examples taken in
            chunks of :meth:`chunk_examples`.
        """
        V = {name: v.contiguous() for name, v in V.items()}
        k = next(iter(V.values())).shape[0]
        out = {name: torch.zeros_like(v) for name, v in V.items()}
        stacked = {name: v.view(-1, *v.shape[2:]) for name, v in V.items()}  # (k·c_out, ...)
        side = {name: _side_by_side(v) for name, v in V.items()}  # (c_out, k·c_in, ...)
        dense = _Dense(self._maps, stacked, side, k)
        step = self.chunk_examples(primal, k)
        try:
            for s in range(0, primal.n, step):
                part = primal if step >= primal.n else primal.rows(s, s + step)
                collect = _WeightGradients(self._maps, self.layers, part, (stacked, side), out)
                _block(self.layers, self._maps, part, params, dense, collect)
        finally:
            self._maps.memo.clear()
        return out

    @torch.no_grad()
    def example_entries(
        self,
        primal: _Primal,
        params: dict[str, torch.Tensor],
        columns: tuple[str, torch.Tensor],
        rows: dict[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        r"""Per example, entries of :math:`\nabla^2 \ell_i\, e_k` for ``k`` unit vectors at once.

        The tangent and adjoint passes of :meth:`product` for the unit vectors of ``k``
        columns in one weight, but no weight gradient is summed over the examples: at the
        requested rows alone, per example :math:`i` and column,
        :math:`(\dot\delta \otimes a + \delta \otimes \dot a)_i`. A conv weight's row
        :math:`(o, c, p, q)` is :math:`\sum_{y,x} \dot\delta_{i,o,y,x}\, a_{i,c,y+p,x+q} +
        \delta_{i,o,y,x}\,\dot a_{i,c,y+p,x+q}` (of the padded input, with the layer's stride
        and dilation), read from a strided view of the patches at the rows' :math:`(c, p, q)`
        only (memory ~ examples × rows × positions, in chunks of :data:`_GATHER`); a linear
        weight's row :math:`(o, c)` is :math:`\dot\delta_{i,o} a_{i,c} + \delta_{i,o}
        \dot a_{i,c}`.

        The unit vectors are not multiplied out: :math:`e_k a` is one channel of the input's
        patches and :math:`e_k^\top \delta` one channel of :math:`\delta` put back into the
        input's patches. Terms known to be zero are not computed: the tangents below the
        columns' layer, the adjoints above it when :math:`\ell'' = 0` (the hinge: no
        Gauss–Newton part), the tangents above the highest row (then) and the adjoints below
        the lowest. A block so costs about one convolution per layer and column (one pass,
        forward above the columns' layer and backward below it), against six for
        :meth:`product`.

        Args:
            primal: the batch's :meth:`primal` pass with ``weighted=False`` (a weighted pass
                gives :math:`w_i` times the entries).
            params: the weights by name.
            columns: ``(name, index (k,))``: the columns' weight and their flat indices in it
                (``k`` at most :meth:`columns`).
            rows: the requested rows, by weight name: ``(column (R,), index (R,))`` int64,
                the column (``0 … k-1``) of each and its flat index in the weight.

        Returns:
            ``(size, R)`` by name: the entries of every example of the batch (0 for the
            examples left out of the pass, NaN for those whose :math:`f`, :math:`\ell'` or
            :math:`\ell''` is not finite); the examples taken in chunks of
            :meth:`chunk_examples`.
        """
        name, index = columns
        k = len(index)
        at = {layer.name: l for l, layer in enumerate(self.layers)}
        slots = torch.arange(k, device=index.device)
        V = _Units(name, _EntryRows.of(self.layers[at[name]], params[name].shape, slots, index))
        p = params[name]
        out = {
            key: torch.zeros(primal.size, len(r[0]), dtype=p.dtype, device=p.device)
            for key, r in rows.items()
        }
        wanted = {
            at[key]: _EntryRows.of(self.layers[at[key]], params[key].shape, *r)
            for key, r in rows.items()
            if len(r[0])
        }
        if not wanted:
            return out
        step = self.chunk_examples(primal, k)
        positions, span = primal.positions, (min(wanted), max(wanted))
        for s in range(0, primal.n, step):
            part = primal if step >= primal.n else primal.rows(s, s + step)
            collect = _Entries(self.layers, part, wanted, out, positions[s : s + step])
            _block(self.layers, self._maps, part, params, V, collect, span)
        if primal.bad is not None:
            for t in out.values():
                t[primal.bad] = math.nan
        return out


def _block(
    layers: Sequence[GatedLayer],
    maps: _Maps,
    P: _Primal,
    params: dict[str, torch.Tensor],
    V: _Dense | _Units,
    collect: Callable[[int, torch.Tensor | None, torch.Tensor | None], None],
    span: tuple[int, int] | None = None,
) -> None:
    r"""The tangent and adjoint passes of ``k`` vectors together, on the examples of ``P``;
    ``collect(l, δ̇_l, ȧ_{l-1})`` takes each layer's share, from the output layer down
    (:class:`_WeightGradients`: :math:`HV`; :class:`_Entries`: rows of it per example).

    Every term of a layer is one call for all ``k`` vectors (module docstring, *Block
    products*); the tangents :math:`\dot a` and adjoints :math:`\dot\delta` are
    ``(B, k, ...)``. ``V``: the ``k`` vectors, as weights (:class:`_Dense`) or as unit vectors
    (:class:`_Units`).

    ``span=None``: every term is computed (``V`` has every layer), a zero :math:`\dot\delta_L`
    too, so that a NaN anywhere reaches the product. ``span=(lowest, highest)``: only the
    layers ``lowest … highest`` are collected, and terms known to be zero are skipped (``None``
    for a zero tensor): those of a weight absent from ``V``, the tangents below the first layer
    of ``V``, the adjoints above its last when :math:`d = 0`, the tangents above ``highest``
    then and the adjoints below ``lowest``.
    """
    L = len(layers)
    k = V.k
    lowest, highest = (0, L - 1) if span is None else span
    stop = highest if span is not None and P.curvature is None else L  # no tangent above it
    B = P.n
    tangents: list[torch.Tensor | None] = []
    ad: torch.Tensor | None = None  # ȧ_{l-1}, (B, k, ...)
    for l, layer in enumerate(layers):
        if layer.flatten and ad is not None:
            ad = ad.flatten(2)  # (B, k, c·h·w)
        tangents.append(ad)
        if l == stop:
            break
        W, a = params[layer.name], P.inputs[l]
        zd = None
        if layer.name in V:
            zd = V.forward(layer, a, W.shape)  # V a: (B, k, c_out, ...)
        if ad is not None:
            wa = maps.forward(layer, _by_batch(ad), W)  # W ȧ
            zd = wa.view(B, k, *wa.shape[1:]) if zd is None else zd.add_(wa.view(zd.shape))
        if zd is None:
            continue  # ȧ_l = 0
        idx, h = P.argmax[l], P.gates[l]
        if idx is not None:
            zd = _at(zd, idx)  # (B, k, c, h/2, w/2)
        if isinstance(h, torch.Tensor):
            zd *= h[:, None]
        elif h is not None:
            zd *= h
        ad = zd
    dzd: torch.Tensor | None = None  # δ̇_L = d · J v: (B, k, 1), then δ̇_l (B, k, ...)
    if stop == L and ad is not None:
        fd = ad[:, :, 0]  # (B, k): J v
        # a zero δ̇_L still meets W_L (span=None), so that a NaN there reaches the product
        if P.curvature is not None:
            dzd = (fd * P.curvature[:, None])[:, :, None]
        elif span is None:
            dzd = torch.zeros_like(fd)[:, :, None]
    for l in range(L - 1, lowest - 1, -1):
        layer = layers[l]
        ad = tangents[l] if l < len(tangents) else None
        if l <= highest:
            collect(l, dzd, ad)
        if l == lowest:
            break
        W, shape = params[layer.name], P.inputs[l].shape  # a_{l-1}: (B, c_in, ...)
        g = None
        if layer.name in V:  # Vᵀ δ: (B, k, c_in, ...)
            g = V.transposed(layer, P.adjoints[l], shape)
        if dzd is not None:  # + Wᵀ δ̇
            wd = maps.input_grad(layer, _by_batch(dzd), W, (B * k, *shape[1:]))
            g = wd.view(B, k, *shape[1:]) if g is None else g.add_(wd.view(g.shape))
        if g is not None:
            g = _through_gate(l - 1, g, P.gates, P.argmax, P.shapes, P.flat_from)
        dzd = g


class _Dense:
    r"""``k`` vectors as weights for :func:`_block`: each layer's ``stacked`` along the output
    channels, ``(k·c_out, c_in, ...)``, and ``side`` by side along the input channels,
    ``(c_out, k·c_in, ...)`` (:func:`_side_by_side`); each term one call of ``maps``."""

    def __init__(self, maps: _Maps, stacked, side, k: int):
        self.maps, self.stacked, self.side, self.k = maps, stacked, side, k

    def __contains__(self, name: str) -> bool:
        return name in self.stacked

    def forward(self, layer: GatedLayer, a: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """:math:`V a` ``(B, k, c_out, ...)`` (``shape``: the weight's)."""
        zd = self.maps.forward(layer, a, self.stacked[layer.name])  # (B, k·c_out, ...)
        return zd.view(a.shape[0], self.k, shape[0], *zd.shape[2:])

    def transposed(
        self, layer: GatedLayer, delta: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        r""":math:`V^\top \delta` ``(B, k, c_in, ...)`` (``shape``: the layer input's)."""
        B = delta.shape[0]
        wide = (B, self.k * shape[1], *shape[2:])
        g = self.maps.input_grad(layer, delta, self.side[layer.name], wide)
        return g.view(B, self.k, *shape[1:])


class _WeightGradients:
    r""":meth:`GatedProducts.product`'s share of each layer: :math:`\dot\delta \otimes a +
    \delta \otimes \dot a`, summed over the examples of ``P``, added to ``out``
    (``(k, *W.shape)`` by name); ``V`` as :func:`_block` takes it."""

    def __init__(self, maps, layers, P, V, out):
        self.maps, self.layers, self.P, self.V, self.out = maps, layers, P, V, out

    def __call__(self, l: int, dzd: torch.Tensor, ad: torch.Tensor | None) -> None:
        layer, P, (stacked, side) = self.layers[l], self.P, self.V
        acc, Vs, Vt = self.out[layer.name], stacked[layer.name], side[layer.name]
        k = acc.shape[0]
        # δ̇ ⊗ a: the k adjoints stacked along the output channels
        gw = self.maps.weight_grad(layer, _by_channels(dzd), P.inputs[l], Vs.shape)
        acc += gw.view(acc.shape)
        if ad is None:
            return
        # δ ⊗ ȧ: the k tangents stacked along the input channels, (c_out, k·c_in, ...)
        gw = self.maps.weight_grad(layer, P.adjoints[l], _by_channels(ad), Vt.shape)
        acc += gw.reshape(acc.shape[1], k, *acc.shape[2:]).transpose(0, 1)


def _through_gate(
    l: int,
    g: torch.Tensor,
    gates: Sequence[torch.Tensor | float | None],
    argmax: Sequence[torch.Tensor | None],
    shapes: Sequence[tuple[int, ...] | None],
    flat_from: Sequence[tuple[int, ...] | None],
) -> torch.Tensor:
    """The adjoints ``(B, k, ...)`` of :math:`z_l` from those of layer ``l + 1``'s input
    ``g``."""
    B, k = g.shape[:2]
    if flat_from[l + 1] is not None:
        g = g.reshape(B, k, *flat_from[l + 1][1:])  # (B, k, c, h, w)
    idx, h = argmax[l], gates[l]
    if isinstance(h, torch.Tensor):
        g = g * h[:, None]  # after a pooling: the gates at the maxima
    elif h is not None:
        g = g * h
    if idx is None:
        return g
    _, c, H, W = shapes[l]
    out = g.new_zeros(B, k, c, H * W)
    out.scatter_(3, idx.flatten(2)[:, None].expand(B, k, c, -1), g.flatten(3))  # poolᵀ
    return out.view(B, k, c, H, W)


def _at(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t`` ``(B, [k,] c, H, W)`` at the pooling's choices ``idx`` ``(B, c, H/2, W/2)``."""
    i = idx.flatten(2)  # (B, c, H·W/4)
    if t.ndim == 5:
        i = i[:, None].expand(t.shape[0], t.shape[1], *i.shape[1:])
    return t.flatten(-2).gather(-1, i).view(*t.shape[:-2], *idx.shape[2:])


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _checked(model: GatedVGG) -> Callable[[torch.Tensor], torch.Tensor]:
    def prepare(x: torch.Tensor) -> torch.Tensor:
        model._check_input(x)
        return x

    return prepare
