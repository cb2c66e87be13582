"""Smoke test of ``examples/train_sequence.py``: it runs, and both trainers follow one curve."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from oracle_tests.netcases import NetCase, drift_length
from reference_impl.testing.comparison import assert_close

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_sequence.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_train_sequence", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def assert_curves_agree(
    example: ModuleType,
    curves: dict[str, Any],
    samples: int,
    batch_size: int,
    hidden: int,
    namespace: str,
) -> None:
    """Each reference curve is torch's within the SGD drift bound of its number of steps.

    The bound is ``netcases.drift_length`` of the task's network, freshly
    drawn (only its shapes matter: an LSTM or GRU length is time-unrolled).
    """
    for name, (ours, theirs) in curves.items():
        task = example.TASKS[name](samples, np.random.default_rng(0), hidden, namespace)
        case = NetCase(task.reference, task.reference_loss, task.x, task.target)
        assert_close(
            np.array(ours),
            np.array(theirs),
            quantity="mean loss of each epoch",
            actual_name=f"reference_impl ({namespace})",
            expected_name="torch",
            formula=f"examples/train_sequence.py {name}",
            dtype=np.dtype(np.float64),
            reduction_length=drift_length(case, len(ours) * math.ceil(samples / batch_size)),
            record=False,
        )


def test_example_sequence_lstm_gru_train_with_tiny_settings(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = ["--epochs", "2", "--samples", "24", "--batch-size", "8", "--hidden", "6"]
    threads = torch.get_num_threads()
    try:
        curves = example.main([*settings, "--plot", str(tmp_path / "c.png")])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert set(curves) == set(example.TASKS) == {"sorted", "next"}
    for name, (ours, theirs) in curves.items():
        assert len(ours) == len(theirs) == 2, name
        assert f"{name}: 24 sequences" in printed
    assert printed.count("training accuracy: reference") == 2
    assert_curves_agree(example, curves, samples=24, batch_size=8, hidden=6, namespace="vectorized")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in printed
    else:
        assert (tmp_path / "c.png").stat().st_size > 0


def test_example_sequence_runs_on_the_loop_namespace(example: ModuleType) -> None:
    tiny = ["--epochs", "1", "--samples", "4", "--batch-size", "4", "--hidden", "3"]
    curves = example.main([*tiny, "--no-plot", "--namespace", "loops"])
    assert set(curves) == {"sorted", "next"}
    assert_curves_agree(example, curves, samples=4, batch_size=4, hidden=3, namespace="loops")


def test_example_sequence_data_is_what_it_says(example: ModuleType) -> None:
    """Sorted labels mark exactly the non-decreasing rows (about half); each text window is
    followed by its target character in the text it was cut from."""
    rng = np.random.default_rng(1)
    tokens, labels = example.sorted_sequences(200, rng)
    assert tokens.shape == (200, example.LENGTH) and tokens.max() < example.DIGITS
    assert np.array_equal(labels, [list(row) == sorted(row) for row in tokens])
    assert 0.3 < labels.mean() < 0.7
    windows, following = example.text_windows(50, rng)
    assert windows.shape == (50, example.WINDOW) and following.shape == (50,)
    assert windows.max() < len(example.ALPHABET) and following.max() < len(example.ALPHABET)
