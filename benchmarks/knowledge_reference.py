"""Knowledge storage at CPU scale (Allen-Zhu & Li, Physics of LMs 3.1): runs
``probes.knowledge.run_knowledge`` for bioS single and multi5+permute+fullname under
pretrain-then-QA-finetune, and the augmented data under mixed training, then prints every
figure and checks the paper's orderings:

- held-out QA: multi5+permute+fullname far above single; mixed training high;
- P-probe: for single, an attribute is readable just before it, not right after the name;
  for the augmented data it is readable right after the name;
- Q-probe (name only) accuracy tracks QA accuracy across augmentations;
- and prints the Q-probe over the checkpoint series (when the attributes become readable).

    python benchmarks/knowledge_reference.py [--people N] [--steps N] [--jobs 2] [--test-scale]

Unset options take the KnowledgeConfig defaults (the CPU-scale settings that memorise);
``--test-scale`` starts from ``TEST_SETTINGS``, the smaller scale the reference test trains.
Figures, not a timed test: the printed PASS / FAIL lines say which orderings held at this scale;
tests/probes/test_knowledge_reference.py checks the same orderings (:func:`orderings`).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

from probes.knowledge_orderings import CASES, figures_of, orderings

# the reference test's scale (about 4 min a case on one core): a third of the people, 500 steps
# (about as many passes over each biography as the defaults: 350 steps at 150 people left the
# mixed model short of memorising), fewer probe steps; pools follow the people (4 values)
TEST_SETTINGS = {"people": 100, "steps": 500, "probe_steps": 100, "series_checkpoints": 2}
SETTINGS = ("people", "steps", "finetune_steps", "probe_steps", "series_checkpoints",
            "vocab_size", "batch_size", "lr", "model", "seed", "pool_size")


def run_case(case, settings: dict) -> dict:
    """One case's knowledge result (JSON), on one thread."""
    import torch
    torch.set_num_threads(1)
    from probes.knowledge import KnowledgeConfig, run_knowledge
    aug, protocol = case
    return run_knowledge(KnowledgeConfig(augmentation=aug, protocol=protocol,
                                         **settings)).to_json()


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in SETTINGS:
        kind = {"lr": float, "model": json.loads}.get(name, int)
        ap.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--test-scale", action="store_true",
                    help="start from the reference test's settings (TEST_SETTINGS)")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    settings = {**(TEST_SETTINGS if args.test_scale else {}),
                **{k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_case, CASES, [settings] * len(CASES)))
    figures = {}
    for (aug, protocol), r in zip(CASES, results):
        figures[f"{aug} {protocol}"] = f = figures_of(r)
        print(f"{aug:<26} {protocol:<18} QA held-out {f['qa_held_out']:.3f} (trained people "
              f"{f['qa_trained_people']:.3f}); P-probe after name {f['p_after_name']:.3f}, "
              f"just before {f['p_just_before']:.3f} (chance {f['p_chance']:.3f}); Q-probe "
              f"{f['q_probe']:.3f}; loss {f['pretrain_loss']:.3f}; seconds {f['seconds']}")
        print("    QA held-out per attribute: " + ", ".join(
            f"{k} {v:.3f}" for k, v in f["qa_held_out_per_attribute"].items()))
        print("    Q-probe per attribute: " + ", ".join(
            f"{k} {v:.3f}" for k, v in f["q_probe_per_attribute"].items()))
        print("    Q-probe over training (step: mean): " + ", ".join(
            f"{k}: {v:.3f}" for k, v in f["q_over_training"].items()))
    checks = orderings(*(figures[f"{a} {p}"] for a, p in CASES))
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    print(f"total {time.perf_counter() - t0:.0f} s, settings {settings or 'defaults'}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"figures": figures, "checks": checks, "settings": settings,
                       "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
