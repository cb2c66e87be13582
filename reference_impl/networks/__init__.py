r"""Composite networks: a ``Sequential`` of layers, the losses, and training.

Every layer calls the public formulas of one namespace, either
:mod:`reference_impl.loops` or :mod:`reference_impl.vectorized` (pass the
module or its name, ``"loops"`` / ``"vectorized"``), so a whole network can be
run index by index or on whole arrays. Parameters use torch's layouts and
``state_dict`` names (``"0.weight"``, ``"0.bias"``, ...): the weights of a
:class:`Sequential` load unchanged into the equivalent ``torch.nn.Sequential``.

The layers (the generic :class:`Functional` layer of one formula pair and
the ``torch.nn``-named layers built on it) and :class:`Sequential` are in
:mod:`.layers`, the normalization and dropout layers in :mod:`.normalization`
(training and eval mode: ``Sequential.train()`` / ``.eval()``), the embedding
and recurrent layers in :mod:`.recurrent` (a recurrent layer returns its output
sequence; ``LastStep`` takes ``h_n``), the losses in :mod:`.losses`, training
(SGD, Adam, AdamW, RMSprop) in :mod:`.training`.

Backpropagation is the chain rule applied layer by layer, from the loss back to
the input. ``forward`` keeps each layer's input; ``backward`` hands the
gradient with respect to a layer's output, ``δ``, to that layer's
``*_backward`` formula, which returns the gradient with respect to the layer's
input (the ``δ`` of the layer before) and the gradients of its parameters.

The δ recursion, for the two-layer perceptron of chanchishing's wiki page
"04 Forward and Back Propagation" (Introduction-to-Deep-Learning):

    z1 = W1 x + b1,   a1 = relu(z1),   z2 = W2 a1 + b2,   ŷ = σ(z2),
    L = −[y log ŷ + (1 − y) log(1 − ŷ)],

write ``δ2 = ∂L/∂z2`` and ``δ1 = ∂L/∂z1``. Then

    δ2 = ∂L/∂ŷ · σ'(z2) = (ŷ − y) / (ŷ (1 − ŷ)) · ŷ (1 − ŷ) = ŷ − y
    δ1 = (W2ᵀ δ2) ⊙ 1[z1 > 0]
    ∂L/∂W2 = δ2 a1ᵀ,   ∂L/∂b2 = δ2,   ∂L/∂W1 = δ1 xᵀ,   ∂L/∂b1 = δ1

For a batch of N examples in rows (torch's layout) and the mean over the N·k
outputs, each row of δ2 is divided by N·k and the parameter gradients sum over
the batch: ``∂L/∂W = δᵀ A`` and ``∂L/∂b = Σ_n δ_n``. The general rule for any
layer ``l`` with activation ``f`` is ``δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l)``.
A convolution takes the place of ``W_{l+1}ᵀ`` by its "full" correlation with
the rotated kernel (the blog post "Backward propagation in Convolutional
Neural Networks (CNNs): Intuition, Math, and a Simple Example", and Ayush
Saraswat's "Backward Pass of CNN"); a pooling layer routes δ to the window
positions that produced each output (Saraswat).

The chained formulas never use the cancelled forms: ``Sigmoid`` followed by
``BCELoss`` multiplies ``binary_cross_entropy_backward`` by
``sigmoid_backward``, exactly as torch does, so that the identity
``δ2 = ŷ − y`` is a property to check, not an assumption.
"""

from reference_impl.networks.layers import (
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    Flatten,
    Functional,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    resolve_namespace,
)
from reference_impl.networks.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Loss,
    MSELoss,
)
from reference_impl.networks.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    GroupNorm,
    LayerNorm,
)
from reference_impl.networks.recurrent import GRU, LSTM, RNN, Embedding, LastStep
from reference_impl.networks.training import (
    SGD,
    Adam,
    AdamW,
    RMSprop,
    batches,
    loss_and_gradients,
    train_epoch,
)

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "ConvTranspose2d",
    "Flatten",
    "Functional",
    "Layer",
    "Linear",
    "MaxPool2d",
]
__all__ += ["ReLU", "Sequential", "Sigmoid", "Tanh", "resolve_namespace"]
__all__ += ["BatchNorm1d", "BatchNorm2d", "Dropout", "GroupNorm", "LayerNorm"]
__all__ += ["GRU", "LSTM", "RNN", "Embedding", "LastStep"]
__all__ += ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Loss", "MSELoss"]
__all__ += ["SGD", "Adam", "AdamW", "RMSprop", "batches", "loss_and_gradients", "train_epoch"]
from reference_impl.networks.transformer import (  # noqa: E402
    GELU,
    MultiheadAttention,
    Residual,
    TransformerEncoderLayer,
)

__all__ += ["GELU", "MultiheadAttention", "Residual", "TransformerEncoderLayer"]
