r"""The operator's base: a symmetric :math:`N \times N` operator known through its products.

:class:`HessianOperator` is the small base class that owns checking (shapes, dtype, device,
finiteness), batching of vectors (:meth:`~HessianOperator.matmat`),
:meth:`~HessianOperator.to_scipy` and :meth:`~HessianOperator.dense`; concrete operators fill
``_matvec`` (and may fill ``_matmat`` when they can do better than a loop), so SciPy's ``eigsh``
and :func:`~umwelt.nn.hessian.krylov.lanczos` run on the same object.
:class:`~umwelt.nn.hessian.model.ModelHessian` is the operator of a model;
:class:`MatrixOperator` wraps an explicit symmetric matrix (for tests and oracles).
:class:`Batch` is one batch of a model operator's data with its fixed gates, as both ways of
taking a product read it (:mod:`~umwelt.nn.hessian.model`, :mod:`~umwelt.nn.hessian.gated`).

>>> import torch
>>> op = MatrixOperator(torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
>>> op.matvec(torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
[2.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from umwelt.errors import ConfigError, NonFiniteError, ShapeError

__all__ = ["DENSE_LIMIT", "Batch", "CountedOperator", "HessianOperator", "MatrixOperator"]

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
        ``eigsh`` and :func:`~umwelt.nn.hessian.krylov.lanczos` run on the same products.
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


class CountedOperator(HessianOperator):
    """``op`` as it is, calling ``tick(k)`` after every product of ``k`` vectors (progress bars,
    product counts).

    >>> ticks = []
    >>> op = CountedOperator(MatrixOperator(torch.eye(3, dtype=torch.float64)), ticks.append)
    >>> _ = op.matvec(torch.ones(3, dtype=torch.float64)), op.matmat(torch.ones(3, 2).double())
    >>> ticks
    [1, 2]
    """

    def __init__(self, op: HessianOperator, tick: Callable[[int], None]):
        super().__init__(op.n, dtype=op.dtype, device=op.device, context=op.context)
        self.op, self.tick = op, tick

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        out = self.op.matvec(v)
        self.tick(1)
        return out

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        out = self.op.matmat(V)
        self.tick(V.shape[1])
        return out


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of a :class:`~umwelt.nn.hessian.model.ModelHessian`'s data.

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
