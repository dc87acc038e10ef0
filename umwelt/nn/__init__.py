r"""The torch backend: gate modules, the gated MLP and generalized-EM training (THEORY.md §1–2).

Also what is measured on the way (:mod:`umwelt.nn.observables`) and the data-parallel helpers
both take a process group from (:mod:`umwelt.nn.parallel`).

``import umwelt`` stays numpy-only; ``import umwelt.nn`` loads torch. Everything is
device-agnostic (pass ``device=``) and works in float32 and float64; the numpy engine
(:mod:`umwelt.network`) is its float64 oracle.
"""

from umwelt.nn.gate import (
    GATE_MODES,
    Gate,
    GatedModel,
    check_mode,
    gate_entropy_bits,
    scaled_logits,
)
from umwelt.nn.mlp import GatedMLP, build_mlp, relu_reference_mlp
from umwelt.nn.models import MODEL_PRESETS, FlatMLP, build_model, count_parameters
from umwelt.nn.noise import GateNoise
from umwelt.nn.observables import full_gradient, using_generator, weight_layers
from umwelt.nn.train import (
    LOSSES,
    EpochState,
    em_steps,
    epoch_order,
    evaluate,
    gate_statistics,
    get_loss,
    hinge_loss,
    logistic_loss,
    make_optimizer,
    order_parameter,
    train_epoch,
)
from umwelt.nn.vgg import (
    VGG_PRESETS,
    GatedVGG,
    VGGArchitecture,
    build_vgg,
    plain_relu_vgg,
    vgg_architecture,
)

__all__ = [
    "GATE_MODES",
    "LOSSES",
    "Gate",
    "GatedMLP",
    "GatedModel",
    "GateNoise",
    "build_mlp",
    "check_mode",
    "EpochState",
    "em_steps",
    "epoch_order",
    "evaluate",
    "full_gradient",
    "gate_entropy_bits",
    "gate_statistics",
    "get_loss",
    "hinge_loss",
    "logistic_loss",
    "make_optimizer",
    "order_parameter",
    "relu_reference_mlp",
    "scaled_logits",
    "train_epoch",
    "using_generator",
    "weight_layers",
    "VGG_PRESETS",
    "GatedVGG",
    "VGGArchitecture",
    "build_vgg",
    "plain_relu_vgg",
    "vgg_architecture",
    "MODEL_PRESETS",
    "FlatMLP",
    "build_model",
    "count_parameters",
]
