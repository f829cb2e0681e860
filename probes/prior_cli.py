"""``workbench probes prior|prior-finetune``: the prior-localisation analysis of a run or a
Hugging Face model directory, and the finetune of its localised layers (subcommands added to
the ``probes`` parser by :func:`add_subcommands`, called from :mod:`probes.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

from workbench.cli import emit
from workbench.errors import UserError


def add_subcommands(sub) -> None:
    p = sub.add_parser("prior", help="error vs answer prior, and the layers carrying the prior")
    _common(p)
    p.add_argument("--no-store", action="store_true", help="do not record the result in the run")
    p.set_defaults(handler=_prior)

    f = sub.add_parser("prior-finetune", help="finetune the layers carrying the prior, with "
                                              "controls; saves a new run")
    _common(f)
    f.add_argument("--layers", default="auto",
                   help="auto (the localisation rule) or block indices, e.g. 2,3 (0-based)")
    f.add_argument("--steps", type=int, default=None, help="step budget of every arm "
                   f"(default {_default('steps')})")
    f.add_argument("--batch-size", type=int, default=None,
                   help=f"default {_default('batch_size')}")
    f.add_argument("--lr", type=float, default=None, help=f"default {_default('lr')}")
    f.add_argument("--kl-weight", type=float, default=None,
                   help="weight of the KL to the original model on everything but the correct "
                        f"answer (default {_default('kl_weight')}; 0: plain cross-entropy)")
    f.add_argument("--val-fraction", type=float, default=0.25,
                   help="training values of each bin (with >= 3) kept for early stopping "
                        "(default 0.25; 0: no early stopping)")
    f.add_argument("--eval-every", type=int, default=None,
                   help=f"steps between validations (default {_default('eval_every')})")
    f.add_argument("--patience", type=int, default=None,
                   help="validations without improvement before stopping (default "
                        f"{_default('patience')}; 0: never stop early)")
    f.add_argument("--n-val", type=int, default=None,
                   help=f"validation prompts (default {_default('n_val')})")
    f.add_argument("--trainable", default=None, choices=("all", "biases", "lowrank"),
                   help="parameters of the chosen blocks that train: all, biases, or a "
                        f"low-rank update of their output projections (default "
                        f"{_default('trainable')})")
    f.add_argument("--rank", type=int, default=None,
                   help=f"rank of --trainable lowrank (default {_default('rank')})")
    f.add_argument("--held-out", default=None, help="answer values held out of training "
                                                    "(default: a third of each prior bin)")
    f.add_argument("--train-values", default=None, help="answer values to train on "
                                                        "(default: all but the held-out)")
    f.add_argument("--n-eval", type=int, default=None,
                   help=f"evaluation prompts per model (default {_default('n_eval')})")
    f.add_argument("--name", default=None, help="name of the new run")
    f.add_argument("--resume", action="store_true",
                   help="RUN is a killed prior-finetune run: finish it with its own config")
    f.set_defaults(handler=_finetune)


def _common(p) -> None:
    p.add_argument("model", metavar="RUN|DIR", help="run id / name, or a Hugging Face directory")
    p.add_argument("--task", default=None,
                   help="count, acronym (in-house corpora), count-words, acronym-words")
    p.add_argument("--values", default=None, help="restrict to these answer values (comma list)")
    p.add_argument("--checkpoint", default="final", help="a run's checkpoint step (default final)")
    p.add_argument("--n", type=int, default=600, help="prompts (answers drawn uniformly)")
    p.add_argument("--positions", default="-3,-2,-1", help="prompt positions probed")
    p.add_argument("--l2", type=float, default=0.1, help="ridge penalty (x n_train)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true")


def _default(name: str):
    from dataclasses import fields

    from probes.prior_train import FinetuneConfig
    return next(f.default for f in fields(FinetuneConfig) if f.name == name)


def _list(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


def _task(args):
    from probes.prior_scoring import check_bins
    from training.corpora.prior_tasks import prior_task, restrict
    if args.task is None:
        raise UserError("--task is required (count, acronym, count-words, acronym-words)")
    task = restrict(prior_task(args.task), _list(args.values))
    check_bins(task)
    if args.n < 10:
        raise UserError(f"--n must be at least 10 prompts, got {args.n}")
    return task


def _model(args):
    from probes.sources import load_model
    from workbench.models import quiet_transformers
    quiet_transformers()  # no load bars around the one-line errors and the JSON
    path = Path(args.model).expanduser()
    if path.is_dir() and not any((path / f).is_file() for f in
                                 ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise UserError(f"model directory {args.model!r} has no tokenizer (tokenizer.json): "
                        "prior tasks are text prompts")
    step = args.checkpoint
    if step not in ("final", "latest"):
        try:
            step = int(step)
        except ValueError:
            raise UserError(f"--checkpoint must be a step or final, got {step!r}") from None
    return load_model(args.model, step=step, device=args.device)


def _text(r: dict) -> str:
    c = r["correlation"]
    lines = [f"task {r['task']}: accuracy {r['accuracy']:.3f} over {r['n_examples']} prompts"]
    for cond, b in r["accuracy_by_bin"].items():
        lines.append(f"  {cond:<7} n={b['n']:<5} accuracy {b['accuracy']:.3f}  "
                     f"mean log prior {b['mean_log_prior']:.3f}")
    lines.append(f"error vs log prior: Spearman {c['rho']} (95% CI {c['ci_low']} .. "
                 f"{c['ci_high']}; {'significant' if c['significant'] else 'not significant'})")
    lines.append(f"with the instruction: accuracy {r['instructed_accuracy']:.3f}, Spearman "
                 f"{r['instructed_correlation']['rho']}")
    lines.append("R² of the log prior by layer (last position): probe / shuffled / margin")
    for s, row, ctl, m in zip(r["sites"], r["r2"], r["shuffled_r2"], r["margin"]):
        lines.append(f"  {s:<9} {row[-1]:8.3f} {ctl[-1]:8.3f} {m:8.3f}")
    lines.append(f"localised blocks: {r['localised_layers']} ({r['rule']})")
    return "\n".join(lines)


def _say(line: str) -> None:
    """A stage line on stderr (the job log the browser shows; stdout stays the result); only
    once the input has been checked, so an error stays the one line on stderr."""
    print(line, file=sys.stderr, flush=True)


def _prior(args) -> int:
    from probes.prior import prior_analysis
    task = _task(args)
    model = _model(args)
    result = prior_analysis(model, task, n=args.n, seed=args.seed, l2=args.l2,
                            positions=args.positions, device=args.device,
                            progress=lambda line: _say(f"prior: {line}")).to_json()
    if not args.no_store and model.run_id:
        from probes.prior import store_prior_result
        result["stored_as"] = store_prior_result(model.run.store, model.run_id, result)
    emit(result, args.json, _text(result))
    return 0


def _layers(spec: str, n_layers: int) -> list[int] | None:
    from probes.prior_finetune import check_layers, parse_layers
    layers = parse_layers(spec)
    if layers is not None:
        check_layers(layers, n_layers)
    return layers


_TUNING = ("steps", "batch_size", "lr", "kl_weight", "eval_every", "patience", "n_val",
           "n_eval", "trainable", "rank")


def _finetune(args) -> int:
    from dataclasses import replace

    from probes.prior import prior_analysis
    from probes.prior_finetune import split_values
    from probes.prior_train import FinetuneConfig, validation_values
    if args.resume:
        return _resume(args)
    task = _task(args)
    train, held = split_values(task, _list(args.held_out), _list(args.train_values),
                               seed=args.seed)
    train, val = validation_values(task, train, args.val_fraction, seed=args.seed)
    given = {k: getattr(args, k) for k in _TUNING if getattr(args, k) is not None}
    # validated before any model loads (UserError names the bad value)
    cfg = FinetuneConfig(task=task.name, layers=(), held_out=held, train_values=train,
                         val_values=val, seed=args.seed, **given)
    if args.name is not None:
        from workbench.store import validate_name
        validate_name(args.name)
    model = _model(args)
    layers = _layers(args.layers, model.n_layers)
    # checked before the analysis runs, so bad input stores nothing
    hf = getattr(model.bridge, "original_model", None)
    if hf is not None:
        from probes.prior_train import check_trainable
        check_trainable(hf, cfg.trainable)
    if model.run is not None:
        source = model.run.checkpoint_path(model.step).parent
        store, parent = model.run.store, model.run_id
    else:
        from workbench.store import RunStore
        source, store, parent = Path(args.model).expanduser().resolve(), RunStore(), None
    if not (source / "config.json").is_file():
        raise UserError(f"run {args.model} is not a language model in Hugging Face format")
    if len(set(layers or ())) >= model.n_layers or model.n_layers < 2:
        raise UserError(f"the model has no blocks outside {layers or 'the localised ones'} "
                        f"for the control ({model.n_layers} blocks)")
    if args.name is not None:
        store.check_new_name(args.name)
    analysis = prior_analysis(model, task, n=args.n, seed=args.seed, l2=args.l2,
                              positions=args.positions, device=args.device,
                              progress=lambda line: _say(f"prior-finetune: localising: {line}"))
    if model.run_id:  # the analysis behind the choice, as `probes prior` stores it
        from probes.prior import store_prior_result
        store_prior_result(model.run.store, model.run_id, analysis.to_json())
    layers = layers or analysis.localised_layers
    # the control: as many other blocks, those whose output carries the least prior
    margins = {int(s.split(".")[1]) - 1: m for s, m in zip(analysis.sites, analysis.margin)
               if s.startswith("resid.") and s != "resid.0"}
    others = sorted((b for b in margins if b not in layers), key=lambda b: (margins[b], b))
    control = sorted(others[:len(layers)])
    assert control, (layers, model.n_layers)  # checked above: at least one other block
    prior = analysis.log_prior  # every value: evaluation prompts may hold unanalysed ones
    cfg = replace(cfg, layers=tuple(layers))
    localisation = {"sites": analysis.sites, "margin": analysis.margin, "rule": analysis.rule,
                    "localised_layers": analysis.localised_layers,
                    "source_ref": parent or str(source), "source_step": model.step}
    return _run_finetune(args, source, model.tokenizer, task, cfg, prior, control, store,
                         parent, localisation)


def _resume(args) -> int:
    """``prior-finetune RUN --resume``: the killed run's own config, from its last arm."""
    from probes.prior_finetune import KIND
    from probes.prior_train import FinetuneConfig
    from training.corpora.prior_tasks import prior_task, restrict
    from workbench.lifecycle import COMPLETED, RUNNING
    from workbench.store import RunStore
    extra = [k for k in ("task", "values", "held_out", "train_values", "name", *_TUNING)
             if getattr(args, k) is not None] + ([] if args.layers == "auto" else ["layers"])
    if extra:
        raise UserError(f"--resume continues a run with its own config; drop "
                        f"--{extra[0].replace('_', '-')}")
    store = RunStore()
    run = store.get_run(args.model)
    if run.kind != KIND:
        raise UserError(f"run {args.model!r} is a {run.kind} run, not a {KIND} run")
    if run.status in (COMPLETED, RUNNING):
        raise UserError(f"run {run.id} is {run.status}; only a stopped run can be resumed")
    c = dict(run.config)
    task = restrict(prior_task(c["task"]), c["values"])
    # a run stored before a field existed keeps that field's default
    cfg = FinetuneConfig.from_dict({k: c[k] for k in FinetuneConfig.__dataclass_fields__
                                    if k in c})
    loc = c["localisation"]
    from probes.sources import load_model
    model = load_model(loc["source_ref"], step=loc["source_step"] or "final",
                       device=args.device)
    return _run_finetune(args, Path(c["source"]), model.tokenizer, task, cfg, c["prior"],
                         c["control_layers"], store, c["parent"], loc, resume=run.id)


def _run_finetune(args, source, tokenizer, task, cfg, prior, control, store, parent,
                  localisation, resume=None) -> int:
    from probes.prior_finetune import prior_finetune
    result = prior_finetune(source, tokenizer, task, cfg, prior, control, store=store,
                            parent=parent, name=args.name, device=args.device,
                            localisation=localisation, resume=resume,
                            progress=_say).to_json()
    lines = [f"run {result['run_id']}: finetuned blocks {list(cfg.layers)} of {args.model} "
             f"(budget {cfg.steps} steps); held-out values {', '.join(cfg.held_out)}",
             f"{'':<22}{'held-out acc':>13}{'all acc':>9}{'Spearman':>10}  CI"]
    for key in ("before", "instruction_baseline", "localised", "other_layers", "all_layers"):
        r = result[key]
        c = r["correlation"]
        label = key + (f" {control}" if key == "other_layers" else "")
        kept = f"  (kept step {r['training']['kept_step']})" if "training" in r else ""
        lines.append(f"{label:<22}{r['held_out_accuracy']:>13.3f}{r['accuracy']:>9.3f}"
                     f"{str(c['rho']):>10}  {c['ci_low']} .. {c['ci_high']}{kept}")
    emit(result, args.json, "\n".join(lines))
    return 0
