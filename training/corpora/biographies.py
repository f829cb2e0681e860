"""Synthetic biographies (bioS of Allen-Zhu & Li, "Physics of Language Models 3.1"): people,
their biographies with character spans, QA pairs and the entity-level split.

A person has a unique full name and six attributes drawn independently (birth date, birth
city, university, major, employer; the employer's city follows from the employer). A biography
is six sentences, one per attribute, each from that attribute's 40 templates; the full name in
the first sentence, pronouns after ("single"). Augmentations (combined with ``+``):

- ``multiM``: M entries per person, the templates redrawn for each;
- ``permute``: the sentence order shuffled in every entry (the full name stays in whichever
  sentence comes first); ``permuteK``: K differently ordered copies of every entry;
- ``fullname``: the full name in every sentence instead of a pronoun.

Every biography carries the character spans of each occurrence of the name and of each
attribute's value, so probes can find "the token just before attribute a" after tokenisation
(:func:`token_index`). Everything is a pure function of ``seed``: each person and each entry
draws from its own string-seeded RNG, so a result does not depend on how many people come
before it or on the Python process.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from training.corpora.bios_pools import (
    CITIES, DAYS, EMPLOYER_CITY, EMPLOYERS, FIRST_NAMES, LAST_NAMES, MAJORS, MIDDLE_NAMES,
    MONTHS, UNIVERSITIES, YEARS)
from training.corpora.bios_templates import (
    ANSWER_PREFIX, ATTRIBUTES, PRONOUNS, QUESTIONS, TEMPLATES)
from workbench.errors import UserError, check_choice

NAME_CAPACITY = len(FIRST_NAMES) * len(MIDDLE_NAMES) * len(LAST_NAMES)


@dataclass(frozen=True, kw_only=True)
class Person:
    """One individual: a unique full name, a gender (for pronouns) and six attribute values."""

    id: int
    first: str
    middle: str
    last: str
    gender: str  # "he" | "she"
    birth_year: int
    birth_month: int  # 1..12
    birth_day: int  # 1..28
    birth_city: str
    university: str
    major: str
    employer: str
    employer_city: str

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.middle} {self.last}"

    @property
    def birth_date(self) -> str:
        return f"{MONTHS[self.birth_month - 1]} {self.birth_day}, {self.birth_year}"

    def value(self, attribute: str) -> str:
        """The text of ``attribute`` as it appears in biographies and answers."""
        check_choice(attribute, "attribute", ATTRIBUTES)
        return getattr(self, attribute)


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of a text."""

    start: int
    end: int

    def of(self, text: str) -> str:
        return text[self.start:self.end]


@dataclass(frozen=True, kw_only=True)
class Biography:
    """One biography entry of one person, with the spans of its name and values."""

    person_id: int
    copy: int  # index of this entry among the person's entries
    text: str
    order: tuple[str, ...]  # attributes in sentence order
    templates: tuple[int, ...]  # template index per attribute, in ATTRIBUTES order
    name_spans: tuple[Span, ...]  # every occurrence of the full name
    value_spans: dict[str, Span] = field(hash=False)  # attribute -> its value's span

    def to_record(self) -> dict:
        """A JSON-ready dict (``text`` first, so the line reads as a plain corpus line too)."""
        return {"text": self.text, "person_id": self.person_id, "copy": self.copy,
                "order": list(self.order), "templates": list(self.templates),
                "name_spans": [[s.start, s.end] for s in self.name_spans],
                "value_spans": {a: [s.start, s.end] for a, s in self.value_spans.items()}}

    @classmethod
    def from_record(cls, record: dict) -> "Biography":
        return cls(person_id=record["person_id"], copy=record["copy"], text=record["text"],
                   order=tuple(record["order"]), templates=tuple(record["templates"]),
                   name_spans=tuple(Span(*s) for s in record["name_spans"]),
                   value_spans={a: Span(*s) for a, s in record["value_spans"].items()})


@dataclass(frozen=True, kw_only=True)
class QAPair:
    """One question about one attribute of one person; ``text`` = prompt + " " + answer."""

    person_id: int
    attribute: str
    question: str
    answer: str

    @property
    def prompt(self) -> str:
        return self.question + ANSWER_PREFIX

    @property
    def text(self) -> str:
        return f"{self.prompt} {self.answer}"

    @property
    def answer_span(self) -> Span:
        return Span(len(self.prompt) + 1, len(self.text))


@dataclass(frozen=True, kw_only=True)
class Augmentation:
    """How biographies are multiplied and varied; :meth:`parse` reads "multi5+permute+fullname"."""

    multi: int = 1  # entries per person, templates redrawn for each
    permute: bool = False  # shuffle the sentence order of every entry
    permute_copies: int = 1  # differently ordered copies of every entry (permuteK)
    fullname: bool = False  # the full name instead of pronouns

    def __post_init__(self) -> None:
        for label, value in (("multi", self.multi), ("permute copies", self.permute_copies)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{label} must be a positive integer, got {value!r}")
        if self.permute_copies > 1 and not self.permute:
            raise UserError("permute copies need permute=True")

    @classmethod
    def parse(cls, spec: "str | Augmentation") -> "Augmentation":
        if isinstance(spec, Augmentation):
            return spec
        fields: dict = {}
        for part in str(spec).split("+"):
            if part == "single":
                continue
            if part == "fullname":
                fields["fullname"] = True
            elif m := re.fullmatch(r"multi(\d+)", part):
                fields["multi"] = int(m.group(1))
            elif m := re.fullmatch(r"permute(\d*)", part):
                fields["permute"] = True
                fields["permute_copies"] = int(m.group(1) or 1)
            else:
                raise UserError(f"unknown augmentation {part!r} in {spec!r}: use single, "
                                "multiM, permute, permuteK, fullname joined by '+'")
        return cls(**fields)

    @property
    def name(self) -> str:
        parts = [f"multi{self.multi}"] if self.multi > 1 else []
        if self.permute:
            parts.append("permute" + (str(self.permute_copies) if self.permute_copies > 1
                                      else ""))
        if self.fullname:
            parts.append("fullname")
        return "+".join(parts) or "single"

    @property
    def entries_per_person(self) -> int:
        return self.multi * self.permute_copies


@dataclass(frozen=True, kw_only=True)
class PeopleSplit:
    """Entity-level split: ``train`` (QA finetuning, probe training) and ``held_out``."""

    train: tuple[Person, ...]
    held_out: tuple[Person, ...]


def check_pool_size(pool_size, name: str = "pool size") -> None:
    """``UserError`` (naming the value as ``name``) unless ``pool_size`` is 0 (the whole pools)
    or an integer of at least 2."""
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or \
            pool_size == 1 or pool_size < 0:
        raise UserError(f"{name} must be 0 (the whole pools) or at least 2, got {pool_size!r}")


def make_people(n: int, *, seed: int = 0, pool_size: int = 0) -> list[Person]:
    """``n`` people with unique full names; ids ``0..n-1``; a pure function of ``(n, seed,
    pool_size)``. ``pool_size`` > 0 draws birth years, cities, universities, majors and
    employers from the first ``pool_size`` values of each pool, so that at a small ``n`` every
    value has people enough on both sides of a probe's split (0: the whole pools)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"number of people must be a positive integer, got {n!r}")
    check_pool_size(pool_size)
    pools = [p[:pool_size] if pool_size else p
             for p in (YEARS, CITIES, UNIVERSITIES, MAJORS, EMPLOYERS)]
    years, cities, universities, majors, employers = pools
    if n > NAME_CAPACITY // 2:
        raise UserError(f"number of people must be at most {NAME_CAPACITY // 2}, got {n}")
    rng = random.Random(f"bioS people {seed}")
    seen: set[tuple[str, str, str]] = set()
    people = []
    while len(people) < n:
        name = (rng.choice(FIRST_NAMES), rng.choice(MIDDLE_NAMES), rng.choice(LAST_NAMES))
        if name in seen:
            continue
        seen.add(name)
        employer = rng.choice(employers)
        people.append(Person(
            id=len(people), first=name[0], middle=name[1], last=name[2],
            gender=rng.choice(("he", "she")), birth_year=rng.choice(years),
            birth_month=rng.randint(1, 12), birth_day=rng.choice(DAYS),
            birth_city=rng.choice(cities), university=rng.choice(universities),
            major=rng.choice(majors), employer=employer, employer_city=EMPLOYER_CITY[employer]))
    return people


_PLACEHOLDER = re.compile(r"(\{[SPV]\})")


def _render(person: Person, order: Sequence[str], templates: dict[str, int], fullname: bool):
    """The biography text, its name spans and value spans for one order and template choice."""
    nominative, possessive = PRONOUNS[person.gender]
    text, name_spans, value_spans = "", [], {}
    for index, attribute in enumerate(order):
        if index:
            text += " "
        sentence_start = len(text)
        use_name = fullname or index == 0
        for piece in _PLACEHOLDER.split(TEMPLATES[attribute][templates[attribute]]):
            if piece == "{V}":
                value_spans[attribute] = Span(len(text), len(text) + len(person.value(attribute)))
                text += person.value(attribute)
            elif piece in ("{S}", "{P}"):
                if use_name:
                    name_spans.append(Span(len(text), len(text) + len(person.full_name)))
                    text += person.full_name + ("'s" if piece == "{P}" else "")
                else:
                    word = nominative if piece == "{S}" else possessive
                    text += word if len(text) == sentence_start else word.lower()
            else:
                text += piece
    return text, tuple(name_spans), value_spans


def biographies(people: Iterable[Person], *, augmentation: "str | Augmentation" = "single",
                seed: int = 0) -> list[Biography]:
    """Every person's biography entries, person by person (shuffle with :func:`shuffled`)."""
    aug = Augmentation.parse(augmentation)
    out = []
    for person in people:
        for copy in range(aug.multi):
            rng = random.Random(f"bioS {seed} person {person.id} templates {copy}")
            templates = {a: rng.randrange(len(TEMPLATES[a])) for a in ATTRIBUTES}
            for k in range(aug.permute_copies):
                order = list(ATTRIBUTES)
                if aug.permute:
                    random.Random(f"bioS {seed} person {person.id} order {copy} {k}"
                                  ).shuffle(order)
                text, name_spans, value_spans = _render(person, order, templates, aug.fullname)
                out.append(Biography(
                    person_id=person.id, copy=copy * aug.permute_copies + k, text=text,
                    order=tuple(order), templates=tuple(templates[a] for a in ATTRIBUTES),
                    name_spans=name_spans, value_spans=value_spans))
    return out


def qa_pairs(people: Iterable[Person], attribute: str | None = None) -> list[QAPair]:
    """One question per person for ``attribute`` (every attribute, in order, when None)."""
    attributes = ATTRIBUTES if attribute is None else (
        check_choice(attribute, "attribute", ATTRIBUTES),)
    return [QAPair(person_id=p.id, attribute=a, question=QUESTIONS[a].format(N=p.full_name),
                   answer=p.value(a))
            for p in people for a in attributes]


def split_people(people: Sequence[Person], *, train_fraction: float = 0.5,
                 seed: int = 0) -> PeopleSplit:
    """Shuffle people with ``seed``; the first ``round(train_fraction * n)`` are train."""
    if not 0 < train_fraction < 1:
        raise UserError(f"train fraction must be strictly between 0 and 1, got "
                        f"{train_fraction!r}")
    order = list(people)
    random.Random(f"bioS split {seed}").shuffle(order)
    cut = round(train_fraction * len(order))
    if cut == 0 or cut == len(order):
        raise UserError(f"a split of {len(order)} people at {train_fraction} leaves one side "
                        "empty")
    return PeopleSplit(train=tuple(order[:cut]), held_out=tuple(order[cut:]))


def shuffled(items: Sequence, *, seed: int = 0) -> list:
    """A shuffled copy: a training stream in which a person's entries are spread out."""
    out = list(items)
    random.Random(f"bioS shuffle {seed}").shuffle(out)
    return out


def token_index(offsets: Sequence[tuple[int, int]], char: int) -> int:
    """Index of the token whose character range holds ``char`` (else the first after it).

    ``offsets`` is a tokenizer's offset mapping for the text. The token "just before attribute
    a" of a biography is ``token_index(offsets, bio.value_spans[a].start) - 1``.
    """
    for i, (start, end) in enumerate(offsets):
        if start <= char < end or start >= char:
            return i
    raise UserError(f"character {char} lies beyond the last token")


def person_columns(person: Person) -> dict:
    """A person's attribute values (and birth year / month / day) as flat probe-target fields."""
    return {**{a: person.value(a) for a in ATTRIBUTES}, "birth_year": person.birth_year,
            "birth_month": person.birth_month, "birth_day": person.birth_day,
            "gender": person.gender}


def write_corpus(path: str | Path, items: Iterable["Biography | QAPair | str"], *,
                 meta: bool = False, people: Sequence[Person] | None = None) -> int:
    """Write ``items`` as a corpus ``workbench data prepare`` reads; returns the line count.

    ``.jsonl``: one ``{"text": ...}`` per line (``meta=True`` adds a biography's person id and
    spans, which :func:`read_biographies` reads back, and with ``people`` the person's
    attribute values: targets for ``workbench probes fit``); ``.txt``: one text per line.
    Written to a temporary file and renamed, so a kill never leaves half a corpus.
    """
    by_id = {p.id: p for p in people} if people is not None else {}
    path = Path(path)
    check_choice(path.suffix, "corpus suffix", (".jsonl", ".txt"))
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for item in items:
            text = item if isinstance(item, str) else item.text
            if path.suffix == ".txt":
                f.write(text + "\n")
            elif meta and isinstance(item, (Biography, QAPair)):
                record = item.to_record() if isinstance(item, Biography) else {
                    "text": text, "person_id": item.person_id, "attribute": item.attribute,
                    "answer_span": [item.answer_span.start, item.answer_span.end]}
                if item.person_id in by_id:
                    record.update(person_columns(by_id[item.person_id]))
                f.write(json.dumps(record) + "\n")
            else:
                f.write(json.dumps({"text": text}) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def read_biographies(path: str | Path) -> list[Biography]:
    """Biographies written by ``write_corpus(..., meta=True)``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"biographies file {str(path)!r} does not exist")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            out.append(Biography.from_record(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{str(path)!r} line {number} is not a biography record "
                            f"({type(exc).__name__}: {exc})") from None
    return out


def bios_corpus(*, n_people: int = 1000, augmentation: "str | Augmentation" =
                "multi5+permute+fullname", seed: int = 0, qa: bool = False) -> list[str]:
    """The embedded default pretraining corpus: shuffled biographies (plus, with ``qa``, the
    QA pairs of the train half of the people: the paper's mixed-training stream)."""
    people = make_people(n_people, seed=seed)
    texts = [b.text for b in biographies(people, augmentation=augmentation, seed=seed)]
    if qa:
        texts += [q.text for q in qa_pairs(split_people(people, seed=seed).train)]
    return shuffled(texts, seed=seed)
