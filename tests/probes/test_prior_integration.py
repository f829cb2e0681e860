"""Prior localisation end to end at tiny scale: a tiny pretrain on the in-house prior corpus
(training.lm's API), `workbench probes prior` and `prior-finetune` on it, the finetune's new run
(HF format, loadable, every block outside the chosen ones bit-identical), the HF path on a tiny
randomly initialised Llama saved by the test (plumbing only), and bad input: one line, exit 2,
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inhouse(tmp_path_factory):
    """A 2-block Llama-style model pretrained briefly on the in-house counting corpus."""
    root = tmp_path_factory.mktemp("prior")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:  # the store the pretraining writes to
        mp.setenv("WORKBENCH_HOME", str(home))
        from training.corpora.prior_tasks import prior_task, write_corpus
        from training.lm.api import pretrain
        from training.lm.prepare import prepare
        task = prior_task("count")
        write_corpus(task, root / "corpus.jsonl", 1500)
        prepare([str(root / "corpus.jsonl")], tokenizer="train:300", output=str(root / "data"))
        run = pretrain(str(root / "data"), preset="llama-tiny", name="prior-tiny", overrides={
            "steps": 30, "batch_size": 8, "n_ctx": 64, "d_model": 32, "n_heads": 2,
            "d_mlp": 64, "n_layers": 2, "eval_every": 30, "checkpoint_every": 30,
            "log_checkpoints": 0, "warmup_steps": 5})
    return home, run


def _cli_in(home, *args, timeout=600):
    """``workbench ARGS`` in a subprocess on the module's store (``run_cli`` has its own)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, f"workbench {' '.join(map(str, args))} failed:\n{proc.stderr}"
    return proc


def _weights(directory):
    return load_file(str(directory / "model.safetensors"))


def _check_only_blocks_changed(before: dict, after: dict, blocks: list[int], prefix: str):
    assert set(before) == set(after)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    inside = {k for k in before if any(k.startswith(f"{prefix}{b}.") for b in blocks)}
    assert changed and changed <= inside  # bit-identical outside the chosen blocks


def test_inhouse_prior_and_finetune_end_to_end(inhouse, monkeypatch):
    home, run = inhouse
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    proc = _cli_in(home, "probes", "prior", "prior-tiny", "--task", "count", "--n", "100",
                   "--json")
    out = json.loads(proc.stdout)
    assert set(out["accuracy_by_bin"]) == {"common", "medium", "rare"}
    assert out["sites"] == ["resid.0", "resid.1", "resid.2"] and len(out["r2"][0]) == 3
    assert out["localised_layers"] in ([0], [1]) and "rule" in out
    assert all(v < 0.3 for row in out["shuffled_r2"] for v in row)  # noise is not decodable
    corpus = {r["value"]: r["corpus_weight"] for r in out["values"]}
    assert corpus["10"] == 12.0 and corpus["7"] == 1.0
    from workbench.store import RunStore
    store = RunStore(home)
    # the storage contract the browser page reads: kind "prior", key "task=<task> step=<step>"
    assert out["stored_as"] == "task=count step=30"
    stored = store.get_result(run.run_id, "prior", "task=count step=30")
    assert stored["localised_layers"] == out["localised_layers"] and stored["r2"] == out["r2"]

    proc = _cli_in(home, "probes", "prior-finetune", "prior-tiny", "--task", "count",
                   "--layers", "1", "--steps", "3", "--n", "40", "--n-eval", "30",
                   "--held-out", "3,8,10", "--val-fraction", "0", "--name", "tuned", "--json")
    ft = json.loads(proc.stdout)
    assert ft["layers"] == [1] and ft["control_layers"] == [0]
    for key in ("before", "localised", "other_layers", "all_layers", "instruction_baseline"):
        assert 0 <= ft[key]["held_out_accuracy"] <= 1 and "rho" in ft[key]["correlation"]
    new = store.get_run("tuned")
    assert new.kind == "prior-finetune" and new.parent == run.run_id
    # progress for the job log and the store: one stage line and one arms_done row per arm
    stages = [ln for ln in proc.stderr.splitlines() if ln.startswith("prior-finetune: arm ")]
    assert stages[2] == "prior-finetune: arm 3/5 localised (blocks [1])" and len(stages) == 5
    assert store.metrics(new.id) and [r[1] for r in store.metrics(new.id)] == [1, 2, 3, 4, 5]
    assert new.status == "completed" and new.config["held_out"] == ["3", "8", "10"]
    assert new.config["parent"] == run.run_id
    stored = store.get_result(new.id, "prior_finetune", "task=count")
    assert stored["run_id"] == new.id and stored["localised"] == ft["localised"]
    assert stored["layers"] == [1] and stored["localisation"]["sites"] == out["sites"]
    assert (home / "runs" / new.id / "prior_finetune.json").is_file()
    import workbench
    bridge = workbench.load_run("tuned").model()  # loadable like any other run
    assert bridge.cfg.n_layers == 2
    source = home / "runs" / run.run_id / "checkpoints" / "step_00000030"
    _check_only_blocks_changed(_weights(source), _weights(__import__("pathlib").Path(
        ft["checkpoint"])), [1], "model.layers.")


def test_killed_finetune_resumes_from_its_last_arm(inhouse, monkeypatch):
    """A finetune stopped in its third arm resumes with its own config, redoes only the arms
    that had not finished, and ends with the figures of an uninterrupted run."""
    import probes.prior_finetune as pf
    from workbench.cli import main
    from workbench.store import RunStore
    home, run = inhouse
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    args = ["probes", "prior-finetune", "prior-tiny", "--task", "count", "--layers", "0",
            "--steps", "6", "--eval-every", "2", "--n", "40", "--n-eval", "30", "--n-val",
            "10", "--held-out", "3,8,10"]
    real, calls = pf.finetune_blocks, []

    def stopped_in_the_second_finetune(*a, **k):
        calls.append(a[3])
        if len(calls) == 2:
            raise KeyboardInterrupt  # what SIGTERM / Ctrl-C raise inside the lifecycle
        return real(*a, **k)
    monkeypatch.setattr(pf, "finetune_blocks", stopped_in_the_second_finetune)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses below: the same arithmetic
    try:
        assert main([*args, "--name", "killed", "--json"]) == 130
    finally:
        torch.set_num_threads(threads)
    store = RunStore(home)
    killed = store.get_run("killed")
    arms = home / "runs" / killed.id / "arms"
    assert killed.status == "cancelled"
    assert sorted(p.name for p in arms.glob("*.json")) == [
        "before.json", "instruction_baseline.json", "localised.json"]
    localised = (arms / "localised.json").read_text()
    monkeypatch.setattr(pf, "finetune_blocks", real)

    proc = _cli_in(home, "probes", "prior-finetune", "killed", "--resume", "--json")
    resumed = json.loads(proc.stdout)
    assert store.get_run("killed").status == "completed"
    assert (arms / "localised.json").read_text() == localised  # not redone
    assert store.get_result(killed.id, "prior_finetune", "task=count")["all_layers"] == \
        resumed["all_layers"]
    whole = json.loads(_cli_in(home, *args, "--name", "whole", "--json").stdout)
    for key in pf.ARMS:
        assert resumed[key] == whole[key], key
    a, b = (_weights(Path(r["checkpoint"])) for r in (resumed, whole))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    proc = _cli_in_fails(home, "probes", "prior-finetune", "killed", "--resume")
    assert "completed" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = _cli_in_fails(home, "probes", "prior-finetune", "killed", "--resume", "--lr", "1")
    assert "--resume continues a run with its own config; drop --lr" in proc.stderr


def _cli_in_fails(home, *args):
    import os
    import subprocess
    import sys
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    return proc


@pytest.fixture
def tiny_llama(tmp_path):
    """A randomly initialised tiny Llama saved with a byte-level BPE tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.corpora.prior_tasks import prior_task
    from training.lm.tokenizer import save_hf_tokenizer, train_tokenizer
    task = prior_task("count-words")
    texts = [s.prompt + s.answer for s in task.stimuli(60, seed=3)]
    tok = train_tokenizer(texts, 400)
    config = LlamaConfig(vocab_size=448, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    directory = tmp_path / "llama"
    LlamaForCausalLM(config).save_pretrained(str(directory))
    save_hf_tokenizer(tok, directory)
    return directory


def test_hf_directory_prior_and_finetune(tiny_llama, run_cli, store):
    values = "1,2,3,5,10,15,20"
    proc = run_cli("probes", "prior", tiny_llama, "--task", "count-words", "--values", values,
                   "--n", "28", "--json", check=True)
    out = json.loads(proc.stdout)  # stdout is the JSON alone; the stages go to stderr
    assert out["model"]["run_id"] is None and len(out["sites"]) == 5
    stages = [ln.split(": ", 1)[1] for ln in proc.stderr.splitlines() if ln.startswith("prior: ")]
    assert stages == [f"prior of every value ({len(values.split(','))} values)",
                      "scoring 28 prompts", "scoring 28 instructed prompts",
                      "collecting activations (28 prompts, every layer)", "fitting ridge probes"]
    assert out["values"][0]["corpus_weight"] is None  # the prior is the model's own
    # every value's prior is kept, for evaluation prompts holding values the analysis lacked
    assert set(out["log_prior"]) == set(values.split(","))
    assert all(out["log_prior"][r["value"]] == r["log_prior"] for r in out["values"])
    before = _weights(tiny_llama)
    proc = run_cli("probes", "prior-finetune", tiny_llama, "--task", "count-words", "--values",
                   values, "--n", "28", "--n-eval", "14", "--steps", "2", "--batch-size", "4",
                   "--held-out", "3,15", "--json", check=True)
    ft = json.loads(proc.stdout)
    assert ft["layers"] == out["localised_layers"] and len(ft["control_layers"]) == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("prior-finetune: ")]
    assert lines[:len(stages)] == [f"prior-finetune: localising: {s}" for s in stages]
    assert lines[len(stages)].startswith("prior-finetune: arm 1/5 ")  # then the arms
    run = store.get_run(ft["run_id"])
    assert run.kind == "prior-finetune" and run.parent is None and run.config["parent"] is None
    assert store.get_result(run.id, "prior_finetune", "task=count-words")["before"] \
        == ft["before"]
    from pathlib import Path
    _check_only_blocks_changed(before, _weights(Path(ft["checkpoint"])), ft["layers"],
                               "model.layers.")
    assert torch.equal(_weights(tiny_llama)["model.embed_tokens.weight"],
                       before["model.embed_tokens.weight"])  # the source is untouched


def test_bad_input_one_line_exit_2_nothing_written(tiny_llama, tmp_path, run_cli, store,
                                                   save_tiny_gpt2):
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    (no_tok / "config.json").write_text((tiny_llama / "config.json").read_text())
    no_digits = tmp_path / "no-digits"
    save_tiny_gpt2(no_digits, ["Count", "the", "words", "cat"])
    base = ["--task", "count-words", "--n", "20"]
    files = sorted(p for p in tmp_path.rglob("*") if "wbhome" not in p.parts)
    cases = [
        (["prior", tiny_llama, *base, "--values", "10,20"], "at least two"),
        (["prior-finetune", tiny_llama, *base, "--layers", "7"], "out of range"),
        # every block chosen leaves none for the control: refused before the analysis runs
        (["prior-finetune", tiny_llama, *base, "--layers", "0,1,2,3"],
         "no blocks outside [0, 1, 2, 3]"),
        (["prior-finetune", tiny_llama, *base, "--held-out", "3", "--train-values", "1,3"],
         "also appear in training"),
        # Llama blocks have no biases: refused before the analysis, not an empty optimizer
        (["prior-finetune", tiny_llama, *base, "--trainable", "biases"], "has no biases"),
        (["prior", no_tok, *base], "no tokenizer"),
        (["prior", no_digits, *base], "cannot encode the answer"),
        (["prior", tiny_llama, "--task", "nope"], "nope"),
    ]
    for args, message in cases:
        proc = run_cli("probes", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert store.list_runs() == []
    assert sorted(p for p in tmp_path.rglob("*") if "wbhome" not in p.parts) == files
