"""The embedded default corpus, generated offline and deterministically: simple arithmetic
text (sums, differences and products of small numbers) and, when the knowledge-probes
biography generator is present (:mod:`training.corpora.biographies`), synthetic biographies.

Sources name it as ``builtin:arithmetic``, ``builtin:biographies`` or ``builtin:default``
(both), each optionally with a size: ``builtin:arithmetic:2000`` (documents),
``builtin:biographies:500`` (people, five biographies each); ``default:N`` uses N for both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from workbench.errors import UserError

DEFAULT_DOCUMENTS = 3000
DEFAULT_PEOPLE = 300
_LINES_PER_DOC = 8


def arithmetic_documents(n_documents: int = DEFAULT_DOCUMENTS, seed: int = 0) -> Iterator[str]:
    """Documents of eight equations each, e.g. ``"17 + 25 = 42"``, in a fixed order."""
    rng = random.Random(seed)
    for _ in range(n_documents):
        lines = []
        for _ in range(_LINES_PER_DOC):
            a, b = rng.randrange(100), rng.randrange(100)
            op = rng.choice("+-*")
            if op == "-" and b > a:
                a, b = b, a
            value = a + b if op == "+" else a - b if op == "-" else a * b
            lines.append(f"{a} {op} {b} = {value}")
        yield "\n".join(lines)


def biography_documents(n_people: int = DEFAULT_PEOPLE, seed: int = 0) -> Iterator[str]:
    """bioS biographies of ``n_people`` people (the knowledge-probes issue's default stream:
    five entries each, sentences permuted, full names), shuffled."""
    try:
        from training.corpora.biographies import bios_corpus
    except ImportError:
        raise UserError("builtin:biographies needs training.corpora.biographies, which is not "
                        "installed; use builtin:arithmetic") from None
    yield from bios_corpus(n_people=n_people, seed=seed)


def builtin_names() -> list[str]:
    return ["arithmetic", "biographies", "default"]


def has_biographies() -> bool:
    try:
        from training.corpora import biographies  # noqa: F401
    except ImportError:
        return False
    return True


def parse_builtin(source: str) -> tuple[str, int]:
    """``builtin:NAME[:N]`` -> (NAME, N)."""
    parts = source.split(":")
    name = parts[1] if len(parts) > 1 else ""
    if name not in builtin_names() or len(parts) > 3:
        raise UserError(f"unknown built-in corpus {source!r}; use builtin:"
                        + " or builtin:".join(builtin_names()) + " (optionally :N documents)")
    n = DEFAULT_PEOPLE if name == "biographies" else DEFAULT_DOCUMENTS
    if len(parts) == 3:
        try:
            n = int(parts[2])
        except ValueError:
            n = 0
        if n <= 0:
            raise UserError(f"built-in corpus size must be a positive integer, got {parts[2]!r}")
    if name == "biographies" and not has_biographies():
        biography_documents(1).__next__()  # raises the UserError naming what is missing
    return name, n


def builtin_documents(source: str) -> Iterator[str]:
    name, n = parse_builtin(source)
    if name in ("arithmetic", "default"):
        yield from arithmetic_documents(n)
    if name == "biographies" or (name == "default" and has_biographies()):
        yield from biography_documents(n if len(source.split(":")) == 3 else DEFAULT_PEOPLE)
