r"""The Hessian of a model's risk: :class:`ModelHessian`, products :math:`Hv` by autodiff.

The risk of a model with parameters :math:`\theta \in \mathbb R^N` on a data set (the full
training set or a fixed subset) is a weighted sum of per-example losses,

.. math::
    R(\theta) = \sum_i w_i\,\ell\big(y_i f(x_i; \theta, h_i)\big), \qquad w_i = 1/n
    \text{ by default}, \qquad H = \nabla^2_\theta R,

computed in batches: a batch contributes :math:`\sum_{i \in b} w_i \ell_i`, so unequal batches
are weighted exactly (:math:`R = \sum_b (n_b/n) R_b` with the default weights). A product
:math:`Hv` is, batch by batch, either ``torch.func.jvp`` of ``torch.func.grad``
(forward-over-reverse, as curvlinops does; any model) or, for the gated nets of this package,
the same forward-over-reverse product written out by hand with the :math:`v`-independent primal
pass kept between products (:mod:`~umwelt.nn.hessian.gated`: 0.5–0.65 of the ``torch.func``
cost on ``vgg12``, less with inactive hinges; ``matmat`` of ``k`` vectors in one tangent and
one adjoint pass for up to 16 of them); ``ad="auto"`` (the default) takes the second
wherever it applies, for every named loss (hinge, quadratic hinge, logistic: the hand-written
product takes :math:`\ell'` and :math:`\ell''` per example from the loss).

**A table of strategies** (:mod:`~umwelt.nn.hessian.ad_modes`). Each ``ad`` mode but
``"auto"`` is one strategy (as curvlinops' ``kfac.py`` picks a backend from
``_BACKENDS[backend]``): how the products of a batch are summed into :math:`HV`, and which
second derivative of ``torch.func`` the per-example products take. ``"auto"`` chooses
``"gated"`` or ``"fwd-over-rev"`` on construction (:attr:`ModelHessian.ad`,
:attr:`ModelHessian.ad_fallback`).

**Gates are held fixed, as in the M-step** (THEORY.md §2): gates in ``"sample"`` mode at
:math:`T > 0` are drawn once per example, seeded by the example's index, and stored; every
product uses the stored sample (:mod:`~umwelt.nn.hessian.fixed_gates`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.gate import Gate
from umwelt.nn.hessian.ad_modes import _STRATEGIES, AD_MODES, _EntryColumns, load_forward_ad
from umwelt.nn.hessian.base import Batch, HessianOperator
from umwelt.nn.hessian.fixed_gates import FixedGates
from umwelt.nn.hessian.gated import (
    DEFAULT_CACHE_BYTES,
    GatedLayer,
    GatedProducts,
    gated_layers,
)
from umwelt.nn.losses import PER_EXAMPLE_LOSSES, LossFn

__all__ = ["AD_MODES", "PER_EXAMPLE_LOSSES", "ModelHessian", "load_forward_ad"]


class ModelHessian(HessianOperator):
    r"""The Hessian of a model's risk on a data set, by forward-over-reverse products.

    :math:`R(\theta) = \sum_i w_i \ell(f(x_i; \theta), y_i)`, :math:`\theta` = the model's
    trainable parameters flattened in ``named_parameters`` order; gates fixed as described in
    :mod:`~umwelt.nn.hessian.fixed_gates`. Works for any ``nn.Module`` mapping ``(B, ...)`` to
    ``(B,)`` or ``(B, 1)``; the parameters are read (detached) at construction, so later
    changes to the model are not seen.

    Args:
        model: e.g. a :class:`~umwelt.nn.mlp.GatedMLP` or a VGG with
            :class:`~umwelt.nn.gate.Gate` modules. Its parameters must share one floating dtype.
        X: inputs ``(n, ...)``; cast to the parameters' dtype and device.
        y: labels ``(n,)`` in ``{-1, +1}``.
        loss: ``"hinge"``, ``"quadratic-hinge"``, ``"logistic"`` (:data:`PER_EXAMPLE_LOSSES`)
            or a callable ``(f, y) -> (B,)`` of per-example losses.
        batch_size: examples per batch (default: all in one); the last batch may be smaller.
        indices: a fixed subset of the examples (1-D integer indices into ``X``); default all.
        example_weights: :math:`w_i` for the selected examples, ``(n_sel,)``, finite and
            ``≥ 0`` (default :math:`1/n_\mathrm{sel}`); e.g. bootstrap counts over ``n``.
        gate_seed: seed of the fixed gate sample (sampling gates at :math:`T > 0` only).
        gate_masks: a fixed gate sample to use instead of drawing one: one bool tensor
            ``(n_sel, ...)`` per sampling gate, in module order (:attr:`gate_masks` of another
            operator on the same examples).
        column_chunk: how many vectors :meth:`matmat` pushes through one vectorized
            (``torch.func.vmap``) product, which multiplies the activation memory by as much;
            1 disables vectorization. Default: 16 for ``N ≤ 10⁵``, else 1.
        ad: how a product is differentiated, the same :math:`Hv` to round-off at different
            costs (``sim/benchmarks/hessian.py`` times them): ``"gated"`` (by hand for a
            :class:`~umwelt.nn.mlp.GatedMLP` or :class:`~umwelt.nn.vgg.GatedVGG` with fixed
            gates, the primal pass kept: :mod:`~umwelt.nn.hessian.gated`), ``"fwd-over-rev"``
            (``jvp`` of ``grad``, as curvlinops, any model), ``"rev-over-fwd"`` (``grad`` of
            the ``jvp`` :math:`\nabla R \cdot v`), or ``"auto"`` (the default): ``"gated"``
            where it applies and the loss is a named one, else ``"fwd-over-rev"``.
            :attr:`ad` is the mode chosen, :attr:`ad_fallback` why ``"auto"`` did not choose
            ``"gated"``. :meth:`per_example_hvp` always uses ``torch.func``;
            :meth:`per_example_entries` takes the gated passes with ``ad="gated"``.
        cache_bytes: with ``ad="gated"``, the memory (bytes) the kept primal passes may take,
            batch by batch while they fit (default 1 GiB; 0 keeps none): at float32 on 32×32
            images about 0.55 MB per example for ``vgg12`` at width 1/4 and 2.2 MB at full
            width (examples with an inactive hinge take none); :attr:`cached_bytes` says what
            is held. A :meth:`matmat` of several vectors takes them in blocks, each one pass
            (:mod:`~umwelt.nn.hessian.gated`, *Block products*), whose tangents take at most as
            much again (at least 64 MiB): :meth:`block_memory` says how much.
        context: label named in error messages, e.g. ``"epoch 12"``.

    Raises:
        ConfigError: no trainable parameters, mixed or non-floating parameter dtypes, an
            unknown loss, bad batch size, indices or weights, a gate called more than once per
            forward pass, ``ad="gated"`` for a model it does not apply to (saying why) — naming
            the values.
        ShapeError: ``X`` and ``y`` do not match, an empty data set, a model output that is not
            ``(B,)``/``(B, 1)``, ``gate_masks`` of the wrong number or shape.
    """

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        loss: str | LossFn = "hinge",
        batch_size: int | None = None,
        indices: Sequence[int] | torch.Tensor | np.ndarray | None = None,
        example_weights: torch.Tensor | np.ndarray | None = None,
        gate_seed: int = 0,
        gate_masks: Sequence[torch.Tensor] | None = None,
        column_chunk: int | None = None,
        ad: str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        context: str | None = None,
    ):
        named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ConfigError(
                f"the model {type(model).__name__} has no trainable parameters: there is no "
                "Hessian to take"
            )
        dtypes = {p.dtype for _, p in named}
        if len(dtypes) > 1 or not next(iter(dtypes)).is_floating_point:
            raise ConfigError(
                "the trainable parameters must share one floating dtype, got "
                f"{sorted(map(str, dtypes))}"
            )
        dtype = named[0][1].dtype
        device = named[0][1].device
        n_params = sum(p.numel() for _, p in named)
        super().__init__(n_params, dtype=dtype, device=device, context=context)
        load_forward_ad()
        self._model = model
        self._names = tuple(k for k, _ in named)
        self._shapes = tuple(tuple(p.shape) for _, p in named)
        self._sizes = tuple(p.numel() for _, p in named)
        self._params = {k: p.detach() for k, p in named}
        if isinstance(loss, str):
            if loss not in PER_EXAMPLE_LOSSES:
                raise ConfigError(
                    f"loss must be one of {', '.join(PER_EXAMPLE_LOSSES)} or a callable, "
                    f"got {loss!r}"
                )
            self.loss_name = loss
            self._loss = PER_EXAMPLE_LOSSES[loss]
        elif callable(loss):
            self.loss_name = getattr(loss, "__name__", "custom")
            self._loss = loss
        else:
            raise ConfigError(f"loss must be a name or a callable, got {loss!r}")
        if column_chunk is None:
            column_chunk = 16 if n_params <= 100_000 else 1
        if isinstance(column_chunk, bool) or not isinstance(column_chunk, int) or column_chunk < 1:
            raise ConfigError(f"column_chunk must be a positive integer, got {column_chunk!r}")
        self.column_chunk = column_chunk
        if ad not in AD_MODES:
            raise ConfigError(f"ad must be one of {', '.join(AD_MODES)}, got {ad!r}")
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ConfigError(f"cache_bytes must be an integer ≥ 0, got {cache_bytes!r}")

        # -- data ---------------------------------------------------------------------------------
        if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ShapeError("X and y must be torch tensors")
        if X.ndim < 1 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise ShapeError(
                f"X must be (n, ...) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}"
            )
        n_all = X.shape[0]
        if indices is None:
            ids = torch.arange(n_all)
        else:
            ids = torch.as_tensor(np.asarray(indices)).reshape(-1)
            if ids.dtype not in (torch.int32, torch.int64) or ids.numel() == 0:
                raise ConfigError(f"indices must be a non-empty list of integers, got {indices!r}")
            if int(ids.min()) < 0 or int(ids.max()) >= n_all:
                raise ConfigError(
                    f"indices must lie in [0, {n_all}), got min {int(ids.min())} and "
                    f"max {int(ids.max())}"
                )
            ids = ids.to(torch.int64)
        if ids.numel() == 0:
            raise ShapeError("the data set is empty")
        self._ids = ids.cpu()
        if indices is not None:  # select; the full set is used as is (no copy when it fits)
            X, y = X[ids.to(X.device)], y[ids.to(y.device)]
        self._X = X.detach().to(device=device, dtype=dtype)
        self._y = y.detach().to(device=device, dtype=dtype)
        bad = ~((self._y == 1) | (self._y == -1))
        if bad.any():
            raise ConfigError(
                f"labels must be -1 or +1, got {self._y[bad][:5].tolist()} "
                f"({int(bad.sum())} such labels)"
            )
        n = self._X.shape[0]
        if example_weights is None:
            w = torch.full((n,), 1.0 / n, dtype=dtype, device=device)
        else:
            w = torch.as_tensor(
                np.asarray(example_weights)
                if not isinstance(example_weights, torch.Tensor)
                else example_weights
            )
            if w.shape != (n,):
                raise ShapeError(f"example_weights must have shape ({n},), got {tuple(w.shape)}")
            if not (torch.isfinite(w).all() and (w >= 0).all()):
                raise ConfigError("example_weights must be finite and ≥ 0")
            w = w.detach().to(device=device, dtype=dtype)
        self._w = w
        if batch_size is None:
            batch_size = n
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self._slices = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]

        # -- gates --------------------------------------------------------------------------------
        self._gates = FixedGates(model)
        self.gate_seed = int(gate_seed)
        if gate_masks is None:
            masks = self._gates.draw(self._X, self._ids, self._slices, self.gate_seed)
        else:
            masks = self._gates.checked(gate_masks, n, self.device)
        self._masks = tuple(masks)

        # -- how products are taken ---------------------------------------------------------------
        self.ad, self.ad_fallback, layers = self._choose_ad(ad)
        self._strategy = _STRATEGIES[self.ad]
        self._gated = None
        if layers is not None:
            self._gated = GatedProducts(model, layers, self._loss, cache_bytes)

    def _choose_ad(self, ad: str) -> tuple[str, str | None, tuple[GatedLayer, ...] | None]:
        """``(mode, why "auto" did not choose "gated", the gated layers)`` for ``ad``."""
        if ad not in ("auto", "gated"):
            return ad, None, None
        layers = gated_layers(self._model, self._names, self._gates.sampling)
        if ad == "gated":
            if isinstance(layers, str):
                raise ConfigError(f"ad='gated' does not apply to this model: {layers}")
            return ad, None, layers
        if isinstance(layers, str):
            return "fwd-over-rev", layers, None
        if self.loss_name not in PER_EXAMPLE_LOSSES:
            return "fwd-over-rev", f"the loss {self.loss_name!r} is not a named one", None
        return "gated", None, layers

    # -- layout ----------------------------------------------------------------------------------

    @property
    def model(self) -> nn.Module:
        """The model (its parameters as they were at construction are used)."""
        return self._model

    @property
    def loss_fn(self) -> LossFn:
        """The per-example loss ``(f, y) -> (B,)`` of the risk (:attr:`loss_name` names it)."""
        return self._loss

    @property
    def params(self) -> dict[str, torch.Tensor]:
        r"""The trainable parameters by name (detached), the point :math:`\theta` of the Hessian."""
        return dict(self._params)

    @property
    def n_examples(self) -> int:
        """Number of examples in the risk."""
        return self._X.shape[0]

    # -- the examples over processes (one process here; DistributedModelHessian shards them) --

    @property
    def distributed(self) -> bool:
        """Whether the examples are sharded over more than one process (here: no)."""
        return False

    @property
    def n_total(self) -> int:
        """Number of examples of the risk over all processes (here: :attr:`n_examples`)."""
        return self.n_examples

    @property
    def shard(self) -> slice:
        """This process's examples as positions in the full list (here: all of them)."""
        return slice(0, self.n_examples)

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the processes, in place; returns it (alone: ``t`` as it is)."""
        return t

    def any_failed(self, failed: bool) -> bool:
        """Whether any process reports ``failed`` (alone: ``failed``)."""
        return bool(failed)

    def reduce_numpy(self, a: np.ndarray) -> np.ndarray:
        """Sum a float64 numpy array over the processes (alone: ``a`` as it is)."""
        if not self.distributed:
            return a
        t = torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=self.device)
        return self.all_reduce(t).cpu().numpy()

    @property
    def example_ids(self) -> torch.Tensor:
        """Index of each of the operator's examples in the full ``X`` (int64, CPU)."""
        return self._ids

    @property
    def example_weights(self) -> torch.Tensor:
        """:math:`w_i`, ``(n_examples,)``."""
        return self._w

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the trainable parameters, in the order of the flat vector."""
        return self._names

    @property
    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the trainable parameters."""
        return self._shapes

    @property
    def param_offsets(self) -> np.ndarray:
        """``(P + 1,)`` start offsets of each parameter tensor in the flat vector, then ``N``."""
        return np.concatenate([[0], np.cumsum(self._sizes)]).astype(np.int64)

    def layer_of(self, index: np.ndarray | Sequence[int]) -> np.ndarray:
        """The parameter tensor (0-based, ``param_names`` order) of each flat index."""
        idx = np.asarray(index, dtype=np.int64)
        return np.searchsorted(self.param_offsets, idx, side="right") - 1

    @property
    def cached_bytes(self) -> int:
        """Memory held by the kept primal passes (``ad="gated"``; else 0), in bytes."""
        return 0 if self._gated is None else self._gated.cached_bytes

    def block_memory(self, k: int) -> int | None:
        """The memory (bytes) a :meth:`matmat` of ``k`` vectors holds beyond the kept primal
        passes, at most (``ad="gated"``; else ``None``): the largest
        :meth:`~umwelt.nn.hessian.gated.GatedProducts.block_memory` over the batches, within
        the cache setting (:attr:`~umwelt.nn.hessian.gated.GatedProducts.block_bytes`). Runs
        the primal passes not yet kept."""
        if self._gated is None:
            return None
        most = 0
        for b in self.batches():
            primal = self._gated.primal(self._params, b)
            most = max(most, self._gated.block_memory(primal, k))
        return most

    @property
    def gate_masks(self) -> tuple[torch.Tensor, ...]:
        """The fixed gate sample: one bool ``(n_examples, ...)`` tensor per sampling gate."""
        return self._masks

    @property
    def sampling_gates(self) -> tuple[Gate, ...]:
        """The gates held fixed to a stored sample (``"sample"`` mode at :math:`T > 0`)."""
        return tuple(self._gates.sampling)

    def flatten(self, tensors: dict[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate per-parameter tensors (a dict by name or a sequence) into ``(..., N)``.

        Leading batch dimensions (e.g. under ``vmap``) are kept if every tensor has them.
        """
        ts = [tensors[k] for k in self._names] if isinstance(tensors, dict) else list(tensors)
        lead = ts[0].shape[: ts[0].ndim - len(self._shapes[0])]
        return torch.cat([t.reshape(*lead, -1) for t in ts], dim=-1)

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat ``(..., N)`` vector into a dict of parameter-shaped tensors."""
        parts = torch.split(v, self._sizes, dim=-1)
        lead = v.shape[:-1]
        return {
            k: p.reshape(*lead, *s)
            for k, p, s in zip(self._names, parts, self._shapes, strict=True)
        }

    # -- data and gates ----------------------------------------------------------------------------

    def batches(self, batch_size: int | None = None) -> Iterator[Batch]:
        """The data in batches (default: the operator's ``batch_size``), with fixed gates."""
        if batch_size is None:
            slices = self._slices
        else:
            n = self.n_examples
            slices = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        for sl in slices:
            yield Batch(
                index=sl,
                x=self._X[sl],
                y=self._y[sl],
                w=self._w[sl],
                masks=tuple(m[sl] for m in self._masks),
            )

    def fixed_gates(self, masks: Sequence[torch.Tensor]) -> AbstractContextManager[None]:
        """Run the model with the sampling gates fixed to ``masks`` (and no gate recording).

        Inside, every sampling gate computes :math:`z \\odot h` with its mask; every gate's
        ``record`` is off so that no transformed (``torch.func``) tensor leaks into
        ``last_gates``.
        """
        return self._gates.fixed(masks)

    def _output(self, f: torch.Tensor, batch: int) -> torch.Tensor:
        if f.ndim == 2 and f.shape[1] == 1:
            f = f[:, 0]
        if f.shape != (batch,):
            raise ShapeError(
                f"the model must map a batch of {batch} to ({batch},) or ({batch}, 1), got "
                f"{tuple(f.shape)}"
            )
        return f

    # -- the risk and its derivatives --------------------------------------------------------------

    def batch_risk(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        r"""The batch's share of the risk, :math:`\sum_{i \in b} w_i \ell_i`, at ``params``.

        ``params`` maps the trainable parameters' names to tensors (``functional_call``);
        differentiable by ``torch.autograd`` and ``torch.func``.
        """
        with self.fixed_gates(batch.masks):
            f = functional_call(self._model, params, (batch.x,))
        f = self._output(f, batch.x.shape[0])  # (B,)
        return (batch.w * self._loss(f, batch.y)).sum()

    @torch.no_grad()
    def outputs(self) -> torch.Tensor:
        """``f(x_i)`` with the fixed gates, ``(n_examples,)``."""
        return torch.cat([self._output(self._forward(b), b.x.shape[0]) for b in self.batches()])

    def _forward(self, b: Batch) -> torch.Tensor:
        with self.fixed_gates(b.masks):
            return functional_call(self._model, self._params, (b.x,))

    @torch.no_grad()
    def risk(self) -> float:
        r""":math:`R = \sum_i w_i \ell_i` at the operator's parameters."""
        return float(sum(self.batch_risk(self._params, b).double() for b in self.batches()))

    def gradient(self) -> torch.Tensor:
        r""":math:`\nabla R`, ``(N,)``, by ``torch.func.grad`` batch by batch."""
        out = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        g = grad(self.batch_risk)
        for b in self.batches():
            out += self.flatten(g(self._params, b))
        return out

    def _hvp(
        self, risk: Callable[[dict[str, torch.Tensor]], torch.Tensor], v: torch.Tensor
    ) -> torch.Tensor:
        r""":math:`\nabla^2 r\, v` of a scalar function ``risk(params)``, flat ``(N,)``."""
        return self.flatten(self._strategy.second(risk, self._params, self.unflatten(v)))

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._strategy.matvec(self, v)

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self._strategy.matmat(self, V)

    def per_example_hvp(
        self, V: torch.Tensor, *, example_chunk: int = 32
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        r"""Per-example products :math:`\nabla^2_\theta \ell_i\, v_c` (unweighted), chunk by chunk.

        :math:`H V = \sum_i w_i\,(\nabla^2 \ell_i) V`. Vectorized with ``torch.func.vmap`` over
        the examples of a chunk and over the columns of ``V``; memory ``example_chunk × k × N``.

        Args:
            V: ``(N, k)`` vectors (e.g. unit vectors :math:`e_k`).
            example_chunk: examples per vectorized call.

        Yields:
            ``(slice, P)`` with ``P`` of shape ``(B, k, N)``: the chunk's examples (a slice of
            the operator's examples) and their products.
        """
        t, _ = self._vectors(V, 2)
        Vt = t.T.contiguous()  # (k, N)

        def one(x: torch.Tensor, y: torch.Tensor, masks: tuple[torch.Tensor, ...]):
            def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
                with self.fixed_gates(tuple(m[None] for m in masks)):
                    f = functional_call(self._model, p, (x[None],))
                return self._loss(self._output(f, 1), y[None]).sum()

            return vmap(lambda v: self._hvp(loss, v))(Vt)  # (k, N)

        for b in self.batches(example_chunk):
            P = vmap(one)(b.x, b.y, b.masks)  # (B, k, N)
            self._check_product(P)
            yield b.index, P

    def per_example_entries(
        self,
        rows: np.ndarray | Sequence[int],
        cols: np.ndarray | Sequence[int],
        *,
        column_chunk: int = 8,
        example_chunk: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        r"""Per-example Hessian entries :math:`c_{ie} = \partial^2 \ell_i / \partial\theta_{j_e}
        \partial\theta_{k_e}` (unweighted) of this operator's examples.

        :math:`H_{j_e k_e} = \sum_i w_i c_{ie}`. The distinct columns go in chunks of at most
        ``column_chunk``, each within one parameter tensor. With ``ad="gated"``, batch by
        batch, the fixed-gate passes of the chunk's unit vectors on the batch's unweighted
        primal pass, each example's rows read off the weight-gradient terms
        (:meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries`; memory as a block
        product's, and the primal pass kept as the cache allows); otherwise, chunk by chunk,
        :meth:`per_example_hvp` of the unit vectors, read off (memory ``example_chunk ×
        column_chunk × N``). The cost grows with the number of distinct columns.

        Args:
            rows: :math:`j_e`, ``(K,)`` flat parameter indices.
            cols: :math:`k_e`, ``(K,)``.
            column_chunk: distinct columns per chunk, at most.
            example_chunk: examples per vectorized call (``torch.func`` modes only).
            progress: called as ``progress(done, total)`` after each chunk of columns: the
                columns done of the distinct columns, with ``ad="gated"`` counted once per
                batch (the batches go outer there: one primal pass each).

        Returns:
            ``C``, ``(n_examples, K)`` in the operator's dtype.

        Raises:
            ShapeError: ``rows`` and ``cols`` not of one length, or an index outside ``[0, N)``.
            ConfigError: a bad ``column_chunk`` or ``example_chunk``.
            NonFiniteError: an entry is NaN or inf (as for a product).
        """
        j = np.asarray(rows, dtype=np.int64).reshape(-1)
        k = np.asarray(cols, dtype=np.int64).reshape(-1)
        if j.shape != k.shape:
            raise ShapeError(f"rows and cols must have one length, got {j.size} and {k.size}")
        for name, idx in (("rows", j), ("cols", k)):
            if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
                raise ShapeError(
                    f"{name} must lie in [0, {self.n}), got min {int(idx.min())} and "
                    f"max {int(idx.max())}"
                )
        for name, c in (("column_chunk", column_chunk), ("example_chunk", example_chunk)):
            if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 1:
                raise ConfigError(f"{name} must be a positive integer, got {c!r}")
        passes = len(self._slices) if self.ad == "gated" else 1
        E = _EntryColumns(self, j, k, int(column_chunk), int(example_chunk), progress, passes)
        out = self._strategy.example_entries(self, E)  # (n_examples, K)
        self._check_product(out)
        return out

    # the risk quoted in a non-finite-product message; a subclass whose risk() needs every
    # process overrides both (an error path may run on one process only: no collectives)
    _hint_risk_label = "the risk"

    def _hint_risk(self) -> float:
        return self.risk()

    def _nonfinite_hint(self) -> str:
        bad = [k for k, p in self._params.items() if not torch.isfinite(p).all()]
        if bad:
            return f"; the parameters {', '.join(bad)} contain NaN or inf (a diverged model?)"
        try:
            r = self._hint_risk()
        except Exception:  # noqa: BLE001 - only a hint for the message
            return ""
        return f"; the parameters are finite and {self._hint_risk_label} is {r:.6g}"
