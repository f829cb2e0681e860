"""``workbench data prepare`` and ``workbench pretrain``: the CLI faces of
:mod:`training.lm.prepare` and :mod:`training.lm.api` (both also run under ``torchrun``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys

from training.config import parse_set_args
from training.lm.config import DERIVED, PRESETS, LMModelConfig, PretrainConfig
from training.lm.prepare import DEFAULT_CHUNK_BYTES, DEFAULT_SHARD_TOKENS
from workbench.cli import HelpWithKeys, emit
from workbench.errors import UserError
from workbench.lifecycle import raise_interrupt


def register_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare text corpora for pretraining")
    data_sub = p.add_subparsers(dest="data_command", metavar="COMMAND",
                                parser_class=type(p))
    prep = data_sub.add_parser("prepare", help="tokenise text into token shards + manifest")
    prep.add_argument("sources", nargs="*", metavar="SRC",
                      help="text (.txt), JSONL ({\"text\": ...}), Parquet, a saved HF datasets "
                           "directory, or builtin:arithmetic|biographies|default[:N]")
    prep.add_argument("--tokenizer", required=True, metavar="train:VOCAB|DIR",
                      help="train a byte-level BPE of VOCAB tokens, or use DIR/tokenizer.json")
    prep.add_argument("-o", "--output", required=True, metavar="DATA",
                      help="new output directory")
    prep.add_argument("--val-frac", type=float, default=0.0, metavar="F",
                      help="fraction of documents held out for validation (by text hash)")
    prep.add_argument("--dtype", default="auto", choices=["auto", "uint16", "uint32"])
    prep.add_argument("--shard-tokens", type=int, default=DEFAULT_SHARD_TOKENS)
    prep.add_argument("--chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES,
                      help="text tokenised per batch (bounds memory)")
    prep.add_argument("--no-progress", action="store_true")
    prep.add_argument("--json", action="store_true", help="print one JSON object")
    # one handler on the parent: argparse lets a parent's defaults mask a subparser's
    p.set_defaults(handler=lambda args: _prepare(args) if args.data_command == "prepare"
                   else (p.print_help(), 2)[1])


def _prepare(args) -> int:
    from training.lm.prepare import prepare

    result = prepare(args.sources, tokenizer=args.tokenizer, output=args.output,
                     val_frac=args.val_frac, dtype=args.dtype, shard_tokens=args.shard_tokens,
                     chunk_bytes=args.chunk_bytes, progress=not args.no_progress)
    text = (f"{result.output}: {result.train_tokens:,} train + {result.val_tokens:,} val "
            f"tokens ({result.dtype}, vocabulary {result.vocab_size}) from "
            f"{result.documents:,} documents in {result.seconds:.1f}s "
            f"({result.tokens_per_second:,.0f} tokens/s)")
    emit(result.to_json(), args.json, text)
    return 0


def _print_pretrain_keys(namespace) -> None:
    """The config keys and presets of ``workbench pretrain``."""
    print("  model: " + ", ".join(f.name for f in dataclasses.fields(LMModelConfig)
                                  if f.name not in DERIVED))
    print("  train: " + ", ".join(f.name for f in dataclasses.fields(PretrainConfig)))
    print("presets: " + ", ".join(PRESETS))


def register_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a language model on prepared data",
                       add_help=False)
    p.add_argument("-h", "--help", action=HelpWithKeys, keys=_print_pretrain_keys,
                   help="show this help and the config keys")
    p.add_argument("--data", metavar="DATA", help="a directory made by `workbench data prepare`")
    p.add_argument("--preset", default="tiny", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--config", dest="config_file", metavar="FILE",
                   help="JSON or YAML file of config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable)")
    p.add_argument("--name", help="a unique name for the run")
    p.add_argument("--resume", metavar="RUN", help="resume an interrupted run")
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the job runner pre-creates the run
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(handler=_pretrain)


def _pretrain(args) -> int:
    from training.lm.api import pretrain
    from training.trainer import TrainingFailed

    signal.signal(signal.SIGTERM, raise_interrupt)  # a cancelled job stops like Ctrl-C
    if args.resume and (args.data or args.overrides or args.config_file):
        raise UserError("--resume continues a run with its own config; "
                        "give no --data, --set or --config with it")
    if args.run_id:
        from workbench.store import RunStore
        run = RunStore().get_run(args.run_id)
        if args.resume is None and run.status != "created":
            args.resume = run.id
    try:
        result = pretrain(args.data, preset=args.preset,
                          overrides=parse_set_args(args.overrides),
                          config_file=args.config_file, name=args.name, resume=args.resume,
                          progress=not args.no_progress,
                          run_id=args.run_id if args.resume is None else None)
    except TrainingFailed as exc:
        print(f"workbench: run failed: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    val = "n/a" if result.val_loss is None else f"{result.val_loss:.4f}"
    text = (f"run {result.run_id}: {result.steps} steps, {result.tokens:,} tokens in "
            f"{result.wall_seconds:.1f}s on {result.world_size} x {result.device}\n"
            f"  train loss {result.train_loss:.4f}  val loss {val}\n"
            f"  {result.tokens_per_second:,.0f} tokens/s  MFU {result.mfu:.1%}\n"
            f"  model {result.output_dir}")
    emit(result.to_json(), args.json, text)
    return 0
