"""Knowledge storage at CPU scale (Allen-Zhu & Li, Physics of LMs 3.1): runs
``probes.knowledge.run_knowledge`` for bioS single and multi5+permute+fullname under
pretrain-then-QA-finetune, and the augmented data under mixed training, then prints every
figure and checks the paper's orderings:

- held-out QA: multi5+permute+fullname far above single; mixed training high;
- P-probe: for single, an attribute is readable just before it, not right after the name;
  for the augmented data it is readable right after the name;
- Q-probe (name only) accuracy tracks QA accuracy across augmentations.

    python benchmarks/knowledge_reference.py [--people 200] [--steps 800] [--jobs 2]

Figures, not a timed test: the printed PASS / FAIL lines say which orderings held at this scale.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

CASES = [("single", "pretrain-finetune"), ("multi5+permute+fullname", "pretrain-finetune"),
         ("multi5+permute+fullname", "mixed")]


def _one(case, args) -> dict:
    import torch
    torch.set_num_threads(1)
    from probes.knowledge import KnowledgeConfig, run_knowledge
    aug, protocol = case
    cfg = KnowledgeConfig(people=args.people, augmentation=aug, protocol=protocol,
                          steps=args.steps, finetune_steps=args.finetune_steps,
                          probe_steps=args.probe_steps, vocab_size=args.vocab_size,
                          batch_size=args.batch_size, model=json.loads(args.model))
    return run_knowledge(cfg).to_json()


def _diag(table, anchor_of) -> float:
    """Mean held-out accuracy of each attribute at the anchor ``anchor_of(attribute)``."""
    rows = dict(zip(table["anchors"], table["accuracy"]))
    return sum(rows[anchor_of(a)][i] for i, a in enumerate(table["attributes"])) / \
        len(table["attributes"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--finetune-steps", type=int, default=200)
    ap.add_argument("--probe-steps", type=int, default=150)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default="{}")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_one, CASES, [args] * len(CASES)))
    figures = {}
    for (aug, protocol), r in zip(CASES, results):
        p = r["p_probe"]
        figures[f"{aug} {protocol}"] = f = {
            "qa_held_out": r["qa_accuracy"]["all"], "qa_trained_people":
            r["qa_train_accuracy"]["all"], "pretrain_loss": r["pretrain"]["train_loss"],
            "p_after_name": _diag(p, lambda a: "name"),
            "p_just_before": _diag(p, lambda a: f"before:{a}"),
            "p_chance": sum(p["chance"]) / len(p["chance"]),
            "q_probe": sum(r["q_probe"]["accuracy"][0]) / len(r["q_probe"]["attributes"]),
            "run_id": r["run_id"]}
        print(f"{aug:<26} {protocol:<18} QA held-out {f['qa_held_out']:.3f} (trained people "
              f"{f['qa_trained_people']:.3f}); P-probe after name {f['p_after_name']:.3f}, "
              f"just before {f['p_just_before']:.3f} (chance {f['p_chance']:.3f}); Q-probe "
              f"{f['q_probe']:.3f}; loss {f['pretrain_loss']:.3f}")
    single = figures["single pretrain-finetune"]
    aug = figures["multi5+permute+fullname pretrain-finetune"]
    mixed = figures["multi5+permute+fullname mixed"]
    checks = {
        "QA: augmented >> single (by 0.2)": aug["qa_held_out"] > single["qa_held_out"] + 0.2,
        "QA: mixed above single": mixed["qa_held_out"] > single["qa_held_out"],
        "P single: just before > after name": single["p_just_before"] > single["p_after_name"],
        "P augmented: after name near just before (within 0.1)":
            aug["p_after_name"] > aug["p_just_before"] - 0.1,
        "P after name: augmented > single": aug["p_after_name"] > single["p_after_name"],
        "Q tracks QA: augmented > single": aug["q_probe"] > single["q_probe"],
    }
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    print(f"total {time.perf_counter() - t0:.0f} s, {args.people} people, {args.steps} steps")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"figures": figures, "checks": checks, "args": vars(args)}, fh, indent=1)


if __name__ == "__main__":
    main()
