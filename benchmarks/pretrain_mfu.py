"""Model FLOPs utilisation of ``workbench pretrain`` on this machine: a GPT-2 124M-shaped model
(12 layers, d_model 768, 12 heads, context 1024, vocabulary padded to 50,304) trained for a few
hundred steps with ``torch.compile`` and bf16 autocast on a GPU; prints MFU (against the
device's dense bf16 peak: A100 312, H100 SXM / H200 989 TFLOP/s) and tokens/s.

Without a GPU it runs the same path on the CPU with the ``tiny`` preset's model (fp32, no
compile unless asked; MFU against a measured float32 matmul peak), so the script is always
exercised. The data is the embedded arithmetic corpus; its small BPE vocabulary is padded to
GPT-2's 50,304 rows (``vocab_multiple``), which keeps the FLOPs of the real model.

    python benchmarks/pretrain_mfu.py                       # GPU: 124M, 300 steps
    python benchmarks/pretrain_mfu.py --steps 50 --micro-batch 8
    torchrun --nproc_per_node 8 benchmarks/pretrain_mfu.py   # one run over 8 GPUs (DDP)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch

from training.lm.api import pretrain
from training.lm.flops import device_info, flops_per_token, peak_tflops
from training.lm.prepare import prepare
from workbench.runs import load_run
from workbench.store import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gpu = torch.cuda.is_available()
    parser.add_argument("--steps", type=int, default=300 if gpu else 30)
    parser.add_argument("--micro-batch", type=int, default=16 if gpu else 8)
    parser.add_argument("--accum", type=int, default=4 if gpu else 1,
                        help="micro-batches per update per rank")
    parser.add_argument("--preset", default="gpt2-124m" if gpu else "tiny")
    parser.add_argument("--compile", default="true" if gpu else "false")
    parser.add_argument("--precision", default="bf16" if gpu else "fp32")
    parser.add_argument("--parallel", default="ddp", choices=["ddp", "fsdp"])
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (no GPU)")
    a = parser.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not gpu:
        torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(os.environ.get("PRETRAIN_MFU_DATA", Path(tmp) / "data"))
        if not (data / "manifest.json").is_file():
            if int(os.environ.get("LOCAL_RANK", "0")) == 0:
                prepare(["builtin:arithmetic:20000"], tokenizer="train:2048", output=str(data))
            if world > 1:
                raise SystemExit("under torchrun, prepare the data first and pass it in "
                                 "PRETRAIN_MFU_DATA")
        window = max(a.steps // 10, 1)
        overrides = {"steps": a.steps, "micro_batch_size": a.micro_batch,
                     "batch_size": a.micro_batch * a.accum * world, "log_every": window,
                     "eval_every": 10 ** 6, "checkpoint_every": 10 ** 6, "log_checkpoints": 0,
                     "compile": a.compile, "precision": a.precision, "parallel": a.parallel,
                     "activation_checkpointing": a.activation_checkpointing,
                     "warmup_steps": min(100, a.steps // 3)}
        if a.preset.startswith("gpt2") or a.preset.endswith("124m"):
            overrides["vocab_multiple"] = 50304
        store = RunStore(Path(tmp) / "home")
        result = pretrain(str(data), preset=a.preset, overrides=overrides, store=store)
        if int(os.environ.get("RANK", "0")) != 0:
            return
        run = load_run(result.run_id, store)
        rows = run.metrics()
        # steady state: skip the first two windows (compilation, warm-up) and the last (save)
        steady = [s for s, _ in rows["tokens_per_second"]][2:-1] or \
            [s for s, _ in rows["tokens_per_second"]]
        tok_s = statistics.median(v for s, v in rows["tokens_per_second"] if s in steady)
        mfu = statistics.median(v for s, v in rows["mfu"] if s in steady)
        from training.lm.config import LMModelConfig
        cfg = LMModelConfig.from_dict(run.config["model"])
        seq = run.config["train"]["seq_len"] or cfg.n_ctx
        device = torch.device("cuda" if gpu else "cpu")
        peak, source = peak_tflops(device)
        print(f"device: {device_info(device)} x {world}; peak {peak:.3g} TFLOP/s ({source})")
        print(f"model: {a.preset}, {cfg.n_params() / 1e6:.1f}M parameters, "
              f"{flops_per_token(cfg, seq) / 1e9:.3f} GFLOP/token; compile={a.compile} "
              f"precision={a.precision}; batch {overrides['batch_size']} x {seq}")
        print(f"steady state: {tok_s:,.0f} tokens/s, MFU {mfu:.1%} "
              f"(final train loss {result.train_loss:.3f})")
        if gpu:
            print(f"peak GPU memory {max(v for _, v in rows['gpu_memory_gib']):.1f} GiB")


if __name__ == "__main__":
    main()
