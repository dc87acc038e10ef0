r"""Hessian operators: products :math:`Hv` of a model's risk, by forward-over-reverse autodiff.

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
cost on ``vgg12``, less with inactive hinges); ``ad="auto"`` (the default) takes the second
wherever it applies.

**Gates are held fixed, as in the M-step** (THEORY.md §2). The Hessian is that of the network
whose gates are constants, :math:`x_l = h_l \odot z_l`:

* gates at :math:`T = 0` (and ``"relu"``/``"mean"`` gates) need nothing: the ReLU's second
  derivative vanishes almost everywhere, so :math:`Hv` of the ReLU net *is* :math:`Hv` with the
  ReLU gates :math:`1[z > 0]` fixed (and ``"mean"`` gates are a smooth function, differentiated
  as such);
* gates in ``"sample"`` mode at :math:`T > 0` are drawn **once per example** on construction
  and stored (bool, per :class:`~umwelt.nn.gate.Gate` module, over all examples); every later
  product replaces each such gate's forward by :math:`z \mapsto z \odot h` with the stored
  :math:`h` of the batch. So two products with the same vector are bitwise equal and :math:`H`
  is exactly the Hessian of one fixed function.

The gate sample is drawn by ancestral sampling in a recording pass: example :math:`i` (its
index in the full data set, whatever subset or batching is used) owns a CPU generator seeded
from ``(gate_seed, i)``, which draws :math:`u \sim U[0,1)` for each of its units layer after
layer, and :math:`h = 1[u < \sigma(z/T)]` (:math:`p = 1/2` at :math:`T = \infty`), the law of
:class:`~umwelt.nn.gate.Gate`. Hence the sample of an example does not depend on the batch size
or on which other examples are in the set, and :attr:`ModelHessian.gate_masks` can be handed to
another operator (``gate_masks=``) to reuse it, e.g. the gates the M-step itself drew.

:class:`HessianOperator` is the small base class that owns checking (shapes, dtype, device,
finiteness), batching of vectors (:meth:`~HessianOperator.matmat`),
:meth:`~HessianOperator.to_scipy` and :meth:`~HessianOperator.dense`; concrete operators fill
``_matvec`` (and may fill ``_matmat`` when they can do better than a loop).
:class:`ModelHessian` is the operator of a model; :class:`MatrixOperator` wraps an explicit
symmetric matrix (for tests and oracles).

>>> import torch
>>> op = MatrixOperator(torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
>>> op.matvec(torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
[2.0, 1.0]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from umwelt.errors import ConfigError, NonFiniteError, ShapeError
from umwelt.nn.gate import Gate, scaled_logits
from umwelt.nn.hessian.gated import (
    DEFAULT_CACHE_BYTES,
    GatedLayer,
    GatedProducts,
    gated_layers,
)
from umwelt.nn.losses import PER_EXAMPLE_LOSSES, LossFn

__all__ = [
    "AD_MODES",
    "DENSE_LIMIT",
    "PER_EXAMPLE_LOSSES",
    "Batch",
    "HessianOperator",
    "MatrixOperator",
    "ModelHessian",
]

AD_MODES: tuple[str, ...] = ("auto", "gated", "fwd-over-rev", "rev-over-fwd")
DENSE_LIMIT = 5000  # largest N for which dense() builds the N × N matrix unless told otherwise


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or inf in ``t``: one reduction (a NaN or inf makes the sum non-finite); only when
    the sum overflows is every entry checked."""
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


def _count(n: int) -> str:
    return f"{n:,}"


class HessianOperator:
    r"""A symmetric :math:`N \times N` operator known through its products, on a torch device.

    The base class checks every input and output and does the bookkeeping; a subclass fills
    ``_matvec(v)`` (``v``: ``(N,)`` tensor of :attr:`dtype` on :attr:`device`, already checked;
    returns ``(N,)``) and may override ``_matmat(V)`` (``(N, k)`` → ``(N, k)``; the default loops
    over columns).

    Args:
        n: the dimension :math:`N \ge 1`.
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the vectors live.
        context: a short label (e.g. ``"epoch 12"``) named in error messages.

    Raises:
        ConfigError: for ``n < 1`` or a non-floating dtype.
    """

    def __init__(
        self,
        n: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
        context: str | None = None,
    ):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"an operator needs a dimension N ≥ 1, got {n!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"the operator's dtype must be float32 or float64, got {dtype}")
        self._n = n
        self._dtype = dtype
        self._device = torch.device(device)
        self.context = context

    # -- what it is ------------------------------------------------------------------------------

    @property
    def n(self) -> int:
        """The dimension :math:`N` (number of parameters)."""
        return self._n

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, N)``."""
        return (self._n, self._n)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of vectors and products."""
        return self._dtype

    @property
    def device(self) -> torch.device:
        """The device of vectors and products."""
        return self._device

    def __repr__(self) -> str:
        ctx = f", context={self.context!r}" if self.context else ""
        return (
            f"{type(self).__name__}(N={self._n}, dtype={str(self._dtype).removeprefix('torch.')}"
            f", device={self._device}{ctx})"
        )

    # -- products --------------------------------------------------------------------------------

    def matvec(self, v: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """:math:`Hv` for ``v`` of shape ``(N,)``; a numpy input gives a numpy output.

        Raises:
            ShapeError: unless ``v`` has shape ``(N,)``.
            NonFiniteError: when ``v`` or the product contains NaN or inf.
        """
        t, is_np = self._vectors(v, 1)
        out = self._matvec(t)  # (N,)
        self._check_product(out)
        return out.detach().cpu().numpy() if is_np else out

    def matmat(self, V: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """:math:`HV` for ``V`` of shape ``(N, k)``; a numpy input gives a numpy output.

        Raises:
            ShapeError: unless ``V`` has shape ``(N, k)``, ``k ≥ 1``.
            NonFiniteError: when ``V`` or the product contains NaN or inf.
        """
        t, is_np = self._vectors(V, 2)
        out = self._matmat(t)  # (N, k)
        self._check_product(out)
        return out.detach().cpu().numpy() if is_np else out

    def __matmul__(self, v: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        return self.matvec(v) if v.ndim == 1 else self.matmat(v)

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._matvec(V[:, i]) for i in range(V.shape[1])], dim=1)

    # -- exports ---------------------------------------------------------------------------------

    def to_scipy(self) -> LinearOperator:
        """This operator as a ``scipy.sparse.linalg.LinearOperator`` (``rmatvec = matvec``).

        Vectors cross as numpy arrays of the operator's dtype (float32 or float64), so SciPy's
        ``eigsh`` and :func:`~umwelt.nn.hessian.spectra.lanczos` run on the same products.
        """
        np_dtype = np.float64 if self._dtype == torch.float64 else np.float32

        def mv(x: np.ndarray) -> np.ndarray:
            return self.matvec(np.asarray(x).reshape(-1))

        def mm(X: np.ndarray) -> np.ndarray:
            return self.matmat(np.asarray(X).reshape(self._n, -1))

        return LinearOperator(
            self.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm, dtype=np_dtype
        )

    def dense(self, *, max_params: int = DENSE_LIMIT, chunk: int = 64) -> torch.Tensor:
        r"""The dense Hessian :math:`H = [He_1, \dots, He_N]`, an ``(N, N)`` tensor (the oracle).

        Built from ``N`` products in batches of ``chunk`` unit vectors; not symmetrized.

        Raises:
            ConfigError: when ``N > max_params`` (default :data:`DENSE_LIMIT`), naming both.
        """
        if self._n > max_params:
            raise ConfigError(
                f"the dense Hessian would have N = {_count(self._n)} parameters, above the limit "
                f"{_count(max_params)} (pass max_params= to raise it; N² = "
                f"{_count(self._n**2)} entries)"
            )
        eye = torch.eye(self._n, dtype=self._dtype, device=self._device)
        cols = [self.matmat(eye[:, s : s + chunk]) for s in range(0, self._n, chunk)]
        return torch.cat(cols, dim=1)  # (N, N)

    # -- checking --------------------------------------------------------------------------------

    def _where(self) -> str:
        return f" ({self.context})" if self.context else ""

    def _vectors(self, v: torch.Tensor | np.ndarray, ndim: int) -> tuple[torch.Tensor, bool]:
        is_np = not isinstance(v, torch.Tensor)
        t = torch.as_tensor(np.asarray(v)) if is_np else v
        want = "(N,)" if ndim == 1 else "(N, k)"
        if t.ndim != ndim or t.shape[0] != self._n or (ndim == 2 and t.shape[1] < 1):
            raise ShapeError(f"expected a {want} array with N = {self._n}, got {tuple(t.shape)}")
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
            raise ShapeError(f"vectors must be real numbers, got dtype {t.dtype}")
        t = t.detach().to(device=self._device, dtype=self._dtype)
        if not _all_finite(t):
            bad = int((~torch.isfinite(t)).sum())
            raise NonFiniteError(
                f"the vector given to the Hessian{self._where()} has {bad} NaN or inf entries"
            )
        return t, is_np

    def _check_product(self, out: torch.Tensor) -> None:
        if not _all_finite(out):
            bad = int((~torch.isfinite(out)).sum())
            raise NonFiniteError(
                f"a Hessian-vector product{self._where()} is not finite: {_count(bad)} of "
                f"{_count(out.numel())} entries are NaN or inf{self._nonfinite_hint()}"
            )

    def _nonfinite_hint(self) -> str:
        return ""


class MatrixOperator(HessianOperator):
    r"""An explicit symmetric matrix as a :class:`HessianOperator` (for tests and oracles).

    Args:
        matrix: ``(N, N)`` tensor or array; it is used as given (symmetry is the caller's).
        device: where to keep it (default: the tensor's own device, CPU for arrays).
        context: label for error messages.
    """

    def __init__(
        self,
        matrix: torch.Tensor | np.ndarray,
        *,
        device: torch.device | str | None = None,
        context: str | None = None,
    ):
        m = torch.as_tensor(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ShapeError(f"the matrix must be square (N, N), got {tuple(m.shape)}")
        if m.dtype not in (torch.float32, torch.float64):
            m = m.to(torch.float64)
        dev = m.device if device is None else torch.device(device)
        super().__init__(m.shape[0], dtype=m.dtype, device=dev, context=context)
        self.matrix = m.to(dev)

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.matrix @ v  # (N,)

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self.matrix @ V  # (N, k)


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of the operator's data.

    Attributes:
        index: the slice of the operator's examples it covers.
        x: inputs ``(B, ...)``.
        y: labels ``(B,)`` in ``{-1, +1}``.
        w: each example's weight in the risk ``(B,)`` (``1/n`` by default).
        masks: the fixed gates of the sampling gates, one bool tensor ``(B, ...)`` per gate.
    """

    index: slice
    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    masks: tuple[torch.Tensor, ...]


def load_forward_ad() -> None:
    """Import torch's forward-mode decompositions now, without its own deprecation warning.

    The first ``torch.func.jvp`` imports ``torch._decomp.decompositions_for_jvp``, which calls
    the deprecated ``torch.jit.script`` inside torch (2.9+) and warns; that warning is torch's,
    not the caller's, so it is silenced here, once, for that import only.
    """
    load = getattr(torch.autograd.forward_ad, "_maybe_load_decompositions", None)
    if load is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r".*torch\.jit\.script.* is deprecated",
                category=DeprecationWarning,
            )
            load()


def _example_seed(seed: int, index: int) -> int:
    """A 63-bit seed for example ``index`` from ``(seed, index)`` (numpy's SeedSequence)."""
    state = np.random.SeedSequence((seed, index)).generate_state(2, np.uint64)
    return int(state[0]) & ((1 << 63) - 1)


def _masked(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(z: torch.Tensor) -> torch.Tensor:
        return z * mask.to(z.dtype)  # x = dg(h) z, h a constant

    return forward


@contextmanager
def _replaced_forwards(
    gates: Sequence[Gate], forwards: Sequence[Callable[[torch.Tensor], torch.Tensor]]
) -> Iterator[None]:
    """Temporarily make each gate's forward ``forwards[i]`` (an instance attribute)."""
    saved = [g.__dict__.get("forward") for g in gates]
    try:
        for g, fwd in zip(gates, forwards, strict=True):
            g.forward = fwd
        yield
    finally:
        for g, old in zip(gates, saved, strict=True):
            if old is None:
                g.__dict__.pop("forward", None)
            else:
                g.forward = old


class ModelHessian(HessianOperator):
    r"""The Hessian of a model's risk on a data set, by forward-over-reverse products.

    :math:`R(\theta) = \sum_i w_i \ell(f(x_i; \theta), y_i)`, :math:`\theta` = the model's
    trainable parameters flattened in ``named_parameters`` order; gates fixed as described in
    the module docstring. Works for any ``nn.Module`` mapping ``(B, ...)`` to ``(B,)`` or
    ``(B, 1)``; the parameters are read (detached) at construction, so later changes to the
    model are not seen.

    Args:
        model: e.g. a :class:`~umwelt.nn.mlp.GatedMLP` or a VGG with
            :class:`~umwelt.nn.gate.Gate` modules. Its parameters must share one floating dtype.
        X: inputs ``(n, ...)``; cast to the parameters' dtype and device.
        y: labels ``(n,)`` in ``{-1, +1}``.
        loss: ``"hinge"``, ``"logistic"`` or a callable ``(f, y) -> (B,)`` of per-example losses.
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
            ``"gated"``. :meth:`per_example_hvp` always uses ``torch.func``.
        cache_bytes: with ``ad="gated"``, the memory (bytes) the kept primal passes may take,
            batch by batch while they fit (default 1 GiB; 0 keeps none): at float32 on 32×32
            images about 0.55 MB per example for ``vgg12`` at width 1/4 and 2.2 MB at full
            width (examples with an inactive hinge take none); :attr:`cached_bytes` says what
            is held.
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
        self._all_gates = [m for m in model.modules() if isinstance(m, Gate)]
        self._sampling = [g for g in self._all_gates if g.mode == "sample" and g.temperature > 0.0]
        self.gate_seed = int(gate_seed)
        if gate_masks is None:
            masks = self._record_gates() if self._sampling else []
        else:
            masks = self._check_masks(gate_masks, n)
        self._masks = tuple(masks)

        # -- how products are taken ---------------------------------------------------------------
        self.ad, self.ad_fallback, layers = self._choose_ad(ad)
        self._gated = None
        if layers is not None:
            self._gated = GatedProducts(model, layers, self._loss, cache_bytes)

    def _choose_ad(self, ad: str) -> tuple[str, str | None, tuple[GatedLayer, ...] | None]:
        """``(mode, why "auto" did not choose "gated", the gated layers)`` for ``ad``."""
        if ad not in ("auto", "gated"):
            return ad, None, None
        layers = gated_layers(self._model, self._names, self._sampling)
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
    def params(self) -> dict[str, torch.Tensor]:
        r"""The trainable parameters by name (detached), the point :math:`\theta` of the Hessian."""
        return dict(self._params)

    @property
    def n_examples(self) -> int:
        """Number of examples in the risk."""
        return self._X.shape[0]

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

    @property
    def gate_masks(self) -> tuple[torch.Tensor, ...]:
        """The fixed gate sample: one bool ``(n_examples, ...)`` tensor per sampling gate."""
        return self._masks

    @property
    def sampling_gates(self) -> tuple[Gate, ...]:
        """The gates held fixed to a stored sample (``"sample"`` mode at :math:`T > 0`)."""
        return tuple(self._sampling)

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

    @contextmanager
    def fixed_gates(self, masks: Sequence[torch.Tensor]) -> Iterator[None]:
        """Run the model with the sampling gates fixed to ``masks`` (and no gate recording).

        Inside, every sampling gate computes :math:`z \\odot h` with its mask; every gate's
        ``record`` is off so that no transformed (``torch.func``) tensor leaks into
        ``last_gates``.
        """
        records = [g.record for g in self._all_gates]
        try:
            for g in self._all_gates:
                g.record = False
            with _replaced_forwards(self._sampling, [_masked(m) for m in masks]):
                yield
        finally:
            for g, r in zip(self._all_gates, records, strict=True):
                g.record = r

    def _output(self, f: torch.Tensor, batch: int) -> torch.Tensor:
        if f.ndim == 2 and f.shape[1] == 1:
            f = f[:, 0]
        if f.shape != (batch,):
            raise ShapeError(
                f"the model must map a batch of {batch} to ({batch},) or ({batch}, 1), got "
                f"{tuple(f.shape)}"
            )
        return f

    def _record_gates(self) -> list[torch.Tensor]:
        """Draw the fixed gate sample, one seeded CPU generator per example (module docstring)."""
        gates = self._sampling
        parts: list[list[torch.Tensor]] = [[] for _ in gates]
        for sl in self._slices:
            gens = [
                torch.Generator().manual_seed(_example_seed(self.gate_seed, int(i)))
                for i in self._ids[sl]
            ]
            calls = [0] * len(gates)

            def sampler(l: int, gate: Gate, gens=gens, calls=calls):
                def forward(z: torch.Tensor) -> torch.Tensor:
                    if calls[l]:
                        raise ConfigError(
                            f"gate {l} ({gate}) is called more than once per forward pass; a "
                            "fixed gate sample needs one call per gate module"
                        )
                    calls[l] += 1
                    u = torch.stack(
                        [torch.rand(z.shape[1:], generator=g, dtype=torch.float64) for g in gens]
                    ).to(z.device)  # (B, ...) ~ U[0, 1)
                    T = gate.temperature
                    if math.isinf(T):
                        h = u < 0.5
                    else:
                        h = u < torch.sigmoid(scaled_logits(z.detach(), T).double())
                    parts[l].append(h)
                    return z * h.to(z.dtype)

                return forward

            xb = self._X[sl]
            with (
                torch.no_grad(),
                _replaced_forwards(gates, [sampler(l, g) for l, g in enumerate(gates)]),
            ):
                records = [g.record for g in self._all_gates]
                try:
                    for g in self._all_gates:
                        g.record = False
                    self._model(xb)
                finally:
                    for g, r in zip(self._all_gates, records, strict=True):
                        g.record = r
            missing = [l for l, c in enumerate(calls) if c == 0]
            if missing:
                raise ConfigError(
                    f"sampling gates {missing} are never called in the model's forward pass"
                )
        return [torch.cat(p) for p in parts]

    def _check_masks(self, masks: Sequence[torch.Tensor], n: int) -> list[torch.Tensor]:
        masks = list(masks)
        if len(masks) != len(self._sampling):
            raise ShapeError(
                f"expected {len(self._sampling)} gate masks (one per sampling gate), got "
                f"{len(masks)}"
            )
        out = []
        for l, m in enumerate(masks):
            if not isinstance(m, torch.Tensor) or m.ndim < 1 or m.shape[0] != n:
                shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise ShapeError(f"gate mask {l} must be a tensor ({n}, ...), got {shape}")
            out.append(m.detach().to(device=self.device, dtype=torch.bool))
        return out

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
        t = self.unflatten(v)
        if self.ad != "rev-over-fwd":  # jvp of grad
            return self.flatten(jvp(grad(risk), (self._params,), (t,))[1])
        # rev-over-fwd: grad of the directional derivative p ↦ ∇r(p)·t
        return self.flatten(grad(lambda p: jvp(risk, (p,), (t,))[1])(self._params))

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        if self._gated is not None:
            return self._gated_matmat(v[:, None])[:, 0]
        out = torch.zeros_like(v)
        for b in self.batches():
            out += self._hvp(lambda p, b=b: self.batch_risk(p, b), v)  # (N,)
        return out

    def _gated_matmat(self, V: torch.Tensor) -> torch.Tensor:
        """:math:`HV` by the fixed-gate products: each batch's primal pass once, then every
        column."""
        out = torch.zeros_like(V)  # (N, k)
        for b in self.batches():
            primal = self._gated.primal(self._params, b)
            for j in range(V.shape[1]):
                hv = self._gated.product(primal, self._params, self.unflatten(V[:, j]))
                out[:, j] += self.flatten(hv)
        return out

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        if self._gated is not None:
            return self._gated_matmat(V)
        if self.column_chunk == 1 or V.shape[1] == 1:
            return super()._matmat(V)
        out = torch.zeros_like(V)  # (N, k)
        for b in self.batches():
            many = vmap(lambda t, b=b: self._hvp(lambda p: self.batch_risk(p, b), t))
            for s in range(0, V.shape[1], self.column_chunk):
                cols = V[:, s : s + self.column_chunk]  # (N, c)
                out[:, s : s + cols.shape[1]] += many(cols.T.contiguous()).T
        return out

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
