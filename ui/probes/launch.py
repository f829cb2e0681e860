"""The knowledge form's logic (``/probes``): validation with the CLI's own checks
(:class:`probes.knowledge.KnowledgeConfig` and the pretraining config's check of the model
overrides, as ``workbench probes knowledge run`` does before writing anything), launching that
command as a job, and reading the jobs back (so the page re-attaches after a reload): each job's
argv gives its config, and its config the pretrain run it trains or reuses."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from probes.knowledge import PROTOCOLS, KnowledgeConfig, check_pretraining
from workbench.errors import UserError
from workbench.jobs import Job, list_jobs, start_job
from workbench.store import RunStore

COMMAND = ["probes", "knowledge", "run"]
# form field -> its type; the CLI flag is the name with dashes (--finetune-steps)
FIELDS = {"people": int, "augmentation": str, "protocol": str, "steps": int,
          "finetune_steps": int, "probe_steps": int, "series_checkpoints": int,
          "qa_fraction": float, "vocab_size": int, "batch_size": int, "lr": float, "seed": int,
          "pool_size": int, "model": dict}
# fields whose blank value is the CLI's unset flag (None: derived from other fields)
OPTIONAL = {"pool_size"}
# the form starts at the CLI's defaults; "model" holds overrides of the default model, as
# the CLI's --model does; a blank pool size follows the number of people, as on the CLI
DEFAULT_MODEL = dict(KnowledgeConfig().model)
DEFAULTS = {**{k: v for k, v in dataclasses.asdict(KnowledgeConfig()).items() if k in FIELDS},
            "model": {}, "pool_size": None}
PROTOCOL_OPTIONS = list(PROTOCOLS)


@dataclass
class Checked:
    config: KnowledgeConfig | None = None
    name: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # a FIELDS key, "name" or "form"

    @property
    def ok(self) -> bool:
        return not self.errors


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse(name: str, text) -> object:
    """A form (or job argv) value as the CLI reads its flag; ``model`` overrides the
    default model."""
    kind, text = FIELDS[name], "" if text is None else str(text).strip()
    if kind is dict:
        if not text:
            return dict(DEFAULT_MODEL)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"--model is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UserError(f"--model must be a JSON object, got {text!r}")
        return {**DEFAULT_MODEL, **value}
    if kind is str:
        return text
    if not text and name in OPTIONAL:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise UserError(f"{flag(name)} must be {what}, got {text!r}") from None


def _field_of(message: str) -> str:
    """The form field a CLI message names (``--finetune-steps must …`` -> finetune_steps)."""
    head = message.split(" ", 1)[0]
    name = head.removeprefix("--").replace("-", "_")
    if head.startswith("--") and name in FIELDS:
        return name
    return "augmentation" if "augmentation" in message else "form"


def check_form(values: dict, name: str | None, store: RunStore) -> Checked:
    """Check the form as the CLI checks its flags; ``errors`` name the bad values (a field
    missing from ``values`` takes the form's default)."""
    result = Checked()
    parsed = {}
    for key in FIELDS:
        try:
            parsed[key] = _parse(key, values.get(key, DEFAULTS.get(key)))
        except UserError as exc:
            result.errors[key] = str(exc)
    name = (name or "").strip() or None
    if name:
        try:
            store.check_new_name(name)
        except UserError as exc:
            result.errors["name"] = str(exc)
    if result.errors:
        return result
    try:
        cfg = KnowledgeConfig(**parsed)
    except UserError as exc:
        result.errors[_field_of(str(exc))] = str(exc)
        return result
    try:
        check_pretraining(cfg)
    except UserError as exc:
        result.errors["model"] = str(exc)
        return result
    result.config, result.name = cfg, name
    return result


def job_argv(cfg: KnowledgeConfig, name: str | None = None) -> list[str]:
    """``probes knowledge run --people N …`` for ``cfg`` (what the job runs)."""
    argv = list(COMMAND)
    for key in FIELDS:
        value = getattr(cfg, key)
        if key == "model":
            if value:
                argv += [flag(key), json.dumps(value)]
            continue
        argv += [flag(key), str(value)]
    if name:
        argv += ["--name", name]
    return argv + ["--json"]


def config_of_argv(argv: list[str]) -> KnowledgeConfig | None:
    """The config a knowledge job runs (inverse of :func:`job_argv`; None if not one)."""
    if list(argv[:3]) != COMMAND:
        return None
    values, rest = {}, list(argv[3:])
    while rest:
        head = rest.pop(0)
        key = head.removeprefix("--").replace("-", "_")
        if key in FIELDS and rest:
            values[key] = rest.pop(0)
        elif head == "--name" and rest:
            rest.pop(0)
    try:
        return KnowledgeConfig(**{k: _parse(k, v) for k, v in values.items()})
    except UserError:
        return None


def launch_knowledge(store: RunStore, cfg: KnowledgeConfig, name: str | None = None,
                     env: dict | None = None) -> Job:
    """Start ``workbench probes knowledge run`` for a checked config as a job (the job makes,
    or reuses, the pretrain run; see :func:`pretrain_run_of`)."""
    check_pretraining(cfg)
    return start_job(job_argv(cfg, name), store=store, env=env)


def knowledge_jobs(store: RunStore, limit: int = 5) -> list[Job]:
    """The newest knowledge jobs of the store."""
    return [j for j in list_jobs(store=store, limit=100) if list(j.argv[:3]) == COMMAND][:limit]
