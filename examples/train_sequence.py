"""Train small sequence models with the NumPy reference and with torch, side by side.

Two tasks on synthetic token sequences made with NumPy:

* ``sorted``: is a sequence of six digits in non-decreasing order? Half the
  sequences are sorted draws, half plain draws. An LSTM classifier:
  Embedding → LSTM → last time step → Linear, softmax cross-entropy.
* ``next``: the next character of a tiny synthetic text (words such as "bead",
  "cab", "dead" drawn at random, separated by spaces), from the five before.
  A GRU language model on windows of the text: Embedding → GRU → last time
  step → Linear over the characters, softmax cross-entropy.

The reference network is a ``networks.Sequential`` (the recurrent layer
returns its output sequence, ``LastStep`` takes its last step, which is
``h_n``); the torch one is written as a torch user would, a ``torch.nn.Module``
whose ``forward`` unpacks ``output, h_n = self.rnn(...)``. Both start from the
same weights (torch's initialisation, copied into the reference by position
in the two ``state_dict``s), see the same mini-batches in the same order and
take the same SGD steps; the printed loss curves should agree to many digits.
A plot of the curves is saved when matplotlib is installed.

Run from the repository root::

    python examples/train_sequence.py                      # a few seconds
    python examples/train_sequence.py --namespace loops --samples 16 --epochs 2 --hidden 4
    python examples/train_sequence.py --tasks next --epochs 30 --plot next.png
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling example train.py

from train import save_plot

from reference_impl import networks

Array = np.ndarray[Any, Any]

LENGTH = 6  # tokens per sequence
DIGITS = 10
WORDS = ["bead", "cab", "dead", "bad", "ace", "cede", "dab"]
ALPHABET = " abcde"
WINDOW = 5  # characters read before predicting the next one


# ----------------------------------------------------------------------------- data


def sorted_sequences(samples: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """Digit sequences (samples, LENGTH) and labels: 1 if non-decreasing, else 0."""
    tokens = rng.integers(0, DIGITS, size=(samples, LENGTH))
    make_sorted = rng.random(samples) < 0.5
    tokens[make_sorted] = np.sort(tokens[make_sorted], axis=1)
    labels = np.all(np.diff(tokens, axis=1) >= 0, axis=1)
    return tokens, labels.astype(np.int64)


def text_windows(samples: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """Windows of WINDOW characters of a random text of WORDS, and the character after each."""
    words = rng.choice(WORDS, size=samples + WINDOW)
    text = " ".join(words)
    codes = np.array([ALPHABET.index(c) for c in text], dtype=np.int64)
    starts = rng.integers(0, len(codes) - WINDOW, size=samples)
    windows = np.stack([codes[s : s + WINDOW] for s in starts])
    return windows, codes[starts + WINDOW]


# ---------------------------------------------------------------------------- models


class TorchSequenceClassifier(torch.nn.Module):
    """Embedding → LSTM or GRU (batch_first) → the last hidden state → Linear, in torch."""

    def __init__(self, cell: str, vocabulary: int, dim: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, dim)
        self.rnn = getattr(torch.nn, cell)(dim, hidden, batch_first=True)
        self.linear = torch.nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embedding(tokens))  # h_n (or (h_n, c_n)) unused
        result: torch.Tensor = self.linear(output[:, -1])  # = h_n[0]
        return result


def reference_classifier(
    cell: str, vocabulary: int, dim: int, hidden: int, classes: int, namespace: str
) -> networks.Sequential:
    """The same network as a reference ``Sequential``: ``LastStep`` reads ``h_n``."""
    recurrent = {"LSTM": networks.LSTM, "GRU": networks.GRU}[cell]
    return networks.Sequential(
        networks.Embedding(vocabulary, dim),
        recurrent(dim, hidden, batch_first=True),
        networks.LastStep(batch_first=True),
        networks.Linear(hidden, classes),
        namespace=namespace,
    )


def copy_weights(twin: torch.nn.Module, reference: networks.Sequential) -> None:
    """torch's weights into the reference, matching the two state_dicts by position.

    ``embedding.weight`` → ``0.weight``, ``rnn.weight_ih_l0`` → ``1.weight_ih_l0``...:
    the names after the module prefix must agree.
    """
    theirs, ours = twin.state_dict(), reference.state_dict()
    pairs = list(zip(theirs, ours, strict=True))
    for torch_key, key in pairs:
        if torch_key.split(".", 1)[1] != key.split(".", 1)[1]:
            raise KeyError(f"{torch_key} does not match {key}")
    reference.load_state_dict({key: theirs[torch_key].numpy() for torch_key, key in pairs})


# ---------------------------------------------------------------------------- tasks


@dataclass
class Task:
    """A data set and a pair of identical networks, one per library."""

    x: Array
    target: Array
    reference: networks.Sequential
    reference_loss: networks.Loss
    twin: torch.nn.Module
    twin_loss: torch.nn.Module


def make_task(
    cell: str, data: tuple[Array, Array], vocabulary: int, classes: int, hidden: int, ns: str
) -> Task:
    twin = TorchSequenceClassifier(cell, vocabulary, 8, hidden, classes).double()
    reference = reference_classifier(cell, vocabulary, 8, hidden, classes, ns)
    copy_weights(twin, reference)
    loss, twin_loss = networks.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    return Task(data[0], data[1], reference, loss, twin, twin_loss)


def sorted_task(samples: int, rng: np.random.Generator, hidden: int, namespace: str) -> Task:
    return make_task("LSTM", sorted_sequences(samples, rng), DIGITS, 2, hidden, namespace)


def next_task(samples: int, rng: np.random.Generator, hidden: int, namespace: str) -> Task:
    data = text_windows(samples, rng)
    return make_task("GRU", data, len(ALPHABET), len(ALPHABET), hidden, namespace)


TASKS: dict[str, Callable[[int, np.random.Generator, int, str], Task]] = {
    "sorted": sorted_task,
    "next": next_task,
}


# ------------------------------------------------------------------------- training


def accuracy(logits: Array, target: Array) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == target))


def train(
    task: Task, epochs: int, batch_size: int, lr: float, momentum: float, seed: int
) -> tuple[list[float], list[float]]:
    """Train both networks; the mean mini-batch loss of every epoch, reference and torch."""
    optimizer = networks.SGD(task.reference, lr=lr, momentum=momentum)
    twin_optimizer = torch.optim.SGD(task.twin.parameters(), lr=lr, momentum=momentum)
    rng = np.random.default_rng(seed)
    reference_curve, torch_curve = [], []
    for _ in range(epochs):
        order = rng.permutation(len(task.x))  # the same mini-batches for both
        ours, theirs = [], []
        for xb, yb in networks.batches(task.x, task.target, batch_size, order):
            value, _, grads = networks.loss_and_gradients(
                task.reference, task.reference_loss, xb, yb
            )
            optimizer.step(grads)
            ours.append(value)

            twin_optimizer.zero_grad()
            twin_value = task.twin_loss(task.twin(torch.from_numpy(xb)), torch.from_numpy(yb))
            twin_value.backward()
            twin_optimizer.step()
            theirs.append(float(twin_value.detach()))
        reference_curve.append(float(np.mean(ours)))
        torch_curve.append(float(np.mean(theirs)))
    return reference_curve, torch_curve


def main(argv: Sequence[str] | None = None) -> dict[str, tuple[list[float], list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples", type=int, default=256, help="training sequences per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=16, help="hidden size of LSTM and GRU")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--namespace", choices=["vectorized", "loops"], default="vectorized")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("sequence_loss_curves.png"))
    parser.add_argument("--no-plot", action="store_true", help="do not save a plot")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # models this small run fastest on one thread
    rng = np.random.default_rng(args.seed)
    curves = {}
    for name in args.tasks:
        task = TASKS[name](args.samples, rng, args.hidden, args.namespace)
        start = time.perf_counter()
        ours, theirs = train(task, args.epochs, args.batch_size, args.lr, args.momentum, args.seed)
        seconds = time.perf_counter() - start
        print(f"\n{name}: {len(task.x)} sequences, {args.namespace} namespace, {seconds:.1f} s")
        print(f"{'epoch':>5}  {'reference':>14}  {'torch':>14}  {'|difference|':>12}")
        for epoch, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
            print(f"{epoch:>5}  {a:>14.9g}  {b:>14.9g}  {abs(a - b):>12.2e}")
        task.reference.eval()
        task.twin.eval()
        with torch.no_grad():
            twin_logits = task.twin(torch.from_numpy(task.x)).numpy()
        print(
            f"training accuracy: reference {accuracy(task.reference(task.x), task.target):.3f}, "
            f"torch {accuracy(twin_logits, task.target):.3f}"
        )
        curves[name] = (ours, theirs)
    if not args.no_plot:
        save_plot(curves, args.plot)
    return curves


if __name__ == "__main__":
    main()
