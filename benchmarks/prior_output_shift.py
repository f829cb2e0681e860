"""Why the prior finetune does not carry to held-out answer values on the in-house count model:
a shared prior direction exists at the output, but cross-entropy on the training values does
not find it.

On the model of benchmarks/prior_reference.py (a run named ``prior-reference`` in
``$WORKBENCH_HOME``, or ``--run``), for each held-out split (the finetune's rule,
``split_values`` / ``validation_values`` with seed 0, 1, ...):

1. **prior direction**: a ridge regression (l2 0.01) from the unembeddings of the *training*
   values' answer tokens to their log corpus weight gives a direction f of the final hidden
   state (after the last norm). Shifting every prompt's final state by -s f lowers each answer's
   logit by s times its predicted log prior, held-out values included. Printed: accuracy on
   held-out and on training values for several s;
2. **learned shift**: a free vector d added to the final state, trained by cross-entropy on
   basic prompts whose answers are training values (stratified by prior bin, as the finetune
   draws them), with SGD and with Adam. Printed: the same accuracies every 50 steps.

The first is the generic fix the paper's finetune is credited with; the second is what the
finetune's loss rewards. Every count is one token with 20 values in 64 dimensions, so the
training values' logits can be raised one by one, and the loss never asks for the shared part.

    python benchmarks/prior_output_shift.py [--run prior-reference] [--splits 4]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

SHIFTS = (0.0, 0.5, 1.0, 1.5)
OPTIMISERS = (("sgd", 1.0), ("adam", 0.01))  # (name, lr)
STEPS = 300


def final_states(hf, prompts: list[list[int]]) -> torch.Tensor:
    """The final hidden state (after the last norm) at each prompt's last token: [n, d]."""
    out = []
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([ids])  # [1, s]
            out.append(hf(x, output_hidden_states=True).hidden_states[-1][0, -1])
    return torch.stack(out)


def prior_direction(unembed: np.ndarray, log_weight: np.ndarray, l2: float = 0.01
                    ) -> np.ndarray:
    """Ridge weights w (d,) with unembed @ w ~ log_weight (both centred): [v, d], [v] -> [d]."""
    x = unembed - unembed.mean(0)
    y = log_weight - log_weight.mean()
    return np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ y)


def measure(run: str, splits: int = 4, n: int = 600) -> list[dict]:
    """Per split: held-out values, and (held-out, training-value) accuracy for each shift s of
    the prior direction and every 50 steps of each learned shift."""
    from probes.prior_finetune import split_values
    from probes.prior_scoring import Encoder
    from probes.prior_train import FinetuneConfig, train_batches, validation_values
    from probes.sources import load_model
    from training.corpora.prior_tasks import prior_task
    from workbench.models import load_causal_lm

    torch.manual_seed(0)
    task = prior_task("count")
    model = load_model(run)
    enc = Encoder(model.tokenizer, task)
    hf = load_causal_lm(model.run.checkpoint_path(model.step).parent, None).eval()
    tokens = [enc.answer_ids(v)[0] for v in task.values]
    assert all(len(enc.answer_ids(v)) == 2 for v in task.values), "one token per count"
    unembed = hf.get_output_embeddings().weight.detach()  # [V, d]
    values = np.array(task.values)
    log_weight = np.log([task.corpus_weight[v] for v in task.values])
    stimuli = task.stimuli(n, seed=5)
    states = final_states(hf, [enc.encode(s).prompt for s in stimuli])  # [n, d]
    answers = np.array([s.value for s in stimuli])

    def accuracy(shift: torch.Tensor, held, train) -> tuple[float, float]:
        with torch.no_grad():
            pred = values[((states + shift) @ unembed[tokens].T).argmax(1).numpy()]
        ok = pred == answers
        return (round(float(ok[np.isin(answers, held)].mean()), 3),
                round(float(ok[np.isin(answers, train)].mean()), 3))

    out = []
    for seed in range(splits):
        train, held = split_values(task, seed=seed)
        train, _ = validation_values(task, train, 0.25, seed=seed)
        rows = [task.values.index(v) for v in train]
        f = torch.tensor(prior_direction(unembed[tokens].numpy()[rows].astype(np.float64),
                                         log_weight[rows]), dtype=torch.float32)  # [d]
        result = {"held_out": list(held),
                  "prior_direction": {s: accuracy(-s * f, held, train) for s in SHIFTS},
                  "learned": {}}
        # the finetune's own draw: answers stratified by prior bin, training values only
        (drawn,) = train_batches(task, enc, FinetuneConfig(
            task=task.name, layers=(), held_out=held, train_values=train, steps=1,
            batch_size=1500, seed=seed))
        train_states = final_states(hf, [prompt for prompt, _ in drawn])  # [m, d]
        targets = torch.tensor([answer[0] for _, answer in drawn])  # [m]
        for name, lr in OPTIMISERS:
            shift = torch.zeros(states.shape[1], requires_grad=True)  # [d]
            opt = (torch.optim.SGD if name == "sgd" else torch.optim.Adam)([shift], lr=lr)
            curve = []
            for step in range(STEPS + 1):
                if step % 50 == 0:
                    curve.append((step, *accuracy(shift.detach(), held, train)))
                batch = torch.randint(0, len(drawn), (64,))  # [64]
                logits = (train_states[batch] + shift) @ unembed.T  # [64, V]
                loss = torch.nn.functional.cross_entropy(logits, targets[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
            result["learned"][name] = curve
        out.append(result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="prior-reference")
    ap.add_argument("--splits", type=int, default=4)
    ap.add_argument("--n", type=int, default=600, help="evaluation prompts")
    args = ap.parse_args()
    print(f"{args.run}: accuracy on held-out / training values ({args.n} prompts)")
    for seed, r in enumerate(measure(args.run, args.splits, args.n)):
        print(f"\nsplit {seed}: held out {', '.join(r['held_out'])}")
        print("  prior direction  " + "   ".join(f"s={s}: {h:.2f} / {t:.2f}" for s, (h, t)
                                                 in r["prior_direction"].items()))
        for name, curve in r["learned"].items():
            print(f"  learned ({name:<4})  " + "   ".join(f"{step}: {h:.2f} / {t:.2f}"
                                                        for step, h, t in curve))


if __name__ == "__main__":
    main()
