"""Walsh analysis of a sparse-parity transformer: the output function's spectrum, per-neuron
spectra, the parity set from the weights alone, and hidden progress across checkpoints.

Method: Barak et al. (2022), "Hidden progress in deep learning"; Edelman et al. (2023); the
Walsh measures are in :mod:`workbench.fourier.walsh`. The model reads ``[x_0 .. x_{n-1}, =]``
(bit ``i`` at position ``i``) and predicts the parity at the last position.

- Output spectrum: the network function ``f(x) = logit("1") - logit("0")`` at the last
  position over every input (exact for ``n <= 16``, else sampled up to degree ``k``).
- Neuron spectra: each MLP neuron's activation at the last position as a function of ``x``;
  we report, per neuron, the share of its non-constant Walsh power on non-empty subsets of the
  detected parity set; likewise for the spectrum of its input weights alone, the neuron
  ``ReLU(w_eff . z + b_in)`` on ``z = 1 - 2x``
  (:func:`~workbench.fourier.walsh.neuron_walsh_spectra` on the effective weights below).
- Parity set from the weights alone (ours, no inputs are run): in layer 0 the residual at
  position ``i`` depends only on the bit there, and the query at "=" is fixed, so every
  attention score, value and output vector per (position, bit) is read off the weights.
  Flipping bit ``i`` moves the attention output by
  ``delta_i = sum_h a_ih(1) o_ih(1) - a_ih(0) o_ih(0)`` (``a``: softmax weights normalised by
  the average partition function, ``o``: the head's output vector); through the second
  LayerNorm (its affine part, linearised) and ``W_in`` this gives an effective first-layer
  weight matrix ``[d_mlp, n]``. Its ``k`` largest column norms are the detected set
  (:func:`~workbench.fourier.walsh.detect_parity_set`) and hidden progress is its squared mass
  on the true support (:func:`~workbench.fourier.walsh.hidden_progress`).

The true support comes with the run (its stored task fact ``support``): the analysis restates
nothing of the task's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from workbench.errors import UserError
from workbench.fourier.walsh import (MAX_EXACT_BITS, WalshSpectrum, all_inputs,
                                     detect_parity_set, hidden_progress, neuron_walsh_spectra,
                                     sampled_walsh_spectrum, walsh_spectrum)

MAX_DEGREE_SAMPLED = 3


def _norm(state: Mapping[str, torch.Tensor], prefix: str, kind: str | None,
          x: torch.Tensor) -> torch.Tensor:
    kind = (kind or "").upper()
    if not kind:
        return x
    if kind in ("RMS", "RMSPRE"):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    else:
        y = (x - x.mean(-1, keepdim=True))
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-5)
    if kind in ("LN", "RMS"):
        y = y * state[f"{prefix}.weight"]
        if f"{prefix}.bias" in state:
            y = y + state[f"{prefix}.bias"]
    return y


def effective_input_weights(state: Mapping[str, torch.Tensor], n_bits: int, *, n_heads: int,
                            normalization: str | None = None, bit_tokens: Sequence[int] = (0, 1),
                            query_token: int = 2) -> torch.Tensor:
    """Weights-only first-layer weights ``[d_mlp, n_bits]`` of bit ``i`` on each MLP neuron (see
    the module docstring)."""
    need = ("tok_embed.weight", "pos.weight", "layers.0.attn.q.weight",
            "layers.0.mlp.fc_in.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise UserError(f"state dict is not a transformer with an MLP: missing {missing}")
    sd = {k: v.detach().double() for k, v in state.items()}
    e, pos = sd["tok_embed.weight"], sd["pos.weight"]  # [V, d], [n_ctx, d]
    if pos.shape[0] < n_bits + 1:
        raise UserError(f"the model's context {pos.shape[0]} is shorter than {n_bits} bits + '='")
    x = e[list(bit_tokens)][None, :, :] + pos[:n_bits, None, :]  # [n, 2, d]
    xq = e[query_token] + pos[n_bits]  # [d]
    h = _norm(sd, "layers.0.ln1", normalization, x)
    hq = _norm(sd, "layers.0.ln1", normalization, xq)

    def lin(name: str, v: torch.Tensor) -> torch.Tensor:
        w = sd[f"layers.0.attn.{name}.weight"]
        b = sd.get(f"layers.0.attn.{name}.bias")
        return F.linear(v, w, b)

    hd = sd["layers.0.attn.q.weight"].shape[0]
    if hd % n_heads:
        raise UserError(f"n_heads={n_heads} does not divide the attention width {hd}")
    dh = hd // n_heads
    q = lin("q", hq).reshape(n_heads, dh)  # [H, dh]
    k = lin("k", h).reshape(n_bits, 2, n_heads, dh)
    kq = lin("k", hq).reshape(n_heads, dh)
    v = lin("v", h).reshape(n_bits, 2, n_heads, dh)
    w_o = sd["layers.0.attn.o.weight"].T.reshape(n_heads, dh, -1)  # [H, dh, d]
    o = torch.einsum("ivhe,hed->ivhd", v, w_o)  # [n, 2, H, d]
    s = torch.einsum("ivhe,he->ivh", k, q) / dh ** 0.5  # [n, 2, H]
    sq = (kq * q).sum(-1) / dh ** 0.5  # [H]
    top = torch.maximum(s.amax(dim=(0, 1)), sq)  # [H]
    weights = (s - top).exp()  # [n, 2, H]
    z = weights.mean(dim=1).sum(dim=0) + (sq - top).exp()  # [H] average partition function
    a = weights / z
    delta = torch.einsum("ih,ihd->id", a[:, 1], o[:, 1]) - torch.einsum("ih,ihd->id", a[:, 0],
                                                                        o[:, 0])  # [n, d]
    kind = (normalization or "").upper()
    if kind in ("LN", "LNPRE"):
        delta = delta - delta.mean(-1, keepdim=True)  # LayerNorm's centring is linear
    if kind in ("LN", "RMS") and "layers.0.ln2.weight" in sd:
        delta = delta * sd["layers.0.ln2.weight"]
    return sd["layers.0.mlp.fc_in.weight"] @ delta.T  # [d_mlp, n]


@dataclass(frozen=True)
class ParityActivations:
    inputs: torch.Tensor  # [m, n] bits
    output: torch.Tensor  # [m] logit("1") - logit("0")
    neurons: torch.Tensor  # [m, d_mlp]
    exact: bool


def collect_parity(model: torch.nn.Module, n_bits: int, *, bit_tokens: Sequence[int] = (0, 1),
                   query_token: int = 2, classes: Sequence[int] = (0, 1),
                   n_samples: int = 8192, seed: int = 0,
                   batch: int = 4096) -> ParityActivations:
    """Network output and last-position MLP activations over all inputs (or samples)."""
    exact = n_bits <= MAX_EXACT_BITS
    if exact:
        bits = all_inputs(n_bits)
    else:
        gen = torch.Generator().manual_seed(seed)
        bits = torch.randint(0, 2, (n_samples, n_bits), generator=gen)
    table = torch.tensor(list(bit_tokens))
    tokens = torch.cat([table[bits], torch.full((bits.shape[0], 1), query_token)], dim=1)
    mlp = model.layers[0].mlp
    acts: list[torch.Tensor] = []
    hook = mlp.fc_in.register_forward_hook(lambda m, i, out: acts.append(out[:, -1].detach()))
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, tokens.shape[0], batch):
                logits = model(tokens[start:start + batch])[:, -1]  # [b, C]
                outs.append(logits[:, classes[1]] - logits[:, classes[0]])
    finally:
        hook.remove()
    neurons = mlp.act(torch.cat(acts)).double()  # [m, d_mlp]
    return ParityActivations(inputs=bits, output=torch.cat(outs).double(), neurons=neurons,
                             exact=exact)


def _spectrum(acts: ParityActivations, values: torch.Tensor, max_degree: int) -> WalshSpectrum:
    if acts.exact:
        return walsh_spectrum(values)
    return sampled_walsh_spectrum(acts.inputs, values, max_degree)


def _subset_share(spec: WalshSpectrum, support: Sequence[int]) -> torch.Tensor:
    """Per column, share of non-constant Walsh power on non-empty subsets of ``support``."""
    inside = torch.tensor([bool(s) and set(s) <= set(support) for s in spec.sets])
    nonconst = torch.tensor([bool(s) for s in spec.sets])
    power = spec.coefficients.reshape(len(spec.sets), -1).pow(2)  # [S, r]
    total = power[nonconst].sum(0)
    return torch.where(total > 0, power[inside].sum(0) / total.clamp_min(1e-300),
                       torch.zeros_like(total))


@dataclass(frozen=True, kw_only=True)
class ParityReport:
    """Walsh measures of one sparse-parity checkpoint (JSON-ready via :meth:`to_json`)."""

    step: int | None
    n: int
    k: int
    true_support: list[int]
    detected_support: list[int]
    support_recovered: bool
    detection_margin: float
    coordinate_scores: list[float]  # column norms of the effective input weights
    hidden_progress: float
    output_spectrum: dict  # WalshSpectrum.to_json of the network function
    output_parity_coefficient: float  # f^(S) of the true support
    output_parity_share: float  # its share of the non-constant power
    neuron_parity_share: list[float]  # per neuron: power on subsets of the detected set
    neurons_on_parity_set: float  # share of live neurons with > 0.5 of it there
    neuron_top_sets: list[list[int]]  # per neuron: its largest non-empty Walsh set
    weight_parity_share: list[float]  # per neuron, the same share for ReLU(w_eff . z + b)
    exact: bool

    def to_json(self) -> dict:
        return asdict(self)


def analyze_parity_model(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, n: int,
                         k: int, support: Sequence[int] | None = None, n_heads: int,
                         normalization: str | None = None, bit_tokens: Sequence[int] = (0, 1),
                         query_token: int = 2, classes: Sequence[int] = (0, 1),
                         step: int | None = None) -> ParityReport:
    """All Walsh measures of one checkpoint; ``model`` must hold ``state`` already."""
    w_eff = effective_input_weights(state, n, n_heads=n_heads, normalization=normalization,
                                    bit_tokens=bit_tokens, query_token=query_token)
    found = detect_parity_set(w_eff, k)
    support = tuple(sorted(support)) if support is not None else found.support
    acts = collect_parity(model, n, bit_tokens=bit_tokens, query_token=query_token,
                          classes=classes)
    degree = min(k, MAX_DEGREE_SAMPLED)
    out_spec = _spectrum(acts, acts.output, degree)
    mask = {s: i for i, s in enumerate(out_spec.sets)}
    coeff = float(out_spec.coefficients[mask[tuple(support)]]) if tuple(support) in mask \
        else 0.0
    power = out_spec.coefficients.pow(2)
    nonconst = float(power.sum() - power[mask[()]])
    neuron_spec = _spectrum(acts, acts.neurons, degree)
    share = _subset_share(neuron_spec, found.support)  # [d_mlp]
    live = acts.neurons.std(dim=0) > 1e-9
    coeffs = neuron_spec.coefficients.reshape(len(neuron_spec.sets), -1).abs()
    coeffs[0] = 0.0  # the empty set comes first in every spectrum
    top = coeffs.argmax(dim=0)
    bias = state.get("layers.0.mlp.fc_in.bias")
    w_spec = neuron_walsh_spectra(w_eff, None if bias is None else bias.detach().double(),
                                  max_degree=None if n <= MAX_EXACT_BITS else degree)
    return ParityReport(
        step=step, n=n, k=k, true_support=list(support), detected_support=list(found.support),
        support_recovered=tuple(found.support) == tuple(support),
        detection_margin=float(found.margin), coordinate_scores=found.scores.tolist(),
        hidden_progress=hidden_progress(w_eff, support),
        output_spectrum=out_spec.to_json(), output_parity_coefficient=coeff,
        output_parity_share=coeff * coeff / nonconst if nonconst > 0 else 0.0,
        neuron_parity_share=share.tolist(),
        neurons_on_parity_set=float((share[live] > 0.5).double().mean()) if live.any() else 0.0,
        neuron_top_sets=[list(neuron_spec.sets[int(i)]) for i in top],
        weight_parity_share=_subset_share(w_spec, found.support).tolist(), exact=acts.exact)


def analyze_parity_series(model: torch.nn.Module,
                          checkpoints: Sequence[tuple[int, Mapping[str, torch.Tensor]]],
                          **kwargs) -> list[ParityReport]:
    """Reports for ``(step, state)`` checkpoints in step order (``model`` is reloaded)."""
    out = []
    for step, state in sorted(checkpoints, key=lambda c: c[0]):
        model.load_state_dict(state, strict=False)
        model.eval()
        out.append(analyze_parity_model(model, state, step=step, **kwargs))
    return out


__all__ = ["ParityReport", "analyze_parity_model", "analyze_parity_series", "collect_parity",
           "effective_input_weights"]
