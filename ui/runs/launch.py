"""The New-run form's logic (``/new``): which fields to show, validation with the CLI's own
rules (:func:`training.api.build_config`), and launching a validated config as a job.

Invalid input is reported per field and nothing is started: a run row is created, with its
whole resolved config, only once that config has been built successfully
(:func:`training.api.prepare_run`), and the job then trains that row from its stored config
(``workbench train --run-id ID``), so the page can link to the run at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from training.api import build_config, check_settings, list_tasks, prepare_run
from training.presets import presets_for
from workbench.errors import UserError
from workbench.jobs import Job, start_job
from workbench.settings import parse_settings
from workbench.store import Run, RunStore, validate_name

MODEL_FIELDS = ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "act_fn",
                "normalization_type")
TRAIN_FIELDS = ("steps", "lr", "weight_decay", "batch_size", "warmup_steps", "schedule",
                "eval_every", "checkpoint_every", "seed")
EXTRA = "extra"  # the free-form "key=value per line" field
NAME = "name"


@dataclass
class FormField:
    key: str  # "section.field", the --set key
    label: str
    value: str  # the preset's value, as the user would type it


@dataclass
class Validation:
    overrides: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field key (or "form") -> message
    config: object = None

    @property
    def ok(self) -> bool:
        return not self.errors


def task_options() -> list[dict]:
    return [{"label": t["name"], "value": t["name"], "title": t["description"]}
            for t in list_tasks()]


def preset_options(task: str) -> list[str]:
    return sorted(presets_for(task))


def as_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    return str(value)


@functools.lru_cache(maxsize=64)
def _resolved(task: str, preset: str) -> tuple[tuple[str, str], ...]:
    config, _ = build_config(task, preset=preset)
    d = config.to_dict()
    items = [(f"task.{k}", as_text(v)) for k, v in d["task_params"].items()]
    items += [(f"model.{k}", as_text(d["model"][k])) for k in MODEL_FIELDS if k in d["model"]]
    items += [(f"train.{k}", as_text(d["train"][k])) for k in TRAIN_FIELDS if k in d["train"]]
    return tuple(items)


def form_fields(task: str, preset: str) -> list[FormField]:
    """The editable hyperparameters of ``task`` with ``preset``'s values filled in."""
    return [FormField(key=k, label=k.split(".", 1)[1], value=v) for k, v in _resolved(task, preset)]


def validate(task: str | None, preset: str | None, values: dict[str, str | None],
             extra: str | None = None, name: str | None = None,
             store: RunStore | None = None) -> Validation:
    """Check a form exactly as ``workbench train`` would check the same ``--set`` values.

    ``values`` maps field keys to the text in the form; only values that differ from the preset
    become overrides. Errors are keyed by the field they belong to (``"form"`` for the rest).
    """
    result = Validation()
    if not task:
        result.errors["form"] = "choose a task"
        return result
    try:
        defaults = dict(_resolved(task, preset or "default"))
    except UserError as exc:
        result.errors["form"] = str(exc)
        return result
    for key, text in values.items():
        text = "" if text is None else str(text).strip()
        if text == "":
            result.errors[key] = f"{key.split('.', 1)[1]} needs a value"
        elif text != defaults.get(key):
            result.overrides[key] = text
    try:
        result.overrides.update(parse_settings(extra))
    except UserError as exc:
        result.errors[EXTRA] = str(exc)
    if name:
        try:
            if store is not None:
                store.check_new_name(name)
            else:
                validate_name(name)
        except UserError as exc:
            result.errors[NAME] = str(exc)
    if result.errors:
        return result
    try:
        result.config, _ = build_config(task, preset=preset or "default",
                                        overrides=result.overrides)
    except UserError as exc:
        result.errors.update(_blame(task, preset or "default", result.overrides, str(exc)))
    return result


def _blame(task: str, preset: str, overrides: dict[str, str], message: str) -> dict[str, str]:
    """Attribute a failed build to the field(s) that fail on their own (else to the form);
    each is checked without generating the task's data."""
    errors = {}
    for key, value in overrides.items():
        try:
            check_settings(task, preset=preset, overrides={key: value})
        except UserError as exc:
            form_key = key if key.startswith(("task.", "model.", "train.")) else EXTRA
            errors.setdefault(form_key, str(exc))
    return errors or {"form": message}


def launch_training(store: RunStore, task: str, preset: str, overrides: dict[str, str],
                    name: str | None = None, env: dict[str, str] | None = None) -> tuple[Run, Job]:
    """Create the run with its resolved config and start ``workbench train --run-id`` on it."""
    run_id = prepare_run(task, preset=preset, overrides=overrides, name=name or None,
                         store=store)
    job = start_job(["train", "--run-id", run_id, "--no-progress", "--json"], run_id=run_id,
                    store=store, env=env)
    return store.get_run(run_id), job
