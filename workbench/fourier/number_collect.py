"""Collecting number-token spectra from any model: embeddings and the logit lens per layer.

Method (Zhou et al. 2024, "Pre-trained large language models use Fourier features to compute
addition"): find the single-token ids of the numbers ``0 .. N-1``, stack their embedding rows
``W_E[ids]`` into ``[N, d_model]`` and take the Fourier transform along the number axis
(:func:`workbench.fourier.number_tokens.number_spectrum`). For the logit lens, run one prompt
per number that ends in that number's token, read the residual stream at the last position
after every layer, pass it through the final norm and the unembedding restricted to the number
tokens (``logits [layers, N, N]``: layer, prompt number, output number) and take the spectrum
along the prompt-number axis (:func:`~workbench.fourier.number_tokens.logit_lens_spectrum`).
Pretrained LMs show energy at periods 2, 2.5, 5 and 10.

The model is a TransformerLens 4 ``TransformerBridge``: a Hugging Face directory booted with
:func:`workbench.models.load_hf_bridge` (pass its tokenizer) or an in-house run's
``load_run(ref).model()`` (no tokenizer: number ``n`` is token id ``n``, as in the modular
tasks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workbench.errors import UserError
from workbench.fourier.number_tokens import (DEFAULT_PERIODS, NumberSpectrum, logit_lens_spectrum,
                                             number_spectrum)
from workbench.weights import model_weights

SPELLINGS = ("{n}", " {n}")  # "7" and " 7": BPE vocabularies often hold only one of them
_BATCH = 64  # prompts per forward pass


@dataclass(frozen=True, kw_only=True)
class NumberSpectra:
    """Spectra of the number tokens ``0 .. n_numbers-1`` of one model."""

    n_numbers: int
    spelling: str | None  # the format that made every number one token; None: ids are numbers
    token_ids: tuple[int, ...]  # [N]
    prompt_prefix: tuple[int, ...]  # token ids before the number token in every lens prompt
    embedding: NumberSpectrum  # magnitude [K]
    logit_lens: NumberSpectrum  # magnitude [layers, K]
    lens_logits: torch.Tensor  # [layers, N, N] (layer, prompt number, output number)

    @property
    def n_layers(self) -> int:
        return int(self.logit_lens.magnitude.shape[0])

    def to_json(self, periods: Sequence[float] = DEFAULT_PERIODS) -> dict:
        def face(spec: NumberSpectrum) -> dict:
            return {**spec.to_json(periods),
                    "energy_share": {str(t): v.tolist()
                                     for t, v in spec.energy_share(periods).items()}}

        return {"n_numbers": self.n_numbers, "spelling": self.spelling,
                "token_ids": list(self.token_ids), "prompt_prefix": list(self.prompt_prefix),
                "n_layers": self.n_layers, "embedding": face(self.embedding),
                "logit_lens": face(self.logit_lens)}


def _ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def _single_token(tokenizer, text: str) -> int | None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
        return None
    return int(ids[0])


def _number_token_ids(tokenizer, n_numbers: int,
                     vocab_size: int | None = None) -> tuple[str | None, list[int]]:
    """``(spelling, ids)`` of the numbers ``0 .. n_numbers-1``, all in one spelling.

    Without a tokenizer number ``n`` is token ``n`` (in-house tasks), checked against
    ``vocab_size``. Raises a UserError naming the numbers that are not single tokens.
    """
    if n_numbers < 2:
        raise UserError(f"need at least 2 numbers, got n = {n_numbers}")
    if tokenizer is None:
        if vocab_size is not None and n_numbers > vocab_size:
            raise UserError(f"not tokens of this model (its output vocabulary has {vocab_size} "
                            f"tokens): numbers {_ranges(range(vocab_size, n_numbers))}")
        return None, list(range(n_numbers))
    best: tuple[list[int], str] | None = None
    for spelling in SPELLINGS:
        ids = [_single_token(tokenizer, spelling.format(n=n)) for n in range(n_numbers)]
        missing = [n for n, i in enumerate(ids) if i is None]
        if not missing:
            if vocab_size is not None and max(ids) >= vocab_size:
                missing = [n for n, i in enumerate(ids) if i >= vocab_size]
            else:
                return spelling, ids  # type: ignore[return-value]
        if best is None or len(missing) < len(best[0]):
            best = (missing, spelling)
    missing, spelling = best
    raise UserError(f"not single tokens of this model: numbers {_ranges(missing)} (best of the "
                    f"spellings '7' and ' 7': {spelling.format(n=7)!r}); use a smaller --n")


def _prefix_ids(tokenizer, prefix: str | Sequence[int], prepend_bos: bool | None) -> list[int]:
    if isinstance(prefix, str):
        if prefix and tokenizer is None:
            raise UserError("a text prompt prefix needs a model with a tokenizer; pass token "
                            "ids instead")
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    else:
        ids = [int(i) for i in prefix]
    bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
    if prepend_bos is None:
        prepend_bos = bos is not None
    if prepend_bos:
        if bos is None:
            raise UserError("prepend_bos is set but the model has no BOS token")
        ids = [int(bos)] + list(ids)
    return list(ids)


@torch.no_grad()
def _lens_logits(model, prompts: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Final norm + unembedding of the last position's residual after each layer, restricted
    to the number tokens: ``[layers, N, N]``."""
    n_layers = model.cfg.n_layers
    names = [f"blocks.{i}.hook_resid_post" for i in range(n_layers)]
    weights = model_weights(model)
    w_u = weights.W_U[:, ids]  # [d_model, N]
    b_u = weights.b_U[ids] if weights.b_U is not None else None  # [N]
    chunks = []
    for start in range(0, prompts.shape[0], _BATCH):
        batch = prompts[start:start + _BATCH]  # [b, pos]
        _, cache = model.run_with_cache(batch, names_filter=names)
        resid = torch.stack([cache[n][:, -1] for n in names])  # [layers, b, d_model]
        # The logit lens: what the model would predict if it stopped after this layer.
        logits = model.ln_final(resid) @ w_u  # [layers, b, N]
        if b_u is not None:
            logits = logits + b_u
        chunks.append(logits.float().cpu())
    return torch.cat(chunks, dim=1)  # [layers, N, N]


def collect_number_spectra(model, tokenizer=None, *, n_numbers: int = 100,
                           prefix: str | Sequence[int] = "",
                           prepend_bos: bool | None = None) -> NumberSpectra:
    """Embedding and per-layer logit-lens spectra of the numbers ``0 .. n_numbers-1``.

    ``model``: a ``TransformerBridge``; ``tokenizer``: its Hugging Face tokenizer, or None for
    in-house models whose token ids are the numbers. Each lens prompt is ``[BOS] + prefix +
    [number]``; ``prepend_bos=None`` adds BOS where the tokenizer has one.
    """
    weights = model_weights(model)
    vocab_out = int(weights.W_U.shape[-1])
    spelling, ids = _number_token_ids(tokenizer, n_numbers, vocab_size=vocab_out)
    if max(ids) >= weights.W_E.shape[0]:
        raise UserError(f"number token ids reach {max(ids)} but the embedding has "
                        f"{weights.W_E.shape[0]} rows")
    prefix_ids = _prefix_ids(tokenizer, prefix, prepend_bos)
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx is not None and len(prefix_ids) + 1 > n_ctx:
        raise UserError(f"the lens prompt has {len(prefix_ids) + 1} tokens but the model's "
                        f"context is {n_ctx}")
    device = weights.W_E.device
    id_tensor = torch.tensor(ids, device=device)  # [N]
    with torch.no_grad():
        emb = weights.W_E[id_tensor].float().cpu()  # [N, d_model]
    prompts = torch.cat([torch.tensor(prefix_ids, dtype=torch.long, device=device)
                         .expand(n_numbers, -1), id_tensor[:, None]], dim=1)  # [N, pos]
    logits = _lens_logits(model, prompts, id_tensor)  # [layers, N, N]
    return NumberSpectra(n_numbers=n_numbers, spelling=spelling, token_ids=tuple(ids),
                         prompt_prefix=tuple(prefix_ids), embedding=number_spectrum(emb),
                         logit_lens=logit_lens_spectrum(logits), lens_logits=logits)


__all__ = ["NumberSpectra", "collect_number_spectra"]
