"""Explicit-loop references: every output element computed as the derivation writes it.

Slow by design. Read them beside the derivations, check a hand computation on a
small example, and use them as the second opinion beside
:mod:`reference_impl.vectorized`, which exposes the same names and signatures.
"""

from reference_impl.activations import (
    log_softmax_backward_loop as log_softmax_backward,
    log_softmax_loop as log_softmax,
    relu_backward_loop as relu_backward,
    relu_loop as relu,
    sigmoid_backward_loop as sigmoid_backward,
    sigmoid_loop as sigmoid,
    softmax_backward_loop as softmax_backward,
    softmax_loop as softmax,
    tanh_backward_loop as tanh_backward,
    tanh_loop as tanh,
)
from reference_impl.conv import (
    conv2d_backward_loop as conv2d_backward,
    conv2d_loop as conv2d,
)
from reference_impl.dense import (
    linear_backward_loop as linear_backward,
    linear_loop as linear,
)
from reference_impl.losses import (
    binary_cross_entropy_backward_loop as binary_cross_entropy_backward,
    binary_cross_entropy_loop as binary_cross_entropy,
    binary_cross_entropy_with_logits_backward_loop as binary_cross_entropy_with_logits_backward,
    binary_cross_entropy_with_logits_loop as binary_cross_entropy_with_logits,
    cross_entropy_backward_loop as cross_entropy_backward,
    cross_entropy_loop as cross_entropy,
    l1_loss_backward_loop as l1_loss_backward,
    l1_loss_loop as l1_loss,
    mse_loss_backward_loop as mse_loss_backward,
    mse_loss_loop as mse_loss,
)
from reference_impl.normalization import (
    batch_norm_backward_loop as batch_norm_backward,
    batch_norm_loop as batch_norm,
    batch_norm_running_stats_loop as batch_norm_running_stats,
    dropout_backward_loop as dropout_backward,
    dropout_loop as dropout,
    group_norm_backward_loop as group_norm_backward,
    group_norm_loop as group_norm,
    layer_norm_backward_loop as layer_norm_backward,
    layer_norm_loop as layer_norm,
)
from reference_impl.optim import sgd_step_loop as sgd_step
from reference_impl.pooling import (
    avg_pool2d_backward_loop as avg_pool2d_backward,
    avg_pool2d_loop as avg_pool2d,
    max_pool2d_backward_loop as max_pool2d_backward,
    max_pool2d_loop as max_pool2d,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_running_stats",
    "binary_cross_entropy",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "conv2d",
    "conv2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "group_norm",
    "group_norm_backward",
    "l1_loss",
    "l1_loss_backward",
    "layer_norm",
    "layer_norm_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "mse_loss",
    "mse_loss_backward",
    "relu",
    "relu_backward",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]
