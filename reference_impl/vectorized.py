"""Vectorized references: the same formulas as :mod:`reference_impl.loops`, on whole arrays.

No Python loop over array elements; where a loop remains it runs over kernel
taps or groups only. Names, signatures, dtypes and layouts are those of
:mod:`reference_impl.loops`, so one namespace can replace the other.
"""

from reference_impl.activations import (
    log_softmax_backward_vectorized as log_softmax_backward,
    log_softmax_vectorized as log_softmax,
    relu_backward_vectorized as relu_backward,
    relu_vectorized as relu,
    sigmoid_backward_vectorized as sigmoid_backward,
    sigmoid_vectorized as sigmoid,
    softmax_backward_vectorized as softmax_backward,
    softmax_vectorized as softmax,
    tanh_backward_vectorized as tanh_backward,
    tanh_vectorized as tanh,
)
from reference_impl.attention import (
    multi_head_attention_backward_vectorized as multi_head_attention_backward,
    multi_head_attention_vectorized as multi_head_attention,
    scaled_dot_product_attention_backward_vectorized as scaled_dot_product_attention_backward,
    scaled_dot_product_attention_vectorized as scaled_dot_product_attention,
)
from reference_impl.conv import (
    conv2d_backward_vectorized as conv2d_backward,
    conv2d_vectorized as conv2d,
)
from reference_impl.dense import (
    linear_backward_vectorized as linear_backward,
    linear_vectorized as linear,
)
from reference_impl.losses import (
    binary_cross_entropy_backward_vectorized as binary_cross_entropy_backward,
    binary_cross_entropy_vectorized as binary_cross_entropy,
    binary_cross_entropy_with_logits_backward_vectorized as binary_cross_entropy_with_logits_backward,
    binary_cross_entropy_with_logits_vectorized as binary_cross_entropy_with_logits,
    cross_entropy_backward_vectorized as cross_entropy_backward,
    cross_entropy_vectorized as cross_entropy,
    l1_loss_backward_vectorized as l1_loss_backward,
    l1_loss_vectorized as l1_loss,
    mse_loss_backward_vectorized as mse_loss_backward,
    mse_loss_vectorized as mse_loss,
)
from reference_impl.optim import sgd_step_vectorized as sgd_step
from reference_impl.pooling import (
    avg_pool2d_backward_vectorized as avg_pool2d_backward,
    avg_pool2d_vectorized as avg_pool2d,
    max_pool2d_backward_vectorized as max_pool2d_backward,
    max_pool2d_vectorized as max_pool2d,
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
