"""What the Hessian benchmarks share: the images they run on, and how they time and measure.

* **Data** (:func:`_observation_data`): ``n`` training images of ``vgg12``'s shape — a balanced
  cat/dog subset of the CIFAR-10 JPEG tree at :data:`CIFAR10_JPEG`
  (``../shared/data/cifar10-jpeg.tar.gz`` from the project root) loaded as ``umwelt train``
  loads it, when it is there and the run is not quick; else Gaussian images of the same shape
  with balanced random ±1 labels (the description returned says which). :data:`QUICK_WIDTH`
  and :data:`QUICK_IMAGES` are the quick mode's ``vgg12`` width and image count.
* **Time**: :func:`_time` is the wall time of one call (CUDA synchronized before and after);
  :func:`_thread_time` the CPU time of the calling thread on a CPU (the work of a one-thread
  run, not the waits of a shared machine), the wall time on CUDA.
* **Memory**: :func:`_peak` is the peak increase over the level just before a call — on CUDA
  ``torch.cuda.max_memory_allocated``; on CPU the resident set size sampled every 0.5 ms from
  ``/proc/self/statm`` by a background thread (:class:`_PeakRSS`; ``tracemalloc`` does not see
  torch's allocations, and the allocator may reuse freed memory, so this is a lower bound of
  what was touched).

Used by :mod:`sim.benchmarks.hessian`, :mod:`sim.benchmarks.hessian_blocks`,
:mod:`sim.benchmarks.hessian_observation` and :mod:`sim.benchmarks.hessian_examples`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

QUICK_WIDTH, QUICK_IMAGES = 1 / 16, 8
CIFAR10_JPEG = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"
)


def _observation_data(n: int, quick: bool, path: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(X (n, 3, 32, 32) float32, y (n,) ±1, description)`` — CIFAR-10 or a stand-in."""
    if not quick and path.is_file():
        from umwelt.data import load_dataset

        # as umwelt train loads it (cat, dog; balanced subset; training statistics)
        ds = load_dataset(str(path), seed=0, subset=n, subset_test=2)
        X, y = torch.as_tensor(ds.X_train), torch.as_tensor(ds.y_train)
        return X, y, f"CIFAR-10 {ds.info['classes']}, balanced subset ({path.name})"
    why = "quick mode" if quick else f"no {path}"
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, 32, 32, generator=gen)  # (n, 3, 32, 32)
    y = torch.ones(n)
    y[torch.randperm(n, generator=gen)[: n // 2]] = -1.0
    return X, y, f"synthetic stand-in: Gaussian images, balanced random labels ({why})"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _thread_time(fn: Callable[[], object], device: str) -> float:
    """Seconds of ``fn``: on a CPU the CPU time of this thread (the work of a one-thread run,
    not the waits of a shared machine), on CUDA the wall time."""
    if device.startswith("cuda"):
        return _time(fn, device)
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


class _PeakRSS:
    """Peak resident set size (bytes) seen by a thread polling ``/proc/self/statm``."""

    def __init__(self, interval: float = 5e-4):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRSS:
        self.base = self.rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _peak(fn: Callable[[], object], device: str) -> float:
    """Peak memory increase (bytes) while ``fn`` runs (as
    :func:`sim.benchmarks.hessian._slq_memory` measures it)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - base)
    if not os.path.exists("/proc/self/statm"):
        fn()
        return float("nan")
    with _PeakRSS() as m:
        fn()
    return float(m.peak - m.base)
