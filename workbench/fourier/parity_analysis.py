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

from workbench.activations import activation
from workbench.errors import UserError
from workbench.fourier.walsh import (MAX_EXACT_BITS, WalshSpectrum, all_inputs,
                                     detect_parity_set, hidden_progress, neuron_walsh_spectra,
                                     sampled_walsh_spectrum, walsh_spectrum)
from workbench.weights import ModelWeights, linear_bias, linear_weight, model_weights, \
    state_dict_weights

MAX_DEGREE_SAMPLED = 3


def _parity_weights(model, n_heads: int | None, normalization: str | None) -> ModelWeights:
    """float64 TransformerLens-format weights of ``model`` (a bridge, the native module or a
    native state dict, which needs ``n_heads``); given settings must agree with a model's."""
    if isinstance(model, Mapping):
        if n_heads is None:
            raise UserError("n_heads is required with a state dict")
        w = state_dict_weights(model, n_heads=n_heads, normalization_type=normalization)
    else:
        w = model_weights(model)
        for name, given, own in (("n_heads", n_heads, w.n_heads),
                                 ("normalization", normalization, w.normalization_type)):
            if given is not None and given != own:
                raise UserError(f"{name}={given!r} but the model has {name} {own!r}")
    missing = [name for name, t in (("W_pos", w.W_pos), ("W_Q", w.blocks[0].W_Q),
                                    ("W_K", w.blocks[0].W_K), ("W_V", w.blocks[0].W_V),
                                    ("W_O", w.blocks[0].W_O), ("W_in", w.blocks[0].W_in))
               if t is None]
    if missing:
        raise UserError(f"not a transformer with learned positions and an MLP: missing "
                        f"{missing}")
    return w.to(torch.float64)


def effective_input_weights(model, n_bits: int, *, n_heads: int | None = None,
                            normalization: str | None = None, bit_tokens: Sequence[int] = (0, 1),
                            query_token: int = 2) -> torch.Tensor:
    """Weights-only first-layer weights ``[d_mlp, n_bits]`` of bit ``i`` on each MLP neuron (see
    the module docstring). ``model``: a ``TransformerBridge``, the native module, or a native
    state dict (with ``n_heads`` and, if it has norms, ``normalization``)."""
    w = _parity_weights(model, n_heads, normalization)
    block = w.blocks[0]
    e, pos = w.W_E, w.W_pos  # [V, d], [n_ctx, d]
    if pos.shape[0] < n_bits + 1:
        raise UserError(f"the model's context {pos.shape[0]} is shorter than {n_bits} bits + '='")
    x = e[list(bit_tokens)][None, :, :] + pos[:n_bits, None, :]  # [n, 2, d]
    xq = e[query_token] + pos[n_bits]  # [d]
    h = block.ln1(x)
    hq = block.ln1(xq)
    proj = {name: (linear_weight(getattr(block, f"W_{name}"), "qkv"),
                   linear_bias(getattr(block, f"b_{name}"))) for name in "QKV"}

    def lin(name: str, v: torch.Tensor) -> torch.Tensor:
        return F.linear(v, *proj[name])

    n_heads, _, dh = block.W_Q.shape
    q = lin("Q", hq).reshape(n_heads, dh)  # [H, dh]
    k = lin("K", h).reshape(n_bits, 2, n_heads, dh)
    kq = lin("K", hq).reshape(n_heads, dh)
    v = lin("V", h).reshape(n_bits, 2, n_heads, dh)
    o = torch.einsum("ivhe,hed->ivhd", v, block.W_O)  # [n, 2, H, d]
    s = torch.einsum("ivhe,he->ivh", k, q) / block.attn_scale  # [n, 2, H]
    sq = (kq * q).sum(-1) / block.attn_scale  # [H]
    top = torch.maximum(s.amax(dim=(0, 1)), sq)  # [H]
    weights = (s - top).exp()  # [n, 2, H]
    z = weights.mean(dim=1).sum(dim=0) + (sq - top).exp()  # [H] average partition function
    a = weights / z
    delta = torch.einsum("ih,ihd->id", a[:, 1], o[:, 1]) - torch.einsum("ih,ihd->id", a[:, 0],
                                                                        o[:, 0])  # [n, d]
    if block.ln2 is not None and block.ln2.kind == "LN":
        delta = delta - delta.mean(-1, keepdim=True)  # LayerNorm's centring is linear
    if block.ln2 is not None and block.ln2.weight is not None:
        delta = delta * block.ln2.weight
    return linear_weight(block.W_in, "in") @ delta.T  # [d_mlp, n]


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
    from workbench.models import as_bridge

    bridge = as_bridge(model)
    act = activation(bridge.cfg.act_fn)
    pre = "blocks.0.mlp.hook_pre"
    acts: list[torch.Tensor] = []
    outs = []
    with torch.no_grad():
        for start in range(0, tokens.shape[0], batch):
            logits, cache = bridge.run_with_cache(tokens[start:start + batch],
                                                  names_filter=[pre])
            logits = logits[:, -1]  # [b, C]
            acts.append(cache[pre][:, -1])
            outs.append(logits[:, classes[1]] - logits[:, classes[0]])
    neurons = act(torch.cat(acts)).double()  # [m, d_mlp]
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


def analyze_parity_model(model: torch.nn.Module, state: Mapping[str, torch.Tensor] | None = None,
                         *, n: int, k: int, support: Sequence[int] | None = None,
                         n_heads: int | None = None, normalization: str | None = None,
                         bit_tokens: Sequence[int] = (0, 1), query_token: int = 2,
                         classes: Sequence[int] = (0, 1), step: int | None = None) -> ParityReport:
    """All Walsh measures of one checkpoint. ``model``: a ``TransformerBridge`` or the native
    module; the weights-only measures read ``state`` where given (``model`` must hold it
    already), else the model's own weights."""
    weights = _parity_weights(model if state is None else state, n_heads, normalization)
    w_eff = effective_input_weights(weights, n, bit_tokens=bit_tokens, query_token=query_token)
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
    bias = weights.blocks[0].b_in  # float64 already
    w_spec = neuron_walsh_spectra(w_eff, bias,
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
