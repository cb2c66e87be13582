"""Smoke test of ``examples/train.py``: it runs, both trainers follow the same curve (SGD, Adam)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from oracle_tests.netcases import NetCase, drift_length, network_length
from reference_impl.testing.comparison import assert_close

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train.py"


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_train", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def assert_curves_agree(
    train: ModuleType, curves: dict[str, Any], samples: int, batch_size: int, namespace: str
) -> None:
    """Each reference curve is torch's within the SGD drift bound of its number of steps.

    The bound is ``netcases.drift_length`` of the task's network (freshly
    drawn: only its shapes and, for BCE, how close σ comes to 0 or 1 matter).
    """
    for name, (ours, theirs) in curves.items():
        task = train.TASKS[name](samples, np.random.default_rng(0), namespace)
        case = NetCase(task.reference, task.reference_loss, task.x, task.target)
        assert_close(
            np.array(ours),
            np.array(theirs),
            quantity="mean loss of each epoch",
            actual_name=f"reference_impl ({namespace})",
            expected_name="torch",
            formula=f"examples/train.py {name}",
            dtype=np.dtype(np.float64),
            reduction_length=drift_length(case, len(ours) * math.ceil(samples / batch_size)),
            record=False,
        )


def test_example_trains_with_tiny_settings(
    train: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    curves = train.main(
        ["--epochs", "2", "--samples", "24", "--batch-size", "8", "--plot", str(tmp_path / "c.png")]
    )
    printed = capsys.readouterr().out
    assert set(curves) == set(train.TASKS)
    for name, (ours, theirs) in curves.items():
        assert len(ours) == len(theirs) == 2, name
        assert f"{name}: 24 examples" in printed
    assert_curves_agree(train, curves, samples=24, batch_size=8, namespace="vectorized")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in printed
    else:
        assert (tmp_path / "c.png").stat().st_size > 0


def test_example_runs_on_the_loop_namespace(train: ModuleType) -> None:
    tiny = ["--tasks", "mlp", "--epochs", "1", "--samples", "8", "--batch-size", "4"]
    curves = train.main([*tiny, "--no-plot", "--namespace", "loops"])
    assert set(curves) == {"mlp"}
    assert_curves_agree(train, curves, samples=8, batch_size=4, namespace="loops")


@pytest.mark.parametrize("optimizer", ["adam"])
def test_example_trains_with_adam_on_both_sides(
    train: ModuleType, optimizer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--optimizer adam`` steps ``networks.Adam`` and ``torch.optim.Adam``.

    One full batch per epoch, so the first epoch's loss is one forward pass
    at the shared initial weights: within the network's own tolerance
    (``netcases.network_length``; no optimizer step has been taken). The
    trajectories of the adaptive optimizers are checked with their derived
    drift bounds in ``test_network_optimizers.py``; here the later epochs must
    be finite and lower the loss on both sides.
    """
    tiny = ["--tasks", "mlp", "--epochs", "3", "--samples", "8", "--batch-size", "8"]
    curves = train.main([*tiny, "--no-plot", "--optimizer", optimizer, "--lr", "0.05"])
    printed = capsys.readouterr().out
    assert "optimizer: networks.Adam and torch.optim.Adam" in printed
    ours, theirs = curves["mlp"]
    task = train.TASKS["mlp"](8, np.random.default_rng(0), "vectorized")
    case = NetCase(task.reference, task.reference_loss, task.x, task.target)
    assert_close(
        np.array(ours[0]),
        np.array(theirs[0]),
        quantity="loss at the initial weights",
        actual_name="reference_impl",
        expected_name="torch",
        formula="examples/train.py mlp --optimizer adam",
        dtype=np.dtype(np.float64),
        reduction_length=network_length(case),
        record=False,
    )
    for curve in (ours, theirs):
        assert np.all(np.isfinite(curve)) and curve[-1] < curve[0], curve
