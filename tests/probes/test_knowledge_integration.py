"""`workbench probes knowledge run` end to end on a tiny bioS model: generate, prepare,
pretrain (training/lm), QA finetune or mixed training, held-out QA, P- and Q-probe tables,
and the result stored under the pretrain run."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

PRETRAIN = ["--people", "40", "--steps", "60", "--vocab-size", "1024", "--batch-size", "16",
            "--augmentation", "multi2+permute+fullname", "--model",
            '{"d_model": 64, "d_mlp": 256}', "--json"]


@pytest.mark.parametrize("protocol", ["pretrain-finetune", "mixed"])
def test_knowledge_run_end_to_end(run_cli, store, protocol):
    proc = run_cli("probes", "knowledge", "run", "--protocol", protocol, *PRETRAIN,
                   "--finetune-steps", "40", "--probe-steps", "30", "--series-checkpoints", "3",
                   check=True)
    out = json.loads(proc.stdout)
    attributes = ["birth_date", "birth_city", "university", "major", "employer",
                  "employer_city"]
    run = store.get_run(out["run_id"])
    assert run.kind == "pretrain" and run.status == "completed"
    assert out["pretrain"]["steps"] == 60
    stored = store.results(out["run_id"], "knowledge")
    assert len(stored) == 1 and next(iter(stored.values()))["p_probe"] == out["p_probe"]
    assert sorted(out["qa_accuracy"]) == sorted(attributes + ["all"])
    assert all(0 <= v <= 1 for v in out["qa_accuracy"].values())
    assert (out["qa_before_finetune"] is None) == (protocol == "mixed")
    assert sorted(out["memorisation"]) == sorted(attributes + ["all", "loss"])
    assert out["memorisation"]["loss"] > 0
    p, q = out["p_probe"], out["q_probe"]
    assert p["anchors"] == ["name"] + [f"before:{a}" for a in attributes]
    assert p["attributes"] == attributes and p["rank"] == 2 and q["rank"] == 16
    assert len(p["accuracy"]) == 7 and all(len(r) == 6 for r in p["accuracy"])
    assert q["anchors"] == ["name"] and p["n_train"] == p["n_test"] == 20
    # the probes learn: on the people they were trained on they beat chance
    assert sum(map(sum, p["train_accuracy"])) / 42 > sum(p["chance"]) / 6 + 0.1
    # probes over the checkpoint series: first, middle and final checkpoint of the run; the
    # last one is the final model, probed with the same settings as the Q-probe table
    for key in ("q_probe_over_training", "p_probe_name_over_training"):
        series = out[key]
        assert series["attributes"] == attributes and len(series["steps"]) == 3
        assert series["steps"][0] == 1 and series["steps"][-1] == 60
        assert series["steps"] == sorted(series["steps"]) and len(series["accuracy"]) == 3
        assert all(len(row) == 6 and all(0 <= v <= 1 for v in row) for row in series["accuracy"])
    assert out["q_probe_over_training"]["accuracy"][-1] == q["accuracy"][0]
    if protocol == "pretrain-finetune":
        # finetuning on the train half's QA moves its QA accuracy above the pretrained model's
        assert out["qa_train_accuracy"]["all"] >= out["qa_before_finetune"]["all"]
    # other probe settings reuse the pretrained run (no second pretraining) and add a result
    again = json.loads(run_cli("probes", "knowledge", "run", "--protocol", protocol, *PRETRAIN,
                               "--finetune-steps", "1", "--probe-steps", "2",
                               "--series-checkpoints", "0", check=True).stdout)
    assert again["run_id"] == out["run_id"] and len(store.list_runs(kind="pretrain")) == 1
    assert len(store.results(out["run_id"], "knowledge")) == 2
    assert again["q_probe_over_training"] is None
