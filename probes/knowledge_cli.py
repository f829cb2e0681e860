"""``workbench probes knowledge run``: the bioS knowledge-storage experiment end to end
(:mod:`probes.knowledge`), added to the ``probes`` parser by :func:`add_subcommands`."""

from __future__ import annotations

import json

from workbench.cli import emit
from workbench.errors import UserError


def add_subcommands(sub) -> None:
    from probes.knowledge import KnowledgeConfig
    defaults = KnowledgeConfig()
    k = sub.add_parser("knowledge", help="bioS knowledge storage: QA, P-probes, Q-probes")
    ksub = k.add_subparsers(dest="knowledge_command", metavar="SUBCOMMAND",
                            parser_class=type(k))
    k.set_defaults(handler=lambda args: (k.print_help(), 2)[1])
    r = ksub.add_parser("run", help="generate bioS, pretrain, QA and probe, end to end")
    r.add_argument("--people", type=int, default=defaults.people)
    r.add_argument("--augmentation", default=defaults.augmentation,
                   help="single, multiM, permute, permuteK, fullname joined by '+'")
    r.add_argument("--protocol", default=defaults.protocol,
                   choices=["pretrain-finetune", "mixed"])
    r.add_argument("--steps", type=int, default=defaults.steps, help="pretraining steps")
    r.add_argument("--finetune-steps", type=int, default=defaults.finetune_steps)
    r.add_argument("--probe-steps", type=int, default=defaults.probe_steps)
    r.add_argument("--series-checkpoints", type=int, default=defaults.series_checkpoints,
                   metavar="N",
                   help="Q-probe (and P-probe at the name) N checkpoints of the pretraining "
                        "series, for accuracy over training; 0: none")
    r.add_argument("--qa-fraction", type=float, default=defaults.qa_fraction,
                   help="mixed: QA share of the training sequences")
    r.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    r.add_argument("--batch-size", type=int, default=defaults.batch_size)
    r.add_argument("--lr", type=float, default=defaults.lr)
    r.add_argument("--model", default=None,
                   help="model overrides as JSON, on top of the knowledge defaults "
                        f"{json.dumps(defaults.model)}, e.g. '{{\"n_layers\": 4}}'")
    r.add_argument("--seed", type=int, default=defaults.seed)
    r.add_argument("--pool-size", type=int, default=None, metavar="K",
                   help="values per attribute (years, cities, universities, majors, employers); "
                        "default people/25, so every value occurs on both sides of the probes' "
                        "split; 0: the whole pools")
    r.add_argument("--name", default=None, help="name of the pretrain run")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=_run)


def _run(args) -> int:
    import sys

    from probes.knowledge import KNOWLEDGE_MODEL, KnowledgeConfig, check_pretraining, \
        format_result, run_knowledge
    model = {}
    if args.model:
        try:
            model = json.loads(args.model)
        except json.JSONDecodeError as exc:
            raise UserError(f"--model is not JSON: {exc}") from None
        if not isinstance(model, dict):
            raise UserError(f"--model must be a JSON object, got {args.model!r}")
    model = {**KNOWLEDGE_MODEL, **model}
    cfg = KnowledgeConfig(people=args.people, augmentation=args.augmentation,
                          protocol=args.protocol, steps=args.steps,
                          finetune_steps=args.finetune_steps, probe_steps=args.probe_steps,
                          series_checkpoints=args.series_checkpoints,
                          qa_fraction=args.qa_fraction, vocab_size=args.vocab_size,
                          batch_size=args.batch_size, lr=args.lr, model=model, seed=args.seed,
                          pool_size=args.pool_size)
    check_pretraining(cfg)
    result = run_knowledge(cfg, name=args.name, progress=not args.json and sys.stderr.isatty())
    emit(result.to_json(), args.json, format_result(result))
    return 0
