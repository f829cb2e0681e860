"""The `workbench` CLI: tasks, train --json, runs list/show/delete, and the bad-input list
(one line naming the problem, exit code 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main

REQUIRED_TRAIN_KEYS = {"run_id", "task", "steps", "wall_seconds", "train_loss", "train_acc",
                       "test_loss", "test_acc", "checkpoint", "weights_sha256"}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_json_lists_every_required_task(home, capsys):
    code, out, _ = _run(capsys, "tasks", "--json")
    assert code == 0
    names = {t["name"] for t in json.loads(out)["tasks"]}
    assert {"modular-addition", "modular-subtraction", "modular-multiplication",
            "sparse-parity", "group-composition", "reverse", "hist", "double-hist", "sort",
            "most-freq", "dyck-1", "dyck-2", "induction"} <= names
    params = {t["name"]: {p["name"] for p in t["parameters"]} for t in json.loads(out)["tasks"]}
    assert {"p", "frac_train"} <= params["modular-addition"]


def test_train_json_runs_show_list_delete(home, capsys):
    code, out, err = _run(capsys, "train", "modular-addition", "--preset", "tiny", "--set",
                          "steps=30", "--set", "p=7", "--name", "mine", "--json", "--no-progress")
    assert code == 0, err
    result = json.loads(out)
    assert REQUIRED_TRAIN_KEYS <= set(result)
    code, out, _ = _run(capsys, "runs", "show", "mine", "--json")
    shown = json.loads(out)
    assert shown["id"] == result["run_id"] and shown["status"] == "completed"
    assert shown["config"]["task_params"]["p"] == 7
    assert shown["checkpoints"][-1] == 30 and "test_acc" in shown["metrics"]
    code, out, _ = _run(capsys, "runs", "list", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [result["run_id"]]
    assert _run(capsys, "runs", "delete", "mine", "--json")[0] == 0
    assert json.loads(_run(capsys, "runs", "list", "--json")[1])["runs"] == []


def test_train_help_lists_config_keys(home, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "modular-addition", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for key in ("steps", "batch_size", "lr", "weight_decay", "eval_every", "checkpoint_every",
                "p", "frac_train", "d_model"):
        assert key in out


@pytest.mark.parametrize("argv, message", [
    (["train", "no-such-task"], "unknown task 'no-such-task'"),
    (["train", "modular-addition", "--set", "bogus=1"], "unknown config key 'bogus'"),
    (["train", "modular-addition", "--set", "lr=fast"], "lr must be a number"),
    (["train", "modular-addition", "--set", "steps=-5"], "steps must be positive"),
    (["train", "modular-addition", "--set", "d_model=-3"], "d_model must be a positive"),
    (["train", "modular-addition", "--set", "p=12"], "p must be prime"),
    (["train", "modular-addition", "--set", "d_vocab=5"], "derived from the task"),
    (["train", "modular-addition", "--set", "seed=3"], "ambiguous config key 'seed'"),
    (["train", "modular-addition", "--preset", "huge"], "no preset 'huge'"),
    (["train", "modular-addition", "--name", "../escape"], "invalid run name"),
    (["train", "--resume", "missing-run"], "no run 'missing-run'"),
    (["runs", "show", "missing-run"], "no run 'missing-run'"),
    (["runs", "delete", "missing-run"], "no run 'missing-run'"),
    (["train", "--data", "/nonexistent/data.jsonl"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(home, capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    runs_dir = home / "runs"
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.parametrize("content, suffix, message", [
    ("{not json", ".json", "malformed config file"),
    ("lr: [unclosed", ".yaml", "malformed config file"),
    ("- 1\n- 2\n", ".yaml", "must hold a mapping"),
    ("{}", ".toml", "must end in .json"),
])
def test_malformed_config_file(home, tmp_path, capsys, content, suffix, message):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(content)
    code, _, err = _run(capsys, "train", "modular-addition", "--config", str(path))
    assert code == 2 and message in err


def test_config_file_and_set_combine(home, tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text("train:\n  steps: 12\n  eval_every: 6\np: 5\n")
    code, out, err = _run(capsys, "train", "modular-addition", "--preset", "tiny", "--config",
                          str(path), "--set", "steps=18", "--json", "--no-progress")
    assert code == 0, err
    result = json.loads(out)
    assert result["steps"] == 18
    cfg = json.loads(_run(capsys, "runs", "show", result["run_id"], "--json")[1])["config"]
    assert cfg["task_params"]["p"] == 5 and cfg["train"]["eval_every"] == 6


def test_unwritable_home(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("WORKBENCH_HOME", str(blocker / "home"))
    code, _, err = _run(capsys, "train", "modular-addition", "--preset", "tiny")
    assert code == 2 and "not writable" in err


def test_custom_jsonl_task_trains(home, tmp_path, capsys):
    path = tmp_path / "copy.jsonl"
    lines = []
    for a in range(6):
        for b in range(6):
            lines.append(json.dumps({"input": [a, b], "output": [b, a]}))
    path.write_text("\n".join(lines) + "\n")
    code, out, err = _run(capsys, "train", "--data", str(path), "--preset", "tiny", "--set",
                          "steps=60", "--json", "--no-progress")
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "custom" and 0 <= result["test_acc"] <= 1


def test_custom_jsonl_errors_name_the_line(home, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": [1], "output": [2]}\n{"input": 5, "output": [1]}\n')
    code, _, err = _run(capsys, "train", "--data", str(path))
    assert code == 2 and "line 2" in err


def test_resume_of_a_run_that_is_still_training_is_refused(home, run_cli):
    from workbench.store import RunStore

    store = RunStore(home)
    run = store.create_run(kind="train", task="modular-addition", config={})
    store.set_status(run.id, "running")  # owned by this (live) test process
    proc = run_cli("train", "--resume", run.id)
    assert proc.returncode == 2
    assert "still being trained" in proc.stderr and "Traceback" not in proc.stderr
    assert store.get_run(run.id).status == "running"
