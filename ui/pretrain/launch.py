"""The pretraining form's logic (``/pretrain``): validation with the CLI's own checks
(:func:`training.lm.api.validate_pretrain`) and launching ``workbench pretrain`` as a job on a
run created at once, so the page can link to it. Nothing is created for an invalid form."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.lm.api import KIND, validate_pretrain
from training.lm.config import PRESETS
from workbench.errors import UserError
from workbench.jobs import Job, start_job
from workbench.store import Run, RunStore


@dataclass
class Checked:
    config: dict | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # "data", "extra", "name", "form"

    @property
    def ok(self) -> bool:
        return not self.errors


def preset_options() -> list[str]:
    return list(PRESETS)


def parse_overrides(text: str | None) -> dict[str, str]:
    """``"lr=1e-3\\nsteps=50"`` -> ``{"lr": "1e-3", "steps": "50"}`` (``#`` lines ignored)."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise UserError(f"expected key=value, got {line!r}")
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def check_form(data: str | None, preset: str | None, extra: str | None,
               name: str | None, store: RunStore) -> Checked:
    result = Checked()
    if not (data or "").strip():
        result.errors["data"] = "give a data directory made by `workbench data prepare`"
    try:
        result.overrides = parse_overrides(extra)
    except UserError as exc:
        result.errors["extra"] = str(exc)
    if name:
        try:
            store.check_new_name(name)
        except UserError as exc:
            result.errors["name"] = str(exc)
    if result.errors:
        return result
    try:
        result.config = validate_pretrain(data.strip(), preset=preset or "tiny",
                                          overrides=result.overrides)
    except UserError as exc:
        key = "data" if "data" in str(exc).split(":")[0] or "--data" in str(exc) else "form"
        result.errors[key] = str(exc)
    return result


def launch_pretrain(store: RunStore, data: str, preset: str, overrides: dict[str, str],
                    name: str | None = None, env: dict | None = None) -> tuple[Run, Job]:
    """Create the run for a validated form and start ``workbench pretrain --run-id`` on it."""
    config = validate_pretrain(data, preset=preset, overrides=overrides)
    run = store.create_run(kind=KIND, task="lm", config=config, name=name or None)
    argv = ["pretrain", "--data", data, "--preset", preset]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={value}"]
    argv += ["--run-id", run.id, "--no-progress", "--json"]
    return run, start_job(argv, run_id=run.id, store=store, env=env)
