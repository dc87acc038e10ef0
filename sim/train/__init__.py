r"""``umwelt train``: the paper's experiment at any scale — a gated net trained by generalized EM
on a binary task, recording the symmetries, resumable, data-parallel (THEORY.md §2, §4, §6).

One minibatch is one EM iteration (THEORY.md §2): the forward pass in the gate mode ``sample``
draws every gate :math:`h \sim \mathrm{Bern}(\sigma(z/T))` (E-step), the backward pass holds the
gates fixed and SGD with momentum moves the weights (M-step). At :math:`T = 0` (the paper's
setting), or in gate mode ``relu``, this is plain SGD on the ReLU network; ``mean`` trains the
mean-field net :math:`z\,\sigma(z/T)`.

**Randomness.** One seed; :func:`seeds` derives independent streams with
``numpy.random.SeedSequence``: the *data order* (one CPU generator, shared by all processes),
the *gate noise* of training and the *evaluation* draws (one pair per process rank). Process 0
of any run uses the same gate-noise and evaluation streams as a single-process run; rank
:math:`r > 0` uses its own (seeded from ``(seed, r)``), so at :math:`T > 0` a run over several
processes draws other gates than a single-process run (its data order and its arithmetic are
the same). At :math:`T = 0` nothing is drawn and the runs agree to rounding.

**Per epoch** (``metrics.jsonl``; epoch 0 is the initialization) from full passes over the
data (:mod:`umwelt.nn.observables`): ``loss`` and ``train_acc`` (the risk and accuracy on the
whole training set, gates in the training mode, one evaluation draw per example),
``test_loss``/``test_acc``,
``epoch_loss`` (the mean of the minibatch losses seen during the epoch, each before its step),
``order_parameter`` :math:`=\eta\|\nabla_\theta R\|^2` (eq. 15, the full-training-set gradient
of the same pass) and ``grad_norm`` :math:`\|\nabla_\theta R\|`, ``steps``, ``wall_s`` (since the
run started) and ``timing`` (seconds spent training, measuring and observing in this epoch);
the phase observables of the same gradient pass — ``n_unsatisfied`` (:math:`N_\Delta`, the
examples with margin :math:`y f < 1`), ``frac_unsatisfied``, ``margin_quantiles`` (1, 5, 25,
50 %), ``layer_grad_norms``, ``weight_norms``, ``effective_temperature`` (:math:`T/\|W_l\|_F`
per gated layer) — and ``phase`` (:mod:`umwelt.phases`, from the rows so far and the Hessian
rows recorded so far; ``stop_at_phase`` ends the run when it enters that phase). At the
epochs ``observe_at`` also ``observations/epoch_XXXX.npz`` (weight and gradient histograms,
symmetry statistics, gate entropy and agreement, within-layer correlation spectra; see
:mod:`umwelt.nn.observables`) and the weights ``checkpoints/model_epoch_XXXX.pt``.
At the epochs ``hessian_at`` (which join ``observe_at``) also the Hessian analysis of
:mod:`sim.hessian` into ``hessian/``, right after that epoch's checkpoint is written.

**Nothing lost.** ``checkpoints/last.pt`` holds everything a run needs to continue: model,
optimizer (momentum buffers), the state of every generator (data order; gate noise and
evaluation of every rank, :class:`umwelt.nn.GateNoise` sources; torch's default CPU and CUDA
generators), the current epoch's order
and position in it, the running epoch loss, the metric rows so far and the wall time. It is
written atomically at the end of every epoch and, with ``checkpoint_every = K``, after every
``K``-th step of an epoch, and loads with ``torch.load(..., weights_only=True)``. ``run(cfg,
resume=True)`` (``umwelt train --resume RUN``) continues from it; on the CPU the resumed run's
metrics and weights equal those of an uninterrupted run exactly.

**Processes.** Under ``torchrun`` each rank takes its slice of every global minibatch and the
gradients are all-reduced (:mod:`sim.distributed`); only rank 0 writes.

The run directory::

    config.json          every setting, the derived seeds, dataset facts, layers, versions
    metrics.jsonl        one row per epoch
    summary.json         the last row, status, first epochs of zero training error and loss,
                         the phase history (``phases``)
    observations/        epoch_XXXX.npz at the observed epochs
    checkpoints/         last.pt (resumable state), model_epoch_XXXX.pt (state dicts)
    figures/             written by ``umwelt plot RUN`` (and at the end of a run)

The package: :mod:`~sim.train.trainer` (one process's state: model, optimizer, generators,
measuring and observing), :mod:`~sim.train.checkpoint` (``last.pt``: save, load) and
:mod:`~sim.train.loop` (:func:`run`, :func:`prepare`, :func:`resume_config`).
"""

from sim.runs.hessian import HessianSettings
from sim.runs.train import PAPER_OBSERVE_AT, TrainConfig
from sim.train.loop import (
    HessianHook,
    TrainResult,
    check_memory,
    model_size,
    prepare,
    resume_config,
    run,
)
from sim.train.trainer import seeds

__all__ = [
    "PAPER_OBSERVE_AT",
    "HessianHook",
    "HessianSettings",
    "TrainConfig",
    "TrainResult",
    "check_memory",
    "model_size",
    "prepare",
    "resume_config",
    "run",
    "seeds",
]
