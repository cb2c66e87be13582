"""Smoke test of ``examples/train.py``: it runs, and both trainers follow the same curve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train.py"


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_train", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


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
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, err_msg=name)
        assert f"{name}: 24 examples" in printed
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in printed
    else:
        assert (tmp_path / "c.png").stat().st_size > 0


def test_example_runs_on_the_loop_namespace(train: ModuleType) -> None:
    tiny = ["--tasks", "mlp", "--epochs", "1", "--samples", "8", "--batch-size", "4"]
    curves = train.main([*tiny, "--no-plot", "--namespace", "loops"])
    ours, theirs = curves["mlp"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
