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
from reference_impl.recurrent import (
    embedding_backward_vectorized as embedding_backward,
    embedding_vectorized as embedding,
    gru_backward_vectorized as gru_backward,
    gru_cell_backward_vectorized as gru_cell_backward,
    gru_cell_vectorized as gru_cell,
    gru_vectorized as gru,
    lstm_backward_vectorized as lstm_backward,
    lstm_cell_backward_vectorized as lstm_cell_backward,
    lstm_cell_vectorized as lstm_cell,
    lstm_vectorized as lstm,
    rnn_backward_vectorized as rnn_backward,
    rnn_cell_backward_vectorized as rnn_cell_backward,
    rnn_cell_vectorized as rnn_cell,
    rnn_vectorized as rnn,
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
    "embedding",
    "embedding_backward",
    "gru",
    "gru_backward",
    "gru_cell",
    "gru_cell_backward",
    "l1_loss",
    "l1_loss_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "lstm",
    "lstm_backward",
    "lstm_cell",
    "lstm_cell_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "mse_loss",
    "mse_loss_backward",
    "relu",
    "relu_backward",
    "rnn",
    "rnn_backward",
    "rnn_cell",
    "rnn_cell_backward",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]
