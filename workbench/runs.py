"""Loading a stored run for analysis: config, metric history, checkpoints and the model as a
``TransformerBridge`` (the Python face of ``workbench runs show``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.checkpoint import load_checkpoint
from workbench.errors import UserError
from workbench.models import ModelConfig, load_hf_bridge, to_bridge
from workbench.store import Run, RunStore


@dataclass
class RunHandle:
    """A run opened from the store. ``model()`` boots the checkpoint as a TransformerBridge."""

    store: RunStore
    run: Run

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def config(self) -> dict:
        return self.run.config

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def directory(self) -> Path:
        return self.store.run_dir(self.run.id)

    @property
    def task_params(self) -> dict:
        """The run's task parameters, every one resolved (defaults included)."""
        return dict(self.run.config.get("task_params") or {})

    @property
    def task_facts(self) -> dict:
        """Hidden rules of the run's data (e.g. sparse parity's ``support``)."""
        return dict(self.run.config.get("task_facts") or {})

    def split(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The encoded data the run trained on (``train_x``, ``train_y``, ``test_x``,
        ``test_y``) and its vocabularies, as stored with the run (UserError if it has none)."""
        if not any(a.kind == "split" for a in self.store.artifacts(self.run.id, "split")):
            raise UserError(f"run {self.run.id} stores no data split (made before runs kept "
                            "one, and not migrated: open its store with the training package "
                            "installed)")
        return load_checkpoint(self.store.layout(self.run.id).split)

    def artifact_path(self, kind: str) -> Path | None:
        """The file of the run's newest ``kind`` artifact (``None`` if it has none)."""
        arts = self.store.artifacts(self.run.id, kind)
        return self.directory / arts[-1].path if arts else None

    def metrics(self) -> dict[str, list[tuple[int, float]]]:
        return self.store.metric_history(self.run.id)

    def checkpoints(self) -> list[int]:
        return sorted(a.step for a in self.store.artifacts(self.run.id, "checkpoint")
                      if a.step is not None)

    def checkpoint_path(self, step: int | str = "final") -> Path:
        steps = self.checkpoints()
        if not steps:
            raise UserError(f"run {self.run.id} has no checkpoints")
        if step in ("final", "latest", None):
            step = steps[-1]
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise UserError(f"checkpoint must be a step number or 'final', got {step!r}") from None
        if step not in steps:
            raise UserError(f"run {self.run.id} has no checkpoint at step {step}; "
                            f"steps: {steps}")
        art = next(a for a in self.store.artifacts(self.run.id, "checkpoint") if a.step == step)
        return self.directory / art.path

    def state_dict(self, step: int | str = "final") -> tuple[dict[str, torch.Tensor], dict]:
        """Weights (native layout) and checkpoint metadata at ``step``."""
        return load_checkpoint(self.checkpoint_path(step))

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.run.config["model"])

    def model(self, step: int | str = "final", device: str | None = None):
        """The checkpoint as a ``TransformerBridge`` ready for ``run_with_cache``."""
        path = self.checkpoint_path(step)
        # a pretrain (or prior-finetune) checkpoint is a Hugging Face model directory
        if self.run.kind == "pretrain" or (path.parent / "config.json").is_file():
            return load_hf_bridge(path.parent, device=device)
        state, meta = self.state_dict(step)
        return to_bridge(ModelConfig.from_dict(meta["model"]), state, device=device)

    def vocab(self) -> dict:
        _, meta = self.state_dict("final")
        return meta.get("vocab", {})


def load_run(ref: str, store: RunStore | None = None) -> RunHandle:
    """Open run ``ref`` (id or name) from the store (default ``$WORKBENCH_HOME``)."""
    store = store or RunStore()
    return RunHandle(store, store.get_run(ref))


def resolve_model_ref(ref: str, store: RunStore | None = None, *,
                      flag: str = "--model") -> Path | RunHandle:
    """What a model argument names: a Hugging Face-format directory (its path) or a stored run
    (its handle); ``UserError`` for a file or for neither. Callers check the run's kind."""
    path = Path(str(ref)).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise UserError(f"{flag} {ref!r} is a file; give a model directory or a run")
    store = store or RunStore()
    try:
        return load_run(str(ref), store)
    except UserError:
        raise UserError(f"unknown model {ref!r}: not a model directory and no run of that id "
                        f"or name in {store.home}") from None


def list_runs(store: RunStore | None = None, kind: str | None = None) -> list[Run]:
    return (store or RunStore()).list_runs(kind=kind)


def delete_run(ref: str, store: RunStore | None = None) -> Run:
    return (store or RunStore()).delete_run(ref)
