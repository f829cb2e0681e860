import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.cli import main

KEYS = {"run_id", "n_edges", "total_edges", "sparsity", "kl", "accuracy", "logit_diff",
        "exact_match", "wall_seconds", "paths"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def pairs(tmp_path):
    import random
    words = ["Mary", "John", "Tom", "went", "to", "the", "store", "gave", "a", "book"]
    rng = random.Random(0)
    p = tmp_path / "pairs.jsonl"
    with open(p, "w") as fh:
        for _ in range(24):
            clean = [rng.choice(words) for _ in range(6)]
            fh.write(json.dumps({"clean": clean, "corrupted": [rng.choice(words) for _ in
                                                              range(6)],
                                 "answer": "Mary", "distractor": "John"}) + "\n")
    return p


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_discover_json_and_files(home, pairs, hf_dirs, capsys, tmp_path):
    code, out, err = _run(capsys, ["circuits", "discover", "--model", str(hf_dirs["gpt2"]),
                                   "--task", str(pairs), "--steps", "15",
                                   "--target-sparsity", "0.8", "--json"])
    assert code == 0, err
    res = json.loads(out)
    assert KEYS <= set(res)
    assert set(res["paths"]) >= {"json", "graphml", "dot"}
    assert all(os.path.isfile(p) for p in res["paths"].values())
    assert res["total_edges"] == 137 and 0 <= res["n_edges"] <= 137
    assert abs(res["sparsity"] - (1 - res["n_edges"] / 137)) < 1e-9
    from workbench.store import RunStore
    store = RunStore(home)
    run = store.get_run(res["run_id"])
    assert run.kind == "circuits" and run.status == "completed"
    assert {"kl", "sparsity", "lambda1"} <= set(store.metric_history(run.id))
    # evaluate and compare the saved circuit
    code, out, _ = _run(capsys, ["circuits", "evaluate", res["paths"]["json"], "--model",
                                 str(hf_dirs["gpt2"]), "--task", str(pairs), "--json"])
    assert code == 0 and json.loads(out)["n_edges"] == res["n_edges"]
    code, out, _ = _run(capsys, ["circuits", "compare", res["paths"]["json"],
                                 res["paths"]["json"], "--json"])
    cmp = json.loads(out)
    assert code == 0 and cmp["shared"] == res["n_edges"]
    assert {"jaccard", "chance_jaccard", "chance_shared", "shared_edges"} <= set(cmp)


def test_discover_bf16_with_gradient_checkpointing(home, pairs, hf_dirs, capsys):
    # the GPU memory options on a Hugging Face GPT-2, run here under CPU bf16 autocast
    code, out, err = _run(capsys, ["circuits", "discover", "--model", str(hf_dirs["gpt2"]),
                                   "--task", str(pairs), "--steps", "10", "--precision", "bf16",
                                   "--grad-checkpoint", "--json"])
    assert code == 0, err
    res = json.loads(out)
    assert res["total_edges"] == 137 and math.isfinite(res["kl"])


@pytest.mark.parametrize("extra, message", [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--target-sparsity", "1.7"], "target-sparsity must be in [0, 1.5]"),
    (["--target-sparsity", "-0.1"], "target-sparsity must be in [0, 1.5]"),
    (["--task", "bad.jsonl"], "does not exist"),
    (["--method", "magic"], "method must be one of"),
])
def test_discover_bad_input(home, pairs, hf_dirs, capsys, extra, message):
    argv = ["circuits", "discover", "--model", str(hf_dirs["gpt2"]), "--task", str(pairs),
            "--steps", "2"]
    for flag, value in zip(extra[::2], extra[1::2]):
        argv[argv.index(flag) + 1 if flag in argv else len(argv):] = \
            [value] + argv[argv.index(flag) + 2:] if flag in argv else [flag, value]
    code, out, err = _run(capsys, argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_task_file_error_names_line(home, hf_dirs, capsys, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"clean": ["Mary"], "corrupted": ["Tom"], "answer": "Mary"}\n'
                 '{"clean": ["Mary", "went"], "corrupted": ["Tom"], "answer": "Mary"}\n')
    code, _, err = _run(capsys, ["circuits", "discover", "--model", str(hf_dirs["gpt2"]),
                                 "--task", str(p), "--steps", "2"])
    assert code == 2 and "line 2" in err


def _spec(tmp_path, model, pairs, methods=("eap", "edge-pruning")):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"models: [{model}]\ntasks: [{pairs}]\nsparsities: [0.5, 0.9]\n"
                    f"methods: [{', '.join(methods)}]\nseeds: [0]\nsteps: 10\nexamples: 16\n")
    return spec


def test_sweep_resumes_without_redoing(home, pairs, hf_dirs, capsys, tmp_path):
    spec = _spec(tmp_path, hf_dirs["gpt2"], pairs)
    code, out, _ = _run(capsys, ["circuits", "sweep", str(spec), "--dry-run", "--json"])
    assert code == 0 and json.loads(out)["total"] == 4 and len(json.loads(out)["pending"]) == 4
    code, out, _ = _run(capsys, ["circuits", "sweep", str(spec), "--in-process", "--json"])
    first = json.loads(out)
    assert code == 0 and first["done"] == 4 and first["failed"] == 0, first
    for key in ("csv", "json", "html", "png"):
        assert first[key] and os.path.isfile(first[key]), (key, first.get("png_error"))
    assert open(first["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    rows = {r["key"]: r for r in json.load(open(first["json"]))}
    # simulate a kill after three entries: one result missing
    victim = sorted(rows)[0]
    os.remove(os.path.join(first["directory"], "entries", f"{victim}.json"))
    code, out, _ = _run(capsys, ["circuits", "sweep", str(spec), "--in-process", "--json"])
    second = json.loads(out)
    assert second["skipped"] == 3 and second["done"] == 4
    again = {r["key"]: r for r in json.load(open(second["json"]))}
    for key in rows:  # finished entries were not redone (same run ids), the victim was
        assert (again[key]["run_id"] == rows[key]["run_id"]) == (key != victim)
    assert "edge-pruning" in open(first["csv"]).read()


def test_sweep_bad_spec(home, tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [x]\ntasks: [ioi]\nsparsities: [2.0]\n")
    code, _, err = _run(capsys, ["circuits", "sweep", str(spec)])
    assert code == 2 and "sparsity must be in [0, 1.5]" in err


@pytest.mark.integration
def test_sweep_subprocess_killed_and_resumed(home, pairs, hf_dirs, tmp_path):
    spec = _spec(tmp_path, hf_dirs["gpt2"], pairs, methods=("eap",))
    argv = [sys.executable, "-m", "workbench.cli", "circuits", "sweep", str(spec), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    entries = spec.with_suffix(".sweep") / "entries"
    deadline = time.time() + 300
    # a finished entry is its renamed KEY.json; the atomic write's temporary file (seen first
    # under load, where the CI run once killed the sweep between the two) does not count
    while time.time() < deadline and not any(entries.glob("*.json")) and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
    _, err = proc.communicate()
    done_before = {p.name: p.stat().st_mtime for p in entries.glob("*.json")}
    assert 1 <= len(done_before) <= 2, err.decode()[-2000:]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["done"] == 2 and summary["skipped"] == len(done_before)
    for name, mtime in done_before.items():
        assert (entries / name).stat().st_mtime == mtime
