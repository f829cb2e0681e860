"""Edge Pruning speed benchmark (issue 6, "Figures to reach: Speed").

Configuration of the published comparison: a randomly initialised GPT-2 (4 layers, d_model 256,
4 heads, vocabulary 1000), batch 32 x 32 tokens, KL at the last position. The original
implementation takes ~570 ms per optimisation step on the reference machine (3.8x a plain
forward+backward). Reports, in ms: our Edge Pruning step (masks sampled, masked forward, KL,
backward, both optimisers; corrupted activations cached, and recomputed every step), a plain
forward+backward of the same model (Hugging Face module, gradients to the weights), the masked
forward vs the plain forward (no grad), peak resident memory, and steps/s on a 6-layer in-house
model.

    python benchmarks/edge_pruning_speed.py [--model-dir DIR] [--steps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def build_gpt2(directory: Path) -> Path:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=1000, n_positions=64, n_embd=256, n_layer=4,
                                  n_head=4, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(directory)
    vocab = {f"w{i}": i for i in range(999)}
    vocab["<unk>"] = 999
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                         eos_token="<unk>", bos_token="<unk>",
                                         pad_token="<unk>").save_pretrained(directory)
    return directory


def _time(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1000


def _dataset(vocab: int, n: int, seq: int, seed: int = 0):
    from circuits.datasets import PairDataset
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, vocab, (n, seq), generator=g)
    corrupted = torch.randint(0, vocab, (n, seq), generator=g)
    return PairDataset(name="bench", clean=clean, corrupted=corrupted,
                       positions=torch.full((n,), seq - 1), answer=torch.zeros(n, dtype=torch.long),
                       distractor=torch.full((n,), -1))


def ep_step_ms(mm, data, steps: int, warmup: int, cache: bool) -> float:
    from circuits.prune import PruneConfig, prune
    cfg = PruneConfig(target_sparsity=0.98, steps=warmup, batch_size=32, log_every=10**9,
                      cache_limit_mb=1024.0 if cache else 0.0)
    prune(mm, data, cfg)  # warm-up (allocator, first-batch set-up)
    cfg = PruneConfig(**{**cfg.to_json(), "steps": steps})
    t0 = time.perf_counter()
    res = prune(mm, data, cfg)
    del t0
    # prune's wall time includes the one-off ablation set-up; subtract it by timing 1 step
    one = prune(mm, data, PruneConfig(**{**cfg.to_json(), "steps": 1}))
    return (res.wall_seconds - one.wall_seconds) / (steps - 1) * 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=None, help="Hugging Face model directory "
                                                      "(default: build the random GPT-2)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from circuits.masked_forward import MaskedModel
    from workbench.models import ModelConfig, load_hf_bridge, to_bridge

    tmp = None
    model_dir = Path(args.model_dir) if args.model_dir else None
    if model_dir is None:
        tmp = tempfile.TemporaryDirectory()
        model_dir = build_gpt2(Path(tmp.name) / "gpt2-bench")
    bridge = load_hf_bridge(model_dir)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mm = MaskedModel(bridge)
    vocab = bridge.cfg.d_vocab
    data = _dataset(vocab, 2 * args.batch, args.seq)
    batch = data.subset(range(args.batch))
    out: dict = {"model": str(model_dir), "edges": mm.graph.n_edges, "batch": args.batch,
                 "seq": args.seq, "threads": torch.get_num_threads(),
                 "device": str(mm.W_E.device)}

    ep_data = data.subset(range(args.batch))  # one batch: corrupted run cached after step 1
    out["ep_step_ms"] = ep_step_ms(mm, ep_data, args.steps, args.warmup, cache=True)
    out["ep_step_uncached_ms"] = ep_step_ms(mm, data, args.steps, args.warmup, cache=False)

    hf = bridge.original_model
    for p in hf.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        target = F.log_softmax(hf(batch.clean).logits[:, -1], -1)

    def plain_step():
        hf.zero_grad(set_to_none=True)
        logp = F.log_softmax(hf(batch.clean).logits[:, -1], -1)
        F.kl_div(logp, target, log_target=True, reduction="batchmean").backward()

    out["plain_fwd_bwd_ms"] = _time(plain_step, args.steps, args.warmup)
    for p in hf.parameters():
        p.requires_grad_(False)

    def plain_fwd():
        with torch.no_grad():
            hf(batch.clean)

    edges = mm.graph.edge_mask.float() * 0.9
    abl = mm.writer_outputs(batch.corrupted)

    def masked_fwd():
        with torch.no_grad():
            mm(batch.clean, batch.positions, edges=edges, ablated=abl)

    out["plain_fwd_ms"] = _time(plain_fwd, args.steps, args.warmup)
    out["masked_fwd_ms"] = _time(masked_fwd, args.steps, args.warmup)
    out["masked_fwd_overhead"] = out["masked_fwd_ms"] / out["plain_fwd_ms"]
    out["ep_vs_plain_fwd_bwd"] = out["ep_step_ms"] / out["plain_fwd_bwd_ms"]
    out["speedup_vs_original_570ms"] = 570.0 / out["ep_step_ms"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    if torch.cuda.is_available():
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20

    native = to_bridge(ModelConfig(n_layers=6, d_model=128, n_heads=4, d_head=32, d_mlp=512,
                                   d_vocab=64, d_vocab_out=64, n_ctx=args.seq,
                                   normalization_type="LN"))
    nmm = MaskedModel(native)
    out["native6_edges"] = nmm.graph.n_edges
    ms = ep_step_ms(nmm, _dataset(64, args.batch, args.seq), args.steps, args.warmup, True)
    out["native6_steps_per_s"] = 1000.0 / ms
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v:.3f}" if isinstance(v, float) else f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
