"""The prior form's logic (``/prior``): checking its values with the rules ``workbench probes
prior`` / ``prior-finetune`` apply (the same functions: :func:`training.corpora.prior_tasks.
prior_task` and ``restrict``, :func:`probes.prior_scoring.check_bins`,
:func:`probes.prior_finetune.split_values` and ``check_layers``, the validation of
:class:`probes.prior_train.FinetuneConfig`, :meth:`workbench.store.RunStore.check_new_name`),
then starting the CLI command as a job. The job row in the store is what the pages follow
(status, log tail), so a reload re-attaches; the results land in the store where
:mod:`ui.prior.results` reads them. Nothing is started for an invalid form.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from probes.prior_train import FinetuneConfig
from workbench.errors import UserError
from workbench.jobs import Job, list_jobs, start_job
from workbench.store import Run, RunStore

COMMANDS = ("prior", "prior-finetune")
MODEL_RUN_KINDS = ("pretrain", "prior-finetune")  # runs whose checkpoints are HF directories
TASK_NAMES = ("count", "acronym", "count-words", "acronym-words")
FIELDS = ("model", "task", "layers", "steps", "held_out", "n", "name", "trainable", "rank",
          "values", "lr", "kl_weight")
# the form starts at the CLI's defaults (FinetuneConfig's); a blank lr / KL weight is the default
FINETUNE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)
                     if f.name in ("steps", "trainable", "rank", "lr", "kl_weight")}


@dataclass
class Checked:
    argv: list[str] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # a FIELDS key or "form"

    @property
    def ok(self) -> bool:
        return not self.errors


def model_runs(store: RunStore) -> list[Run]:
    """Completed runs whose model a prior task can prompt (Hugging Face checkpoints)."""
    return [r for r in store.list_runs() if r.kind in MODEL_RUN_KINDS
            and r.status == "completed" and store.artifacts(r.id, "checkpoint")]


def n_layers_of(store: RunStore, ref: str) -> int | None:
    """Blocks of the model at ``ref`` (run or HF directory), from its ``config.json``; None if
    that cannot be read (the command itself then checks)."""
    path = Path(ref).expanduser()
    if not path.is_dir():
        arts = [a for a in store.artifacts(store.get_run(ref).id, "checkpoint")]
        if not arts:
            return None
        path = (store.layout(arts[-1].run_id).root / arts[-1].path).parent
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for key in ("num_hidden_layers", "n_layer", "n_layers"):
        if isinstance(cfg.get(key), int):
            return cfg[key]
    return None


def _int(text, name: str, low: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserError(f"{name} must be a whole number, got {text!r}") from None
    if value < low:
        raise UserError(f"{name} must be at least {low}, got {value}")
    return value


def _float(text, name: str) -> float:
    try:
        return float(text)  # what argparse's type=float accepts
    except ValueError:
        raise UserError(f"{name} must be a number, got {text!r}") from None


def _tuning(name: str, value):
    """``value`` for :class:`FinetuneConfig` field ``name``, checked by the config itself (the
    CLI builds one from its flags); the placeholder answer values only satisfy its other rules."""
    FinetuneConfig(task="", layers=(), held_out=(), train_values=("-",), **{name: value})
    return value


def _list(text) -> list[str] | None:
    values = [v.strip() for v in str(text or "").split(",") if v.strip()]
    return values or None


def _model(store: RunStore, ref: str, command: str) -> str:
    path = Path(ref).expanduser()
    if path.is_dir():
        if command == "prior":
            raise UserError("the page shows stored results, and a directory's analysis is not "
                            f"stored: run `workbench probes prior {ref} --task T` in a shell, "
                            "or pick a run")
        if not (path / "config.json").is_file():
            raise UserError(f"{ref!r} is not a Hugging Face model directory (no config.json)")
        if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json",
                                                  "tokenizer.model")):
            raise UserError(f"model directory {ref!r} has no tokenizer (tokenizer.json): prior "
                            "tasks are text prompts")
        return str(path.resolve())
    run = store.get_run(ref)  # UserError names a missing run
    if run.kind not in MODEL_RUN_KINDS or not store.artifacts(run.id, "checkpoint"):
        raise UserError(f"run {ref!r} ({run.kind}) has no language-model checkpoint: use a "
                        "pretrain or prior-finetune run")
    return run.id


def check_form(store: RunStore, command: str, values: dict) -> Checked:
    """The ``workbench probes COMMAND`` argv for the form ``values`` (keys :data:`FIELDS`), or
    the errors by field, each one line naming the bad value."""
    from probes.prior_finetune import check_layers, parse_layers, split_values
    from probes.prior_scoring import check_bins
    from training.corpora.prior_tasks import prior_task, restrict
    out = Checked()
    assert command in COMMANDS, command
    v = {k: ("" if values.get(k) is None else str(values.get(k)).strip()) for k in FIELDS}

    def check(key, fn):
        try:
            return fn()
        except UserError as exc:
            out.errors[key] = str(exc)

    model = check("model", lambda: _model(store, v["model"], command) if v["model"] else
                  _raise("choose a model run (or give a Hugging Face directory)"))
    task = check("task", lambda: prior_task(v["task"] or "count"))
    values_list = _list(v["values"])
    if task is not None and values_list:  # the CLI's --values: restrict, then the bins
        task = check("values", lambda: restrict(task, values_list))
    if task is not None:
        check("values" if values_list else "task", lambda: check_bins(task))
    n = check("n", lambda: _int(v["n"] or 600, "prompts", 10))
    argv = ["probes", command, model or "", "--task", task.name if task else "",
            "--n", str(n)]
    if values_list:
        argv += ["--values", ",".join(values_list)]
    if command == "prior-finetune":
        steps = check("steps", lambda: _int(v["steps"] or FINETUNE_DEFAULTS["steps"], "steps", 1))
        argv += ["--steps", str(steps), "--layers", v["layers"] or "auto"]
        trainable = check("trainable", lambda: _tuning(
            "trainable", v["trainable"] or FINETUNE_DEFAULTS["trainable"]))
        if trainable is not None and trainable != FINETUNE_DEFAULTS["trainable"]:
            argv += ["--trainable", trainable]
        for key, flag in (("lr", "--lr"), ("kl_weight", "--kl-weight")):
            if v[key]:
                value = check(key, lambda key=key: _tuning(key, _float(v[key], key)))
                if value is not None and value != FINETUNE_DEFAULTS[key]:
                    argv += [flag, str(value)]
        if trainable == "lowrank":
            rank = check("rank", lambda: _int(v["rank"] or FINETUNE_DEFAULTS["rank"], "rank", 1))
            argv += ["--rank", str(rank)]
        if (v["layers"] or "auto") != "auto":
            layers = check("layers", lambda: parse_layers(v["layers"]))
            n_layers = n_layers_of(store, model) if model and layers else None
            if n_layers is not None:
                check("layers", lambda: check_layers(layers, n_layers))
        if task is not None:
            check("held_out", lambda: split_values(task, _list(v["held_out"])))
        if v["held_out"]:
            argv += ["--held-out", ",".join(_list(v["held_out"]))]
        if v["name"]:
            check("name", lambda: store.check_new_name(v["name"]))
            argv += ["--name", v["name"]]
    if not out.errors:
        out.argv = argv + ["--json"]
    return out


def _raise(message: str):
    raise UserError(message)


def launch(store: RunStore, argv: list[str], env: dict | None = None) -> Job:
    """Start a checked ``workbench probes prior|prior-finetune`` argv as a job."""
    assert argv[:1] == ["probes"] and argv[1] in COMMANDS, argv
    return start_job(list(argv), store=store, env=env)


def prior_jobs(store: RunStore, model: str | None = None) -> list[Job]:
    """The prior jobs in the store, newest first; with ``model`` (a run id), those on it."""
    out = []
    for job in list_jobs(store=store):
        argv = job.argv
        if len(argv) < 3 or argv[0] != "probes" or argv[1] not in COMMANDS:
            continue
        if model is not None and argv[2] != model:
            continue
        out.append(job)
    return out


def job_text(job: Job) -> str:
    """``"prior-finetune on r-1a2b… (--task count …)"``; while it runs, its latest stage (``arm 3/5
    localised (blocks [3])``, ``scoring 600 prompts``); once it ended badly, the last line of its
    log (the error)."""
    text = f"{job.argv[1]} on {job.argv[2]} ({' '.join(job.argv[3:-1])})"
    if not job.done:  # the command's latest stage line (probes/prior_cli.py writes them)
        stages = [ln for ln in job.log_tail(20) if ln.startswith(f"{job.argv[1]}: ")]
        if stages:
            text += f" · {stages[-1].split(': ', 1)[1]}"
    elif job.status != "completed":
        # the supervisor's own "[job …] failed (exit code 2)" comes after the command's error
        tail = [ln for ln in job.log_tail(8) if ln.strip() and not ln.startswith("[job ")]
        text += f" · {job.status}" + (f": {tail[-1]}" if tail else "")
    return text
