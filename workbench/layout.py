"""Where a run's files live: the one description of a run directory's layout.

Every package asks here for a path instead of joining names onto ``run_dir`` itself, so the
layout (and the format strings of the files it names) has a single owner::

    <home>/runs/<run id>/
        config.json                   the run's resolved config (also in the store row)
        vocab.json                    a trained run's vocabularies
        data.jsonl                    the copy of a custom task's data
        split.safetensors             the encoded train/test inputs and labels (train runs)
        checkpoints/step_%08d.safetensors   the weight series (trained and compiled runs)
        checkpoints/step_%08d/        a pretrain run's series: Hugging Face model directories
        resume.safetensors            optimiser state of the newest checkpoint
        program.safetensors           a Transformer Program run's relaxed model and inputs
        examples.safetensors          a compiled run's inputs and the program's outputs
        ground_truth.json             a compiled run's true circuit (GROUND_TRUTH_FORMAT)
        circuit.{json,graphml,dot,masks.safetensors}   a circuits run's result
        job-<job id>.log              output of the jobs that drove the run
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GROUND_TRUTH_FORMAT = "workbench-ground-truth/1"
CIRCUIT_FILES = ("json", "graphml", "dot", "masks")
_STEP_RE = re.compile(r"step_(\d+)\.safetensors$")


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory (nothing is created on disk)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.json"

    @property
    def data_copy(self) -> Path:
        return self.root / "data.jsonl"

    @property
    def split(self) -> Path:
        return self.root / "split.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{int(step):08d}.safetensors"

    def model_dir(self, step: int) -> Path:
        """A pretrain run's checkpoint at ``step``: a Hugging Face model directory."""
        return self.checkpoints / f"step_{int(step):08d}"

    def checkpoint_files(self) -> dict[int, Path]:
        """Checkpoint files on disk by step (including any without an artifact row)."""
        out = {}
        for f in self.checkpoints.glob("*.safetensors"):
            m = _STEP_RE.search(f.name)
            if m:
                out[int(m.group(1))] = f
        return out

    @property
    def resume_state(self) -> Path:
        return self.root / "resume.safetensors"

    @property
    def program(self) -> Path:
        return self.root / "program.safetensors"

    @property
    def examples(self) -> Path:
        return self.root / "examples.safetensors"

    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth.json"

    def circuit(self, kind: str = "json", directory: Path | None = None) -> Path:
        """A circuit file (``kind`` in :data:`CIRCUIT_FILES`), in ``directory`` if given."""
        assert kind in CIRCUIT_FILES, kind
        suffix = "masks.safetensors" if kind == "masks" else kind
        return (directory or self.root) / f"circuit.{suffix}"

    @property
    def prior_finetune(self) -> Path:
        """A prior-finetune run's evaluations (probes.prior_finetune)."""
        return self.root / "prior_finetune.json"

    def job_log(self, job_id: str) -> Path:
        return self.root / f"job-{job_id}.log"
