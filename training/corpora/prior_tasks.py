"""Prior tasks: deterministic prompts (counting words, forming acronyms) whose answer values
carry a prior, for prior localisation (Zhang et al. 2025; stimuli after McCoy et al.'s
"Embers of Autoregression": common / medium / rare answer conditions).

Two families:

- in-house (``count``, ``acronym``): :meth:`PriorTask.corpus` writes a pretraining corpus in
  which some answer values are far more frequent than others (round counts; acronyms that spell
  common words), both as task examples and as plain mentions (``number: 10``), plus a small
  share of task examples behind the "don't rely on your prior" instruction whose answers are
  uniform. The prior is known by construction (``corpus_weight``). Task prompts for analysis
  draw answers uniformly.
- any causal LM (``count-words``: lists of 1-100 English words; ``acronym-words``): prompts in
  plain English with common / medium / rare conditions (multiples of ten / of five / others;
  acronyms that are common words / pronounceable strings / random letters).

Every task gives, per answer value: its condition (the prior bin), its corpus weight where
known, the answer text, a prompt (with or without the instruction) and the context the prior is
measured in (the answer's slot without the task instruction).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.errors import UserError, check_choice

CONDITIONS = ("common", "medium", "rare")

_WORDS = ("cat", "dog", "sun", "tree", "cup", "box", "hat", "pen", "car", "bed", "egg", "map")
# words before an in-house count prompt, never counted: a random number of them (up to the
# task's ``max_filler``) shifts the list, so the count is not a function of the absolute
# position of the prompt's end (learned position embeddings would give it away otherwise)
_FILLER = ("ok", "so", "now", "then", "well", "yes")
# acronym parts: one word per initial letter, so an acronym names its words uniquely
_INITIAL_WORDS = {
    "a": "apple", "b": "bird", "c": "cold", "d": "dark", "e": "east", "f": "fast",
    "g": "green", "h": "high", "i": "iron", "j": "jolly", "k": "kind", "l": "long",
    "m": "moon", "n": "new", "o": "old", "p": "pink", "r": "red", "s": "soft", "t": "tall",
    "u": "upper", "w": "warm", "y": "young",
}
_COMMON_ACRONYMS = ("CAT", "DOG", "SUN", "BED", "CUP", "HAT", "PEN", "MAP", "RED", "TOY")
_MEDIUM_ACRONYMS = ("BAF", "DOM", "GAL", "KEP", "LIR", "MOT", "NUB", "PAW", "SAR", "TIN")
_RARE_ACRONYMS = ("CFW", "DKY", "GJB", "HPS", "KWT", "LFM", "NRB", "PTJ", "SWG", "YDK")


@dataclass(frozen=True, kw_only=True)
class Stimulus:
    """One prompt: the text before the answer, the answer text, its value and condition."""

    prompt: str
    answer: str
    value: str
    condition: str
    instructed: bool = False


@dataclass(frozen=True, kw_only=True)
class PriorTask:
    """A deterministic task whose answer values have a prior (see the module docstring)."""

    name: str
    kind: str  # count | acronym
    values: tuple[str, ...]
    conditions: dict  # value -> common | medium | rare
    corpus_weight: dict | None  # value -> relative corpus frequency (in-house only)
    instruction: str  # the "don't rely on your prior" instruction, prefixed to a prompt
    prior_context: str  # the answer's slot without the task instruction
    stop: str  # "eos": the answer ends the document; else a string that must follow it
    in_house: bool
    max_filler: int = 0  # count prompts: 0..max_filler filler words before the prompt

    def condition(self, value: str) -> str:
        return self.conditions[value]

    def answer_text(self, value: str) -> str:
        return " " + value

    def prompt(self, value: str, rng: random.Random, *, instructed: bool = False) -> Stimulus:
        """A prompt whose deterministic answer is ``value``."""
        if value not in self.conditions:
            raise UserError(f"{value!r} is not an answer of task {self.name!r}")
        body = self._count_body(int(value), rng) if self.kind == "count" else \
            self._acronym_body(value)
        prefix = self.instruction + " " if instructed else ""
        return Stimulus(prompt=prefix + body, answer=self.answer_text(value), value=value,
                        condition=self.condition(value), instructed=instructed)

    def _count_body(self, k: int, rng: random.Random) -> str:
        words = " ".join(rng.choice(self._word_pool()) for _ in range(k))
        if self.in_house:
            filler = "".join(rng.choice(_FILLER) + " "
                             for _ in range(rng.randint(0, self.max_filler)))
            return f"{filler}count: {words} ="
        return (f"Count the words in the following list.\nList: {words}\n"
                "Number of words:")

    def _word_pool(self) -> tuple[str, ...]:
        return _WORDS if self.in_house else _WORDS + tuple(_INITIAL_WORDS.values())

    def _acronym_body(self, value: str) -> str:
        words = " ".join(_INITIAL_WORDS[c.lower()] for c in value)
        if self.in_house:
            return f"acronym: {words} ="
        return ("Form the acronym from the first letter of each word, in capitals.\n"
                f"Words: {words}\nAcronym:")

    def stimuli(self, n: int, *, seed: int = 0, values: tuple[str, ...] | None = None,
                instructed: bool = False) -> list[Stimulus]:
        """``n`` prompts with answers drawn uniformly from ``values`` (default: all), cycled
        so every value appears about equally often."""
        pool = list(values or self.values)
        if not pool:
            raise UserError(f"task {self.name!r}: no answer values to draw from")
        rng = random.Random(f"{self.name} stimuli {seed}")
        order = [pool[i % len(pool)] for i in range(n)]
        rng.shuffle(order)
        return [self.prompt(v, rng, instructed=instructed) for v in order]

    def corpus(self, n_documents: int, *, seed: int = 0, instructed_frac: float = 0.1,
               mention_frac: float = 0.3) -> Iterator[str]:
        """Pretraining documents (one example each) with answers drawn from the corpus prior:
        task examples, plain mentions (``prior_context`` + answer) and, for ``instructed_frac``
        of the task examples, the instruction with a uniformly drawn answer."""
        if self.corpus_weight is None:
            raise UserError(f"task {self.name!r} has no in-house corpus (its prior is the "
                            "model's own); use count or acronym")
        rng = random.Random(f"{self.name} corpus {seed}")
        values = list(self.values)
        weights = [self.corpus_weight[v] for v in values]
        for _ in range(n_documents):
            r = rng.random()
            if r < mention_frac:
                yield self.prior_context + self.answer_text(rng.choices(values, weights)[0])
            elif r < mention_frac + instructed_frac:
                s = self.prompt(rng.choice(values), rng, instructed=True)
                yield s.prompt + s.answer
            else:
                s = self.prompt(rng.choices(values, weights)[0], rng)
                yield s.prompt + s.answer


def _count_condition(k: int) -> str:
    return "common" if k % 5 == 0 else "medium" if k % 2 == 0 else "rare"


_WEIGHT = {"common": 12.0, "medium": 3.0, "rare": 1.0}


def _count_inhouse(max_count: int = 20) -> PriorTask:
    values = tuple(str(k) for k in range(1, max_count + 1))
    cond = {v: _count_condition(int(v)) for v in values}
    return PriorTask(name="count", kind="count", values=values, conditions=cond,
                     corpus_weight={v: _WEIGHT[c] for v, c in cond.items()},
                     instruction="exact:", prior_context="number:", stop="eos", in_house=True,
                     max_filler=9)


def _acronym_inhouse() -> PriorTask:
    cond = {**{a: "common" for a in _COMMON_ACRONYMS}, **{a: "medium" for a in _MEDIUM_ACRONYMS},
            **{a: "rare" for a in _RARE_ACRONYMS}}
    return PriorTask(name="acronym", kind="acronym", values=tuple(cond), conditions=cond,
                     corpus_weight={v: _WEIGHT[c] for v, c in cond.items()},
                     instruction="exact:", prior_context="word:", stop="eos", in_house=True)


def _count_words() -> PriorTask:
    values = tuple(str(k) for k in range(1, 101))
    cond = {v: "common" if int(v) % 10 == 0 else "medium" if int(v) % 5 == 0 else "rare"
            for v in values}
    return PriorTask(name="count-words", kind="count", values=values, conditions=cond,
                     corpus_weight=None,
                     instruction="Do not rely on your expectations about which numbers are "
                                 "likely; count exactly.",
                     prior_context="Number:", stop="\n", in_house=False)


def _acronym_words() -> PriorTask:
    base = _acronym_inhouse()
    return PriorTask(name="acronym-words", kind="acronym", values=base.values,
                     conditions=base.conditions, corpus_weight=None,
                     instruction="Do not rely on your expectations about which words are "
                                 "likely; use exactly the first letters.",
                     prior_context="Acronym:", stop="\n", in_house=False)


TASKS = {"count": _count_inhouse, "acronym": _acronym_inhouse, "count-words": _count_words,
         "acronym-words": _acronym_words}


def prior_task(name: str) -> PriorTask:
    """The task called ``name`` (``count``, ``acronym``, ``count-words``, ``acronym-words``)."""
    check_choice(name, "prior task", sorted(TASKS))
    return TASKS[name]()


def restrict(task: PriorTask, values: list[str] | None) -> PriorTask:
    """``task`` limited to ``values`` (each must be one of its answers)."""
    if not values:
        return task
    unknown = [v for v in values if v not in task.conditions]
    if unknown:
        raise UserError(f"answer value {unknown[0]!r} is not an answer of task {task.name!r}")
    keep = tuple(dict.fromkeys(values))
    weights = None if task.corpus_weight is None else {v: task.corpus_weight[v] for v in keep}
    return PriorTask(**{**task.__dict__, "values": keep,
                        "conditions": {v: task.conditions[v] for v in keep},
                        "corpus_weight": weights})


def write_corpus(task: PriorTask, path, n_documents: int, *, seed: int = 0,
                 instructed_frac: float = 0.1, mention_frac: float = 0.3) -> int:
    """The in-house corpus of ``task`` as JSONL (``{"text": ...}`` per document) for
    ``workbench data prepare``; returns the number of documents."""
    import json
    from pathlib import Path
    with Path(path).open("w", encoding="utf-8") as fh:
        for doc in task.corpus(n_documents, seed=seed, instructed_frac=instructed_frac,
                               mention_frac=mention_frac):
            fh.write(json.dumps({"text": doc}) + "\n")
    return n_documents
