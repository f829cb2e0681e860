"""The model a circuit search runs on: an in-house run from the store or a Hugging Face-format
directory, with the vocabularies that turn task tokens into ids.

In-house runs have separate input and output vocabularies (class indices); Hugging Face models
share one token vocabulary for both. A directory whose weights would not fit in memory is
refused before loading (``UserError``), not after the machine starts swapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UserError
from workbench.memory import available_memory_bytes


# run kinds holding a model: trained on a synthetic task, Transformer Programs compiled to a
# transformer, language models pretrained (their checkpoints are Hugging Face directories) and
# their prior-localisation finetunes
MODEL_KINDS = ("train", "compiled", "pretrain", "prior-finetune")


@dataclass
class Target:
    bridge: object
    name: str
    kind: str  # "run" or "hf"
    input_vocab: dict[str, int]
    output_vocab: dict[str, int]
    tokenizer: object | None = None
    run: object | None = None  # workbench.runs.RunHandle for in-house runs

    @property
    def task(self) -> str | None:
        return None if self.run is None else self.run.config.get("task")


def check_fits(path: Path, factor: float = 3.0) -> None:
    """Refuse a model whose weight files times ``factor`` (bridge + masked copy + activations)
    exceed available memory."""
    size = sum(p.stat().st_size for p in path.iterdir()
               if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    need, have = size * factor, available_memory_bytes()
    if need > have:
        raise UserError(f"model {str(path)!r} needs about {need / 2**30:.1f} GiB "
                        f"({size / 2**30:.1f} GiB of weights) but only {have / 2**30:.1f} GiB "
                        "of memory is available")


def load_target(ref: str, store=None, device: str | None = None) -> Target:
    """Resolve ``ref``: an existing directory (Hugging Face format) or a run id/name."""
    from workbench.runs import resolve_model_ref
    found = resolve_model_ref(ref, store)  # a directory, or a run's handle
    if isinstance(found, Path):
        path = found
        from workbench.models import load_hf_bridge, quiet_transformers
        check_fits(path)
        quiet_transformers()
        bridge = load_hf_bridge(path, device=device)
        tok = getattr(bridge, "tokenizer", None)
        vocab = dict(tok.get_vocab()) if tok is not None else {}
        return Target(bridge=bridge, name=str(path), kind="hf", input_vocab=vocab,
                      output_vocab=vocab, tokenizer=tok)
    run = found
    if run.run.kind not in MODEL_KINDS or "model" not in run.config:
        raise UserError(f"run {ref!r} is a {run.run.kind} run, not a model (a trained run, or "
                        f"a Transformer Program compiled with `workbench programs compile`)")
    bridge = run.model(device=device)
    tok = getattr(bridge, "tokenizer", None)
    if tok is not None:  # a Hugging Face-format run: one token vocabulary, as for a directory
        vocab = dict(tok.get_vocab())
        return Target(bridge=bridge, name=run.id, kind="run", input_vocab=vocab,
                      output_vocab=vocab, tokenizer=tok, run=run)
    vocab = run.vocab()
    return Target(bridge=bridge, name=run.id, kind="run",
                  input_vocab={t: i for i, t in enumerate(vocab.get("input_vocab", []))},
                  output_vocab={t: i for i, t in enumerate(vocab.get("output_vocab", []))},
                  run=run)


def from_bridge(bridge, name: str = "model", input_vocab: dict | None = None,
                output_vocab: dict | None = None) -> Target:
    """Wrap a bridge built in Python (tests, compiled programs) as a target."""
    vin = input_vocab or {str(i): i for i in range(bridge.cfg.d_vocab)}
    vout = output_vocab or {str(i): i for i in range(bridge.cfg.d_vocab_out)}
    return Target(bridge=bridge, name=name, kind="python", input_vocab=vin, output_vocab=vout)
