"""``workbench fourier numbers --model DIR|RUN [--n 100] [--prefix TEXT] [--no-bos] [--json]``:
number-token spectra of any model (see :mod:`workbench.fourier.number_collect`).

``--model`` is a Hugging Face-format directory (booted offline with its tokenizer) or an
in-house run id / name (its final checkpoint; number ``n`` is token ``n``). The ``fourier``
parser in :mod:`workbench.fourier.cli` routes here when its RUN is ``numbers`` and ``--model``
is given.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import UserError


def load_model(ref: str):
    """``(bridge, tokenizer, description)`` for a model directory or a stored run."""
    from workbench.models import load_hf_bridge, quiet_transformers
    from workbench.runs import resolve_model_ref

    found = resolve_model_ref(ref)  # a directory, or a run's handle
    if isinstance(found, Path):
        quiet_transformers()
        bridge = load_hf_bridge(found)
        return bridge, bridge.tokenizer, str(found)
    handle = found
    bridge = handle.model()
    # a pretrained run's bridge carries its tokenizer (numbers are token strings); a synthetic
    # task's has none and token id n is the number n
    return bridge, getattr(bridge, "tokenizer", None), f"run {handle.id}"


def _fmt_shares(shares: dict, layer: int | None = None) -> str:
    vals = {t: (v if layer is None else v[layer]) for t, v in shares.items()}
    return ", ".join(f"T={t}: {float(v):.3f}" for t, v in vals.items())


def format_text(payload: dict) -> str:
    emb, lens = payload["embedding"], payload["logit_lens"]
    top = ", ".join(f"{t:g} ({m:.3g})" for t, m in emb["top_periods"])
    spelling = payload["spelling"]
    tokens = f"spelled {spelling.format(n=7)!r}" if spelling else "token id = number"
    lines = [f"{payload['model']}: numbers 0-{payload['n_numbers'] - 1} ({tokens})",
             f"embedding: top periods {top}",
             f"embedding energy share: {_fmt_shares(emb['energy_share'])}"]
    for layer in range(payload["n_layers"]):
        lines.append(f"logit lens layer {layer}: {_fmt_shares(lens['energy_share'], layer)}")
    return "\n".join(lines)


def handle_numbers(args) -> int:
    from workbench.cli import emit
    from workbench.fourier.number_collect import collect_number_spectra

    if args.n is not None and args.n < 2:
        raise UserError(f"--n must be at least 2, got {args.n}")
    model, tokenizer, description = load_model(args.model)
    result = collect_number_spectra(model, tokenizer, n_numbers=args.n or 100,
                                    prefix=args.prefix or "",
                                    prepend_bos=False if args.no_bos else None)
    payload = {"model": description, **result.to_json()}
    emit(payload, args.json, format_text(payload))
    return 0


def add_arguments(parser) -> None:
    group = parser.add_argument_group("numbers (workbench fourier numbers --model DIR|RUN)")
    group.add_argument("--model", metavar="DIR|RUN",
                       help="Hugging Face model directory or run: number-token spectra")
    group.add_argument("--n", type=int, default=None, metavar="N",
                       help="numbers 0..N-1 (default 100)")
    group.add_argument("--prefix", default=None, metavar="TEXT",
                       help="text before the number in each logit-lens prompt (default none)")
    group.add_argument("--no-bos", action="store_true",
                       help="do not start lens prompts with the BOS token")


__all__ = ["add_arguments", "format_text", "handle_numbers", "load_model"]
