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
from reference_impl.attention import (
    multi_head_attention_backward_loop as multi_head_attention_backward,
    multi_head_attention_loop as multi_head_attention,
    scaled_dot_product_attention_backward_loop as scaled_dot_product_attention_backward,
    scaled_dot_product_attention_loop as scaled_dot_product_attention,
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
    "binary_cross_entropy",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "conv2d",
    "conv2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "l1_loss",
    "l1_loss_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "mse_loss",
    "mse_loss_backward",
    "multi_head_attention",
    "multi_head_attention_backward",
    "relu",
    "relu_backward",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]
