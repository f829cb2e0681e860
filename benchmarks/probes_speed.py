"""Probe speed, side by side in one run (issue 14's figures):

1. fitting logistic probes for every layer of a 6-layer model: ``probes.fit`` (all layers in
   one batched torch fit) vs scikit-learn ``LogisticRegression`` fitted layer by layer, on the
   same standardised features and split; the goal is >= 10x faster at equal held-out accuracy
   (within 1 point);
2. collection throughput: ``probes.collect`` (names filter, gather, chunks written to disk)
   vs a plain forward of the same model on the same batches; the goal is >= 80% of its
   tokens/s.

The model is a 6-layer in-house transformer: by default with random weights (no training
needed to time a probe), with ``--pretrain STEPS`` a 6-layer d256 language model pretrained
here first on the embedded corpus (about 2 minutes for 300 steps on two CPU cores; a trained
residual stream is far less isotropic, so per-layer scikit-learn needs many more iterations),
or any stored run or model directory (``--model``). The target is a function of the last token
(``token[-1] mod C``) probed at the last position: readable from the embeddings, blurred layer
by layer. scikit-learn is not a project dependency: ``python3 -m pip install scikit-learn``
first.

    python benchmarks/probes_speed.py [--examples 4000] [--d-model 256] [--classes 10]
                                      [--threads 1] [--max-iter 100] [--rounds 3]
                                      [--pretrain STEPS | --model RUN|DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=4000)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-iter", type=int, default=100, help="ours: L-BFGS iterations")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--collect-examples", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fit-rounds", type=int, default=3)
    ap.add_argument("--device", default=None, help="where our probes are fitted (e.g. cuda)")
    ap.add_argument("--model", default=None,
                    help="a stored run or model directory instead of the random 6-layer model")
    ap.add_argument("--pretrain", type=int, default=None, metavar="STEPS",
                    help="pretrain the 6-layer d256 LM for STEPS steps here first and use it")
    args = ap.parse_args()
    if args.pretrain is not None and args.model:
        ap.error("give --pretrain or --model, not both")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # the same threads for both sides
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import json

    import torch
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("scikit-learn is needed for the comparison: python3 -m pip install scikit-learn")
        return 1
    torch.set_num_threads(args.threads)

    from probes.activations import load_activations
    from probes.collect import collect_activations
    from probes.fit import fit_probes
    from probes.sources import ModelSource, config_hash, load_data
    from probes.targets import make_target, split
    from workbench.models import ModelConfig, to_bridge

    if args.pretrain is not None:
        args.model = _pretrain_lm(args.pretrain)
    if args.model:  # a trained model: its residual stream is far less isotropic
        from probes.sources import load_model
        model = load_model(args.model)
        d, vocab = model.bridge.cfg.d_model, model.bridge.cfg.d_vocab
        args.seq = min(args.seq, model.bridge.cfg.n_ctx)
    else:
        d = args.d_model
        cfg = ModelConfig(n_layers=6, d_model=d, n_heads=max(1, d // 64), d_head=min(64, d),
                          d_mlp=4 * d, d_vocab=512, d_vocab_out=512, n_ctx=args.seq,
                          normalization_type="LN", init_seed=0)
        model = ModelSource(bridge=to_bridge(cfg), name="bench-6L", run_id=None, step=None,
                            config_hash=config_hash(cfg.to_dict()), model_config=cfg.to_dict())
        vocab = cfg.d_vocab
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (args.examples, args.seq), generator=gen)
    work = Path(tempfile.mkdtemp(prefix="probes-bench-"))
    data_path = work / "data.jsonl"
    with data_path.open("w") as fh:
        for row in tokens.tolist():
            fh.write(json.dumps({"tokens": row, "label": row[-1] % args.classes}) + "\n")

    # -- 2. collection vs a plain forward, alternated so machine load hits both alike --------
    n_collect = min(args.collect_examples, args.examples)
    n_tok = n_collect * args.seq
    collect_data = work / "collect.jsonl"
    collect_data.write_text("".join(line + "\n" for line in
                                    data_path.read_text().splitlines()[:n_collect]))
    plain_s = collect_s = 0.0
    res = None
    with torch.inference_mode():
        model.bridge(tokens[:args.batch_size])  # warm-up
    for round_ in range(args.rounds):
        with torch.inference_mode():
            t0 = time.perf_counter()
            for b in range(0, n_collect, args.batch_size):
                model.bridge(tokens[b:b + args.batch_size])
            plain_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        res = collect_activations(model, load_data(model, str(collect_data)),
                                  work / f"collect-{round_}", layers="all", positions="-1",
                                  batch_size=args.batch_size, chunk_size=256)
        collect_s += time.perf_counter() - t0
    plain, collected = n_tok * args.rounds / plain_s, n_tok * args.rounds / collect_s
    print(f"collection ({args.rounds} alternated rounds of {n_collect} x {args.seq} tokens, batch "
          f"{args.batch_size}, {len(res.sites)} sites, chunks written to disk, validation pass "
          f"included): plain forward {plain:,.0f} tokens/s, collect {collected:,.0f} tokens/s "
          f"= {collected / plain:.2f}x (goal >= 0.80)")
    collect_activations(model, load_data(model, str(data_path)), work / "acts", layers="all",
                        positions="-1", batch_size=args.batch_size, chunk_size=1024)

    # -- 1. probes for every layer: batched torch vs per-layer scikit-learn -------------------
    acts = load_activations(work / "acts")
    target = make_target(acts.column("label"), acts.n)
    train, test = split(target, test_fraction=0.3, seed=0)
    y = target.y.numpy()
    features = []
    for site in acts.sites:  # the same standardised features for scikit-learn
        x = acts.acts[site][:, 0]
        mu, sd = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
        features.append(((x - mu) / sd).numpy())
    l2 = 1.0 / len(train)
    t_ours = t_ridge = t_sk = 0.0
    for _ in range(args.fit_rounds):  # alternated, so machine load hits both alike
        t0 = time.perf_counter()
        ours = fit_probes(acts, "label", kind="logistic", seed=0, max_iter=args.max_iter,
                          device=args.device)
        t_ours += time.perf_counter() - t0
        t0 = time.perf_counter()  # the closed-form ridge classifier: one batched solve
        ridge = fit_probes(acts, "label", kind="linear", seed=0, device=args.device)
        t_ridge += time.perf_counter() - t0
        sk_acc = []
        for xs in features:
            t0 = time.perf_counter()
            clf = LogisticRegression(C=1.0 / (l2 * len(train)), max_iter=1000)
            clf.fit(xs[train.numpy()], y[train.numpy()])
            t_sk += time.perf_counter() - t0
            sk_acc.append(float((clf.predict(xs[test.numpy()]) == y[test.numpy()]).mean()))
    t_ours, t_ridge, t_sk = (t / args.fit_rounds for t in (t_ours, t_ridge, t_sk))
    ours_acc = [row[0] for row in ours.test_score]
    ridge_acc = [row[0] for row in ridge.test_score]
    print(f"probe fit, {len(acts.sites)} sites (embeddings + {len(acts.sites) - 1} layers) of "
          f"{model.name}, n_train {len(train)}, d {d}, {args.classes} classes, {args.threads} "
          "thread(s):")
    print(f"  ours (batched torch, <= {args.max_iter} L-BFGS steps, "
          f"{args.device or 'cpu'}): {t_ours:.2f} s (mean of {args.fit_rounds})")
    print(f"  scikit-learn LogisticRegression per layer (lbfgs, C = 1 / (l2 n)): {t_sk:.2f} s")
    print(f"  ours, closed-form ridge classifier (kind linear): {t_ridge:.3f} s")
    print(f"  speed-up: logistic {t_sk / t_ours:.1f}x, ridge {t_sk / t_ridge:.1f}x (goal >= 10)")
    gap = max(abs(a - b) for a, b in zip(ours_acc, sk_acc))
    ridge_gap = max(abs(a - b) for a, b in zip(ridge_acc, sk_acc))
    for site, a, r, b in zip(acts.sites, ours_acc, ridge_acc, sk_acc):
        print(f"  {site:8s} held-out accuracy: ours logistic {a:.4f}  ours ridge {r:.4f}  "
              f"sklearn {b:.4f}")
    print(f"  largest accuracy gap to sklearn: logistic {100 * gap:.2f}, ridge "
          f"{100 * ridge_gap:.2f} points (goal <= 1)")
    return 0


def _pretrain_lm(steps: int) -> str:
    """A 6-layer d256 LM pretrained ``steps`` steps on the embedded corpus, in a temporary
    store; returns its checkpoint directory."""
    import torch

    from training.lm.api import pretrain
    from training.lm.prepare import prepare
    from workbench.store import RunStore
    home = Path(tempfile.mkdtemp(prefix="probes-bench-lm-"))
    timed_threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # training is not what is timed
    prepare(["builtin:default"], tokenizer="train:1024", output=str(home / "data"))
    t0 = time.perf_counter()
    result = pretrain(str(home / "data"), preset="tiny",
                      overrides={"n_layers": 6, "d_model": 256, "n_heads": 4, "d_mlp": 1024,
                                 "steps": steps},
                      store=RunStore(home / "store"))
    print(f"pretrained a 6-layer d256 LM for {steps} steps in {time.perf_counter() - t0:.0f} s "
          f"(train loss {result.train_loss:.3f})")
    torch.set_num_threads(timed_threads)
    return str(result.output_dir)


if __name__ == "__main__":
    sys.exit(main())
