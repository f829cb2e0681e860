"""TransformerBridge overhead against the same math in plain torch, forward and
forward+backward, on the grokking model and on a 6-layer model.

Three ways to run one model: the bridge (hooks and wrappers around TransformerLens's native
module), the native module alone (plain torch), and the trainer's fast path (the native
parameters, last block only at the loss positions). All three compute the same logits.

    python benchmarks/bridge_overhead.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.fast_forward import logits_at
from workbench.models import ModelConfig, build_native, to_bridge

MODELS = {
    "grokking (1L d128, batch 3830 x 3)": (
        ModelConfig(n_layers=1, d_model=128, n_heads=4, d_head=32, d_mlp=512, d_vocab=114,
                    d_vocab_out=113, n_ctx=3), 3830, [2]),
    "6-layer (d256 LN, batch 32 x 64)": (
        ModelConfig(n_layers=6, d_model=256, n_heads=8, d_head=32, d_mlp=1024, d_vocab=512,
                    d_vocab_out=512, n_ctx=64, normalization_type="LN"), 32, None),
}


def _time(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}")
    for label, (cfg, batch, positions) in MODELS.items():
        native = build_native(cfg)
        bridge = to_bridge(cfg, native.state_dict()).train()
        tokens = torch.randint(0, cfg.d_vocab, (batch, cfg.n_ctx))
        pos = torch.tensor(positions) if positions else None
        with torch.no_grad():
            assert torch.allclose(bridge(tokens), native(tokens), atol=1e-5)

        def fwd(model):
            def run():
                with torch.no_grad():
                    model(tokens)
            return run

        def fwd_bwd(forward):
            def run():
                forward().float().sum().backward()
            return run

        rows = {
            "bridge": (fwd(bridge), fwd_bwd(lambda: bridge(tokens))),
            "plain torch (native)": (fwd(native), fwd_bwd(lambda: native(tokens))),
            "trainer fast path": (
                lambda: logits_at(native, tokens, pos),
                fwd_bwd(lambda: logits_at(native, tokens, pos))),
        }
        print(f"\n{label}")
        base_f = base_b = None
        for name, (f, b) in rows.items():
            tf, tb = _time(f, args.repeats), _time(b, args.repeats)
            if name == "plain torch (native)":
                base_f, base_b = tf, tb
            rows[name] = (tf, tb)
        for name, (tf, tb) in rows.items():
            print(f"  {name:<22} forward {tf:8.2f} ms ({tf / base_f:5.2f}x)   "
                  f"fwd+bwd {tb:8.2f} ms ({tb / base_b:5.2f}x)")


if __name__ == "__main__":
    main()
