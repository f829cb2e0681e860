"""Walkthrough: a circuit with a known answer. Train a small Transformer Program, compile it into
a standard transformer, and check what Edge Pruning finds against the program's true circuit.

    python examples/program_ground_truth.py

The same path as the CLI:

    workbench programs train reverse --preset tiny --set n_num_heads=0 --set n_num_mlps=0 ...
    workbench programs compile RUN --name reverse-compiled
    workbench circuits discover --model reverse-compiled --task resample --json
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> dict:
    from circuits.api import discover
    from programs.api import train_run
    from programs.compiled_run import compile_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--steps", type=int, default=1000, help="Edge Pruning steps")
    args = parser.parse_args(argv)

    # categorical heads and MLPs only: the smallest true circuit (counting heads compile too,
    # each with its BOS sink and decoding units)
    program = train_run("reverse", preset_name="tiny",
                        overrides={"epochs": args.epochs, "n_num_heads": 0, "n_num_mlps": 0},
                        task_params={"max_len": 5, "vocab_size": 3, "n_samples": 300})
    print(f"program run {program['run_id']}: test accuracy {program['test_acc']:.3f}, "
          f"{program['program_lines']} lines of Python")
    compiled = compile_run(program["run_id"])
    print(f"compiled run {compiled['run_id']}: {compiled['n_layers']} layers, d_model "
          f"{compiled['d_model']}, true circuit {compiled['ground_truth_edges']} edges")
    # target 1.0 asks for the sparsest circuit; a slow Lagrangian (small multiplier rate) lets
    # the KL term hold every edge the output needs (the settings of the ground-truth tests)
    found = discover(compiled["run_id"], "resample", target_sparsity=1.0, steps=args.steps,
                     lr=0.1, lambda_lr=0.002, ablation="zero", n_examples=256)
    # precision: every kept edge is one the program really computes through. Recall counts
    # every edge of the compiled computation, including ones whose removal barely moves the
    # outputs on this data (a trained program keeps redundant heads): those are dropped at
    # this KL, not missed by mistake
    truth = found.ground_truth
    print(f"Edge Pruning kept {found.n_edges}/{found.total_edges} edges, KL {found.kl:.3g}: "
          f"precision {truth['precision']:.2f}, recall {truth['recall']:.2f} against the "
          f"program's circuit; missing {truth['missing']}")
    return {"program": program, "compiled": compiled, "found": found.to_json()}


if __name__ == "__main__":
    main()
