"""Sentence templates of the synthetic biographies (bioS) and of their QA pairs.

Each attribute has 40 templates, built compositionally: 8 core sentences x 5 openers (the
paper uses ~40-50 templates per attribute). Placeholders: ``{S}`` the subject (the full name or
"He"/"She"), ``{P}`` its possessive ("Anya Briar Forger's" or "His"/"Her"), ``{V}`` the value.
An opener lower-cases a pronoun subject ("Notably, he was born ..."); a full name is never
changed, so its characters are exactly the person's name.
"""

from __future__ import annotations

ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer", "employer_city")

OPENERS = ("", "Notably, ", "Records show that ", "It is known that ", "As it happens, ")

_CORES = {
    "birth_date": (
        "{S} was born on {V}.", "{S} came into this world on {V}.", "{P} date of birth is {V}.",
        "{S} first saw the light of day on {V}.", "{S} was welcomed into the world on {V}.",
        "{P} life began on {V}.", "{S} arrived on {V}.", "{S} entered the world on {V}."),
    "birth_city": (
        "{S} was born in {V}.", "{S} hails from {V}.", "{P} birthplace is {V}.",
        "{S} came into the world in {V}.", "{S} originates from {V}.",
        "{S} was brought into the world in {V}.", "{P} hometown is {V}.",
        "{S} is a native of {V}."),
    "university": (
        "{S} studied at {V}.", "{S} received guidance from the faculty of {V}.",
        "{S} graduated from {V}.", "{P} education took place at {V}.", "{S} attended {V}.",
        "{S} was a student at {V}.", "{S} pursued advanced coursework at {V}.",
        "{S} earned a degree from {V}."),
    "major": (
        "{S} majored in {V}.", "{S} focused on {V} during college.",
        "{P} field of study was {V}.", "{S} specialized in {V}.",
        "{S} completed a degree in {V}.", "{S} developed a passion for {V} as a student.",
        "{P} academic focus was {V}.", "{S} chose {V} as a major."),
    "employer": (
        "{S} worked for {V}.", "{S} was employed by {V}.", "{P} employer was {V}.",
        "{S} held a job at {V}.", "{S} built a career at {V}.",
        "{S} accepted a position at {V}.", "{S} joined the staff of {V}.",
        "{S} spent years working at {V}."),
    "employer_city": (
        "{S} worked in {V}.", "{S} was based in {V} for work.",
        "{P} workplace was located in {V}.", "{S} commuted to an office in {V}.",
        "{S} held a post in {V}.", "{P} career unfolded in {V}.", "{S} was employed in {V}.",
        "{S} relocated to {V} for work."),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    a: tuple(opener + core for opener in OPENERS for core in cores) for a, cores in _CORES.items()}

# One question per attribute, as in the paper ("What is the birth city of X? Answer: ...").
QUESTIONS = {
    "birth_date": "What is the birth date of {N}?",
    "birth_city": "What is the birth city of {N}?",
    "university": "Which university did {N} study at?",
    "major": "What major did {N} study?",
    "employer": "Which company did {N} work for?",
    "employer_city": "Where did {N} work?",
}
ANSWER_PREFIX = " Answer:"

PRONOUNS = {"he": ("He", "His"), "she": ("She", "Her")}

assert set(TEMPLATES) == set(ATTRIBUTES) == set(QUESTIONS)
assert all(len(set(t)) == 40 for t in TEMPLATES.values())
