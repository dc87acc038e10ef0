r"""The torch backend: gate modules, the gated MLP and generalized-EM training (THEORY.md §1–2).

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
from umwelt.nn.train import (
    LOSSES,
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
    "epoch_order",
    "evaluate",
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
