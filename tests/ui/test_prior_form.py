"""The /prior form's --values, --lr and --kl-weight: refused with the CLI's own one-line message
(restrict / check_bins / FinetuneConfig) beside the field and nothing started; valid values reach
an argv the CLI's parser reads back; a running ``probes prior`` or ``prior-finetune`` job
shows its latest stage."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from probes.prior_scoring import check_bins
from probes.prior_train import FinetuneConfig
from training.corpora.prior_tasks import prior_task, restrict
from ui.prior.launch import FIELDS, check_form, job_text, prior_jobs
from workbench.errors import UserError
from workbench.store import RunStore
from browser_helpers import wait_until
from test_prior_page import home_copy, prior_home  # noqa: F401 (the page tests' fixtures)


def _message(fn) -> str:
    with pytest.raises(UserError) as exc:
        fn()
    return str(exc.value)


def _config(**tuning):
    return FinetuneConfig(task="count", layers=(), held_out=("3",), train_values=("1",),
                          **tuning)


def test_bad_values_and_tuning_are_refused_and_nothing_starts(home_copy):
    store = RunStore(home_copy)
    lm = store.get_run("lm")
    runs = [r.id for r in store.list_runs()]
    task = prior_task("count")
    cases = [  # (command, field, form text, the CLI's message)
        ("prior-finetune", "lr", "-1", _message(lambda: _config(lr=-1.0))),
        ("prior-finetune", "lr", "0", _message(lambda: _config(lr=0.0))),
        ("prior-finetune", "kl_weight", "-0.5", _message(lambda: _config(kl_weight=-0.5))),
        ("prior-finetune", "trainable", "heads", _message(lambda: _config(trainable="heads"))),
        ("prior", "values", "1,99", _message(lambda: restrict(task, ["1", "99"]))),
        ("prior-finetune", "values", "two", _message(lambda: restrict(task, ["two"]))),
    ]
    for command, key, text, message in cases:
        assert text.split(",")[-1] in message  # the message names the bad value
    common = [v for v in task.values if task.condition(v) == "common"][:2]
    cases.append(("prior", "values", ",".join(common),
                  _message(lambda: check_bins(restrict(task, common)))))  # one bin left
    for command, key, text, message in cases:
        bad = check_form(store, command, {"model": "lm", key: text})
        assert bad.errors == {key: message} and bad.argv is None, (key, text, bad.errors)
    for key, text in (("lr", "fast"), ("kl_weight", "1e")):
        error = check_form(store, "prior-finetune", {"model": "lm", key: text}).errors[key]
        assert f"{key} must be a number, got {text!r}" == error
    # held-out values are checked against the restricted task, as the CLI does
    some = [v for v in task.values if task.condition(v) != "rare"][:4]
    rare = next(v for v in task.values if task.condition(v) == "rare")
    held = check_form(store, "prior-finetune", {"model": "lm", "values": ",".join(some),
                                                "held_out": rare})
    assert rare in held.errors["held_out"] and "values" not in held.errors
    # through the page's callback: the error beside its field, no job, no run
    from ui.app import create_app
    app = create_app(home_copy)
    index = sys.modules["ui.prior.index_page"]
    with app.server.test_request_context("/"):
        out = index.launch_job(1, "prior-finetune", lm.id, "", "count", "40", "auto", "3", "",
                               "", None, None, "1,99", "-1", "-2")
    errors = dict(zip(FIELDS, out[:len(FIELDS)]))
    assert errors["lr"] == _message(lambda: _config(lr=-1.0))
    assert errors["kl_weight"] == _message(lambda: _config(kl_weight=-2.0))
    assert errors["values"] == _message(lambda: restrict(task, ["1", "99"]))
    assert "nothing was started" in out[-2] and all("\n" not in str(e) for e in out[:-1])
    assert prior_jobs(store) == [] and [r.id for r in store.list_runs()] == runs


def test_valid_values_reach_the_argv_and_the_cli_reads_them(home_copy):
    from workbench.cli import build_parser
    store = RunStore(home_copy)
    values = "1,2,3,10,20"
    ft = check_form(store, "prior-finetune", {"model": "lm", "values": values, "lr": "1e-3",
                                              "kl_weight": "0", "held_out": "3,20"})
    assert ft.ok, ft.errors
    args = build_parser().parse_args(ft.argv)
    assert (args.lr, args.kl_weight, args.values, args.held_out) == (1e-3, 0.0, values, "3,20")
    assert args.json and args.model == store.get_run("lm").id
    # the defaults, typed or blank, stay out of the argv (the CLI fills them in)
    for lr, kl in ((str(FinetuneConfig.__dataclass_fields__["lr"].default),
                    str(FinetuneConfig.__dataclass_fields__["kl_weight"].default)), ("", " ")):
        plain = check_form(store, "prior-finetune", {"model": "lm", "lr": lr, "kl_weight": kl})
        assert plain.ok and "--lr" not in plain.argv and "--kl-weight" not in plain.argv
        assert "--values" not in plain.argv
    # the analysis takes --values; lr / kl_weight are the finetune's and do not reach it
    prior = check_form(store, "prior", {"model": "lm", "values": " 1, 2,10 ,20", "lr": "-1"})
    assert prior.ok and "--lr" not in prior.argv
    assert build_parser().parse_args(prior.argv).values == "1,2,10,20"


@pytest.mark.parametrize("command, stages", [
    ("prior", ["prior of every value (20 values)", "scoring 40 prompts"]),
    ("prior-finetune", ["arm 2/5 instruction_baseline", "arm 3/5 localised (blocks [1])"]),
])
def test_a_running_job_shows_its_latest_stage(home_copy, command, stages):
    from workbench.jobs import job_status, start_job
    store = RunStore(home_copy)
    lm = store.get_run("lm")
    flag = home_copy / "release"
    script = ("import sys, time, pathlib; "
              + "".join(f"print({f'{command}: {line}'!r}, file=sys.stderr, flush=True); "
                        for line in stages)
              + f"[time.sleep(0.1) for _ in range(600) if not pathlib.Path({str(flag)!r}).exists()]")
    job = start_job(["probes", command, lm.id, "--task", "count", "--json"], store=store,
                    command=[sys.executable, "-c", script],
                    env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        text = wait_until(lambda: (lambda t: t if stages[-1] in t else None)(
            job_text(job_status(job.id, store=store))), 60, "the job's stage line")
        # the latest stage only
        assert text == f"{command} on {lm.id} (--task count) · {stages[-1]}"
    finally:
        flag.write_text("")
    wait_until(lambda: job_status(job.id, store=store).done, 60, "the job to end")
    assert stages[-1] not in job_text(job_status(job.id, store=store))  # ended: no stale stage
