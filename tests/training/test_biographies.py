"""bioS generator: determinism, unique names, augmentations, spans, split, corpus files."""

from __future__ import annotations

import json
import re

import pytest

from training.corpora import (
    ATTRIBUTES, Augmentation, biographies, bios_corpus, make_people, qa_pairs, read_biographies,
    shuffled, split_people, token_index, write_corpus)
from training.corpora import bios_pools, bios_templates
from workbench.errors import UserError


@pytest.fixture(scope="module")
def people():
    return make_people(300, seed=3)


def test_pools_have_the_paper_sizes():
    assert (len(bios_pools.FIRST_NAMES), len(bios_pools.MIDDLE_NAMES),
            len(bios_pools.LAST_NAMES)) == (400, 400, 1000)
    assert len(bios_pools.CITIES) == 200 and len(bios_pools.UNIVERSITIES) == 300
    assert len(bios_pools.MAJORS) == 100 and len(bios_pools.EMPLOYERS) == 260
    assert all(len(t) == 40 for t in bios_templates.TEMPLATES.values())


def test_people_are_deterministic_and_names_unique():
    a, b = make_people(5000, seed=1), make_people(5000, seed=1)
    assert a == b
    assert make_people(50, seed=2) != a[:50]
    assert len({p.full_name for p in a}) == 5000
    assert make_people(10, seed=1) == a[:10]  # a prefix does not depend on n
    assert all(p.employer_city == bios_pools.EMPLOYER_CITY[p.employer] for p in a)
    assert all(1 <= p.birth_day <= 28 and 1 <= p.birth_month <= 12 for p in a)
    # attributes are drawn independently: many distinct values appear
    assert len({p.birth_city for p in a}) == 200 and len({p.major for p in a}) == 100


def test_bad_people_count_is_a_user_error():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="number of people"):
            make_people(bad)


def test_pool_size_draws_each_attribute_from_the_first_values_of_its_pool():
    small = make_people(400, seed=1, pool_size=12)
    for attr, pool in (("birth_city", bios_pools.CITIES), ("major", bios_pools.MAJORS),
                       ("university", bios_pools.UNIVERSITIES),
                       ("employer", bios_pools.EMPLOYERS), ("birth_year", bios_pools.YEARS)):
        assert {getattr(p, attr) for p in small} == set(pool[:12]), attr
    assert make_people(50, seed=1, pool_size=0) == make_people(50, seed=1)  # whole pools
    for bad in (1, -2, True, 2.5):
        with pytest.raises(UserError, match="pool size"):
            make_people(10, pool_size=bad)


def test_spans_point_at_the_name_and_values(people):
    for aug in ("single", "multi3+permute+fullname", "permute2"):
        for bio in biographies(people, augmentation=aug, seed=5):
            person = people[bio.person_id]
            assert set(bio.value_spans) == set(ATTRIBUTES)
            for attribute, span in bio.value_spans.items():
                assert span.of(bio.text) == person.value(attribute)
            assert bio.name_spans and all(s.of(bio.text) == person.full_name
                                          for s in bio.name_spans)
            # the name occurs exactly where the spans say and nowhere else
            assert bio.text.count(person.full_name) == len(bio.name_spans)
            starts = [bio.value_spans[a].start for a in bio.order]
            assert starts == sorted(starts)


def test_single_has_one_entry_name_once_then_pronouns(people):
    bios = biographies(people, augmentation="single")
    assert len(bios) == len(people)
    for bio in bios:
        assert bio.order == ATTRIBUTES and len(bio.name_spans) == 1
        assert bio.name_spans[0].start < bio.value_spans["birth_date"].start
        pronoun = "He" if people[bio.person_id].gender == "he" else "She"
        assert f" {pronoun.lower()} " in bio.text or f". {pronoun} " in bio.text \
            or f". {'His' if pronoun == 'He' else 'Her'} " in bio.text


def test_multi_redraws_templates_and_permute_shuffles_order(people):
    bios = biographies(people, augmentation="multi5")
    assert len(bios) == 5 * len(people)
    by_person = {}
    for b in bios:
        by_person.setdefault(b.person_id, []).append(b)
        assert b.order == ATTRIBUTES
    distinct = [len({b.templates for b in entries}) for entries in by_person.values()]
    assert min(distinct) >= 4  # 40^6 choices: redrawn templates practically never repeat
    permuted = biographies(people, augmentation="permute")
    assert sum(b.order != ATTRIBUTES for b in permuted) > 0.9 * len(people)
    assert all(sorted(b.order) == sorted(ATTRIBUTES) for b in permuted)
    copies = biographies(people, augmentation="permute3")
    assert len(copies) == 3 * len(people)
    for i in range(0, len(copies), 3):  # permuteK: same templates, different orders
        group = copies[i:i + 3]
        assert len({b.templates for b in group}) == 1 and len({b.order for b in group}) > 1


def test_fullname_replaces_every_pronoun(people):
    for bio in biographies(people, augmentation="fullname+permute"):
        assert len(bio.name_spans) == 6
        assert not re.search(r"\b(he|she|his|her)\b", bio.text, flags=re.IGNORECASE)


def test_biographies_are_deterministic_per_seed(people):
    a = biographies(people, augmentation="multi2+permute", seed=1)
    assert a == biographies(people, augmentation="multi2+permute", seed=1)
    assert [b.text for b in a] != [b.text for b in biographies(people, augmentation="multi2+permute", seed=2)]
    # a person's biography does not depend on who else is generated
    assert biographies(people[7:8], augmentation="multi2+permute", seed=1) == a[14:16]


def test_augmentation_parse_and_name():
    aug = Augmentation.parse("multi5+permute+fullname")
    assert (aug.multi, aug.permute, aug.fullname) == (5, True, True)
    assert aug.name == "multi5+permute+fullname" and aug.entries_per_person == 5
    assert Augmentation.parse("single") == Augmentation()
    assert Augmentation.parse("permute5").entries_per_person == 5
    for bad in ("multi", "shuffle", "multi0"):
        with pytest.raises(UserError):
            Augmentation.parse(bad)


def test_qa_pairs(people):
    qa = qa_pairs(people[:4])
    assert len(qa) == 4 * 6
    q = qa_pairs(people[:1], "birth_city")[0]
    assert q.text == f"What is the birth city of {people[0].full_name}? Answer: {people[0].birth_city}"
    assert q.answer_span.of(q.text) == people[0].birth_city
    with pytest.raises(UserError, match="attribute"):
        qa_pairs(people, "shoe_size")


def test_split_is_entity_level_and_disjoint(people):
    split = split_people(people, seed=4)
    train, held = {p.id for p in split.train}, {p.id for p in split.held_out}
    assert not train & held and train | held == {p.id for p in people}
    assert len(train) == len(held) == 150
    assert split == split_people(people, seed=4) and split != split_people(people, seed=5)
    with pytest.raises(UserError):
        split_people(people, train_fraction=1.0)


def test_token_index_finds_the_token_before_an_attribute():
    text = "Ada Ash Ashson was born on May 2, 1990."
    offsets, pos = [], 0
    for word in text.split(" "):  # a whitespace tokenizer: tokens " word"
        start = text.index(word, pos)
        offsets.append((pos if pos == 0 else start - 1, start + len(word)))
        pos = start + len(word)
    value_start = text.index("May")
    assert token_index(offsets, value_start) == 6
    assert text[slice(*offsets[token_index(offsets, value_start) - 1])] == " on"


def test_write_corpus_and_read_back(tmp_path, people):
    bios = shuffled(biographies(people[:20], augmentation="multi2"), seed=0)
    path = tmp_path / "bios.jsonl"
    assert write_corpus(path, bios, meta=True) == 40
    assert read_biographies(path) == bios
    assert json.loads(path.read_text().splitlines()[0])["text"] == bios[0].text
    txt = tmp_path / "bios.txt"
    write_corpus(txt, bios)
    assert txt.read_text().splitlines() == [b.text for b in bios]
    with pytest.raises(UserError):
        write_corpus(tmp_path / "bios.csv", bios)
    # with the people: their attribute values ride along as probe targets
    probe = tmp_path / "probe.jsonl"
    qa = qa_pairs(people[:2], "major")
    write_corpus(probe, [*bios[:3], *qa], meta=True, people=people)
    records = [json.loads(line) for line in probe.read_text().splitlines()]
    for record in records:
        person = people[record["person_id"]]
        assert record["birth_city"] == person.birth_city and record["birth_year"] == \
            person.birth_year
    assert records[3]["answer_span"] == [qa[0].answer_span.start, qa[0].answer_span.end]
    assert read_biographies(tmp_path / "bios.jsonl") == bios
    assert not list(tmp_path.glob("*.tmp"))


def test_shuffled_stream_spreads_a_persons_copies():
    texts = bios_corpus(n_people=50, augmentation="multi5", seed=0)
    assert len(texts) == 250
    people = make_people(50, seed=0)
    positions = {}
    for i, t in enumerate(texts):
        owner = next(p.id for p in people if p.full_name in t)
        positions.setdefault(owner, []).append(i)
    spreads = [max(v) - min(v) for v in positions.values()]
    assert sum(spreads) / len(spreads) > 50  # not next to each other
    mixed = bios_corpus(n_people=50, augmentation="single", seed=0, qa=True)
    assert len(mixed) == 50 + 25 * 6 and sum("Answer:" in t for t in mixed) == 150
