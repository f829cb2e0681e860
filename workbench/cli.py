"""The ``workbench`` command: builds the parser from the subcommand plugins declared in the
``workbench.commands`` entry-point group and runs the chosen handler.

Exit codes: 0 success, 1 the work itself failed (e.g. a diverged run), 2 bad input (one line on
stderr naming the problem; nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points

from workbench.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``workbench: error: …``), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench",
                     description="Mechanistic interpretability workbench: train small "
                                 "transformers, then take them apart.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for ep in sorted(entry_points(group="workbench.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            # A plugin whose package is not installed (e.g. a slimmed install) is skipped;
            # any other import error is a bug and propagates.
            if exc.name and ep.value.startswith(exc.name):
                continue
            raise
        register(sub)
    return parser


class HelpWithKeys(argparse.Action):
    """``--help`` that also lists the config keys: ``keys(namespace)`` prints them (the
    arguments parsed before ``--help``, e.g. a task, are in ``namespace``)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None, *, keys):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.keys = keys

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        print("\nconfig keys for --set key=value (or section.key):")
        self.keys(namespace)
        parser.exit()


def emit(obj, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as one JSON object (``--json``) or ``text`` for people."""
    if as_json:
        print(json.dumps(obj, indent=None, sort_keys=True, default=str))
    elif text is not None:
        print(text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code = int(handler(args) or 0)
    except UserError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    _leave_process_group(wait=code == 0)
    return code


def _leave_process_group(*, wait: bool) -> None:
    """Under torchrun, wait for every rank (after a success) and close the process group
    before exiting: a rank that exits while a peer is still reading from its gloo connection
    can abort in gloo's teardown (SIGABRT) and fail the whole launch."""
    if "torch.distributed" not in sys.modules:  # never initialised; don't import torch for it
        return
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
