"""A pretrain run is an ordinary run: ``workbench fourier numbers`` and ``workbench circuits
discover`` run on a tiny pretrained model unchanged."""

from __future__ import annotations

import json

import pytest

from training.lm.api import pretrain
from training.lm.prepare import prepare
from workbench.cli import main
from workbench.runs import load_run
from workbench.store import RunStore

pytestmark = pytest.mark.integration


@pytest.fixture
def lm_run(home, tmp_path):
    data = tmp_path / "arith"
    prepare(["builtin:arithmetic:300"], tokenizer="train:300", output=str(data))
    overrides = {"n_layers": "2", "d_model": "32", "n_heads": "2", "d_mlp": "64",
                 "n_ctx": "32", "batch_size": "4", "steps": "20", "checkpoint_every": "10",
                 "log_checkpoints": "0", "eval_batches": "0"}
    pretrain(str(data), overrides=overrides, name="lm", store=RunStore(home))
    return load_run("lm", RunStore(home))


def _pair_file(run, path):
    """Clean 'a + b =' against corrupted 'a + c =' (same token count), answer the first token
    of the sum, as token strings of the run's own tokenizer."""
    tok = run.model().tokenizer
    lines = []
    for a in range(10, 40):
        b, c = a % 7 + 1, a % 7 + 2
        clean, corrupted = (tok.tokenize(f"{a} + {x} =") for x in (b, c))
        answer = tok.tokenize(f" {a + b}")[0]
        if len(clean) == len(corrupted):
            lines.append(json.dumps({"clean": clean, "corrupted": corrupted, "answer": answer}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _discover(model, pairs, capsys):
    code = main(["circuits", "discover", "--model", str(model), "--task", str(pairs),
                 "--steps", "5", "--examples", "16", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def test_fourier_numbers_and_circuits_on_the_models_directory(lm_run, tmp_path, capsys):
    assert main(["fourier", "numbers", "--model", "lm", "--n", "20", "--json"]) == 0
    numbers = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert numbers["n_layers"] == 2 and numbers["n_numbers"] == 20
    result = _discover(lm_run.checkpoint_path().parent, _pair_file(lm_run, tmp_path / "p.jsonl"),
                       capsys)
    assert result  # a circuit search ran end to end on the exported model


def test_circuits_discover_by_run_name(lm_run, tmp_path, capsys):
    result = _discover("lm", _pair_file(lm_run, tmp_path / "p.jsonl"), capsys)
    circuit = RunStore().get_run(result["run_id"])  # the search is a run of its own
    assert circuit.kind == "circuits" and circuit.status == "completed"
    assert circuit.config["model"] == "lm" and result["n_edges"] > 0
