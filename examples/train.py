"""Train small networks with the NumPy reference and with torch, side by side.

Two tasks on synthetic data made with NumPy:

* ``mlp``: two Gaussian blobs in the plane, told apart by a two-layer
  perceptron (Linear → ReLU → Linear → Sigmoid, binary cross-entropy);
* ``cnn``: 8×8 grey images holding one bright bar, horizontal (class 0) or
  vertical (class 1), classified by Conv2d → ReLU → MaxPool2d → Flatten →
  Linear with softmax cross-entropy.

Both trainers start from the same weights (torch's initialisation, copied into
the reference), see the same mini-batches in the same order, and take the
same optimizer steps (``--optimizer``: SGD, Adam, AdamW or RMSprop, the
reference's ``networks`` class on one side and its ``torch.optim`` namesake on
the other); the printed loss curves should agree to many digits. A plot of the
curves is saved when matplotlib is installed.

Run from the repository root::

    python examples/train.py                      # vectorized namespace
    python examples/train.py --namespace loops    # every element by a Python loop (slower)
    python examples/train.py --epochs 30 --plot curves.png
    python examples/train.py --optimizer adam --lr 0.01
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

from reference_impl import networks

Array = np.ndarray[Any, Any]


# ----------------------------------------------------------------------------- data


def gaussian_blobs(samples: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """Two blobs in the plane: class 0 around (−1, −1), class 1 around (1, 1)."""
    labels = rng.integers(0, 2, size=samples)
    centres = np.where(labels[:, None] == 1, 1.0, -1.0)
    x = centres + 0.7 * rng.standard_normal((samples, 2))
    return x, labels[:, None].astype(np.float64)


def bar_images(samples: int, rng: np.random.Generator, side: int = 8) -> tuple[Array, Array]:
    """Noisy ``side``×``side`` images with one bright bar: horizontal (0) or vertical (1)."""
    labels = rng.integers(0, 2, size=samples)
    images = 0.1 * rng.standard_normal((samples, 1, side, side))
    where = rng.integers(1, side - 1, size=samples)  # not on the border
    for n in range(samples):
        if labels[n] == 0:
            images[n, 0, where[n], :] += 1.0
        else:
            images[n, 0, :, where[n]] += 1.0
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------- tasks


@dataclass
class Task:
    """A data set and a pair of identical networks, one per library."""

    x: Array
    target: Array
    reference: networks.Sequential
    reference_loss: networks.Loss
    twin: torch.nn.Sequential
    twin_loss: torch.nn.Module


def mlp_task(samples: int, rng: np.random.Generator, namespace: str) -> Task:
    x, y = gaussian_blobs(samples, rng)
    twin = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1), torch.nn.Sigmoid()
    ).double()
    reference = networks.Sequential(
        networks.Linear(2, 8),
        networks.ReLU(),
        networks.Linear(8, 1),
        networks.Sigmoid(),
        namespace=namespace,
    )
    return Task(x, y, reference, networks.BCELoss(), twin, torch.nn.BCELoss())


def cnn_task(samples: int, rng: np.random.Generator, namespace: str) -> Task:
    x, labels = bar_images(samples, rng)
    twin = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, kernel_size=3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 2),
    ).double()
    reference = networks.Sequential(
        networks.Conv2d(1, 4, kernel_size=3),
        networks.ReLU(),
        networks.MaxPool2d(2),
        networks.Flatten(),
        networks.Linear(4 * 3 * 3, 2),
        namespace=namespace,
    )
    return Task(
        x, labels, reference, networks.CrossEntropyLoss(), twin, torch.nn.CrossEntropyLoss()
    )


TASKS: dict[str, Callable[[int, np.random.Generator, str], Task]] = {
    "mlp": mlp_task,
    "cnn": cnn_task,
}


# ------------------------------------------------------------------------- training


#: ``--optimizer``: (the reference's class, torch's class, the default learning rate)
OPTIMIZERS: dict[str, tuple[Any, type[torch.optim.Optimizer], float]] = {
    "sgd": (networks.SGD, torch.optim.SGD, 0.1),
    "adam": (networks.Adam, torch.optim.Adam, 0.01),
    "adamw": (networks.AdamW, torch.optim.AdamW, 0.01),
    "rmsprop": (networks.RMSprop, torch.optim.RMSprop, 0.01),
}


def train(
    task: Task,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    seed: int,
    optimizer_name: str = "sgd",
) -> tuple[list[float], list[float]]:
    """Train both networks; the mean mini-batch loss of every epoch, reference and torch.

    ``momentum`` is passed to SGD and RMSprop (Adam and AdamW have none).
    """
    # Identical initial weights: torch's initialisation, copied into the reference.
    task.reference.load_state_dict(
        {key: value.detach().numpy() for key, value in task.twin.state_dict().items()}
    )
    ours_class, torch_class, _ = OPTIMIZERS[optimizer_name]
    hyper: dict[str, Any] = {"lr": lr}
    if optimizer_name in ("sgd", "rmsprop"):
        hyper["momentum"] = momentum
    optimizer = ours_class(task.reference, **hyper)
    twin_optimizer = torch_class(task.twin.parameters(), **hyper)
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
            target = torch.from_numpy(yb)
            twin_value = task.twin_loss(task.twin(torch.from_numpy(xb)), target)
            twin_value.backward()
            twin_optimizer.step()
            theirs.append(float(twin_value.detach()))
        reference_curve.append(float(np.mean(ours)))
        torch_curve.append(float(np.mean(theirs)))
    return reference_curve, torch_curve


def save_plot(curves: dict[str, tuple[list[float], list[float]]], path: Path) -> bool:
    """Save the loss curves as a PNG; False (and a message) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot saved (pip install matplotlib to get one)")
        return False
    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for axis, (name, (ours, theirs)) in zip(axes[0], curves.items(), strict=True):
        epochs = range(1, len(ours) + 1)
        axis.plot(epochs, ours, "o-", label="reference_impl")
        axis.plot(epochs, theirs, "x--", label="torch")
        axis.set(title=name, xlabel="epoch", ylabel="mean training loss")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"plot saved to {path}")
    return True


def main(argv: Sequence[str] | None = None) -> dict[str, tuple[list[float], list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=128, help="training examples per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    parser.add_argument(
        "--lr", type=float, default=None, help="default: 0.1 for SGD, 0.01 for the others"
    )
    parser.add_argument(
        "--momentum", type=float, default=None, help="SGD (default 0.9) and RMSprop (default 0)"
    )
    parser.add_argument("--namespace", choices=["vectorized", "loops"], default="vectorized")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("loss_curves.png"))
    parser.add_argument("--no-plot", action="store_true", help="do not save a plot")
    args = parser.parse_args(argv)
    lr = OPTIMIZERS[args.optimizer][2] if args.lr is None else args.lr
    default_momentum = 0.9 if args.optimizer == "sgd" else 0.0
    momentum = default_momentum if args.momentum is None else args.momentum

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    curves = {}
    for name in args.tasks:
        task = TASKS[name](args.samples, rng, args.namespace)
        start = time.perf_counter()
        ours, theirs = train(
            task, args.epochs, args.batch_size, lr, momentum, args.seed, args.optimizer
        )
        seconds = time.perf_counter() - start
        ours_class, torch_class, _ = OPTIMIZERS[args.optimizer]
        print(f"\n{name}: {len(task.x)} examples, {args.namespace} namespace, {seconds:.1f} s")
        print(f"optimizer: networks.{ours_class.__name__} and torch.optim.{torch_class.__name__}")
        print(f"{'epoch':>5}  {'reference':>14}  {'torch':>14}  {'|difference|':>12}")
        for epoch, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
            print(f"{epoch:>5}  {a:>14.9g}  {b:>14.9g}  {abs(a - b):>12.2e}")
        curves[name] = (ours, theirs)
    if not args.no_plot:
        save_plot(curves, args.plot)
    return curves


if __name__ == "__main__":
    main()
