"""benchmarks/programs_table.py: bad settings fail before training; a short run reports a row."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "programs_table.py"


def _table():
    spec = importlib.util.spec_from_file_location("programs_table", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("setting, message", [
    ("task.sampling=bad", "sampling must be one of"),
    ("task.nope=1", "has no parameter 'nope'"),
    ("loss_mean=bad", "loss_mean must be one of"),
])
def test_bad_settings_fail_before_any_training(capsys, setting, message):
    with pytest.raises(SystemExit) as exc:
        _table().main(["--tasks", "reverse", "--set", setting])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_short_run_prints_a_row_per_seed(capsys):
    _table().main(["--tasks", "hist", "--seeds", "0,1", "--epochs", "1", "--samples", "300",
                   "--set", "loss_mean=sequence", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")]
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(r["settings"] == ["loss_mean=sequence"] and r["agreement"] == 1.0
               and 0.0 <= r["test_acc"] <= 100.0 for r in rows)
