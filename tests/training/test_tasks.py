"""Tests for the task library: registry, built-in tasks, permutation groups and JSONL tasks."""

from __future__ import annotations

import json
import re
import typing
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.tasks import (Example, TaskData, check_functional, get_task_class, load_jsonl_task,
                            make_task, task_names, token_accuracy)
from training.tasks import groups
from workbench import permutations as perms
from training.tasks.algorithmic import length_quotas
from training.tasks.dyck import dyck_labels
from training.tasks.registry import coerce
from workbench.errors import UserError

ALIGNED = ["reverse", "hist", "double-hist", "sort", "most-freq", "dyck-1", "dyck-2", "induction"]
SEQ2SEQ = ["modular-addition", "modular-subtraction", "modular-multiplication", "sparse-parity",
           "group-composition"]
CAUSAL = {"dyck-1", "dyck-2", "induction"}

# Small parameter sets so that every generic test runs in well under a second.
SMALL = {
    "modular-addition": {"p": 11},
    "modular-subtraction": {"p": 11},
    "modular-multiplication": {"p": 11},
    "sparse-parity": {"n": 12, "k": 3, "n_train": 100, "n_test": 50},
    "group-composition": {"group": "S4"},
    **{name: {"n_samples": 300} for name in ALIGNED},
}


def small(name: str, **overrides):
    return make_task(name, **{**SMALL[name], **overrides})


def all_examples(data: TaskData) -> tuple[Example, ...]:
    return data.train + data.test


def find(data: TaskData, inputs: tuple[str, ...]) -> Example:
    matches = [e for e in all_examples(data) if e.input == inputs]
    assert len(matches) == 1, inputs
    return matches[0]


# --- registry ---------------------------------------------------------------------------------

def test_all_tasks_registered():
    assert set(task_names()) == set(ALIGNED) | set(SEQ2SEQ)
    assert task_names() == sorted(task_names())


def test_unknown_task_names_it():
    with pytest.raises(UserError, match="'nope'"):
        get_task_class("nope")


def test_make_task_unknown_key():
    with pytest.raises(UserError, match="'q'"):
        make_task("modular-addition", q=3)


def test_make_task_bad_type_from_string():
    with pytest.raises(UserError, match=r"modular-addition\.p must be an integer, got 'abc'"):
        make_task("modular-addition", p="abc")


def test_make_task_coerces_strings():
    task = make_task("modular-addition", p="7", frac_train="0.5", seed="3")
    assert (task.p, task.frac_train, task.seed) == (7, 0.5, 3)
    assert isinstance(task.frac_train, float)


@pytest.mark.parametrize("value, annotation, expected", [
    ("5", int, 5), (5.0, int, 5), ("0.25", float, 0.25), (3, float, 3.0),
    ("true", bool, True), ("No", bool, False), ("x", str, "x"),
    ("none", int | None, None), ("4", int | None, 4),
    ("a,b", tuple[str, ...], ("a", "b")), ("1,2", tuple[int, ...], (1, 2)),
    ("b", typing.Literal["a", "b"], "b"),
])
def test_coerce_accepts(value, annotation, expected):
    out = coerce(value, annotation, "t.x")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value, annotation", [
    ("abc", int), (2.5, int), (True, int), ("x", float), ("maybe", bool), (3, str),
    ("c", typing.Literal["a", "b"]), ("abc", int | None), (7, tuple[int, ...]),
])
def test_coerce_rejects_naming_value(value, annotation):
    with pytest.raises(UserError, match=re.escape(repr(value))):
        coerce(value, annotation, "t.x")


def test_parameters_listing():
    params = {p["name"]: p for p in get_task_class("modular-addition").parameters()}
    assert params["p"] == {"name": "p", "type": "int", "default": 113}
    assert params["frac_train"]["default"] == 0.3 and "seed" in params


# --- generic properties of every task ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SMALL))
def test_deterministic_for_seed(name):
    a, b = small(name, seed=1).generate(), small(name, seed=1).generate()
    assert a == b
    assert small(name, seed=2).generate().train != a.train


@pytest.mark.parametrize("name", sorted(SMALL))
def test_splits_disjoint_and_inputs_unique(name):
    data = small(name).generate()
    assert data.train and data.test and data.name == name
    train_inputs = {e.input for e in data.train}
    test_inputs = {e.input for e in data.test}
    assert not train_inputs & test_inputs
    assert len(train_inputs) + len(test_inputs) == len(all_examples(data))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_vocab_covers_examples(name):
    data = small(name).generate()
    assert len(set(data.input_vocab)) == len(data.input_vocab)
    assert len(set(data.output_vocab)) == len(data.output_vocab)
    used_in = {t for e in all_examples(data) for t in e.input}
    used_out = {t for e in all_examples(data) for t in e.output if t is not None}
    assert used_in <= set(data.input_vocab)
    assert used_out <= set(data.output_vocab)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_structure(name):
    task = small(name)
    data = task.generate()
    assert data.layout == "seq2seq" and data.sep_token == "="
    assert data.input_vocab[-1] == "=" and "=" not in data.output_vocab
    assert all("=" not in e.input and len(e.output) == 1 for e in all_examples(data))
    assert not task.causal


@pytest.mark.parametrize("name", ALIGNED)
def test_aligned_structure(name):
    task = small(name)
    data = task.generate()
    assert data.layout == "aligned" and data.pad_token == "PAD" and data.sep_token is None
    assert data.input_vocab[0] == "BOS" and "PAD" in data.input_vocab
    for e in all_examples(data):
        assert len(e.input) == len(e.output) == task.max_len
        assert e.input[0] == "BOS" and e.output[0] is None
        body = [t for t in e.input[1:] if t != "PAD"]
        assert e.input[1:len(body) + 1] == tuple(body) and len(body) >= 1  # padding at the end
        assert all(label is None for t, label in zip(e.input, e.output) if t == "PAD")
        assert any(label is not None for label in e.output)


@pytest.mark.parametrize("name", ALIGNED)
def test_causal_flag_matches_labels(name):
    task = small(name)
    assert task.causal == (name in CAUSAL)
    bodies = [tuple(t for t in e.input[1:] if t != "PAD") for e in task.generate().train[:100]]
    prefix_consistent = all(task.labels(b[:i + 1]) == task.labels(b)[:i + 1]
                            for b in bodies for i in range(len(b)))
    assert prefix_consistent == task.causal


# --- modular arithmetic ------------------------------------------------------------------------

def test_modular_reference_split_sizes_and_vocab():
    data = make_task("modular-addition").generate()
    assert (len(data.train), len(data.test)) == (3830, 8939)
    assert data.input_vocab.index("=") == 113 and len(data.input_vocab) == 114
    assert data.output_vocab == tuple(str(i) for i in range(113))


@pytest.mark.parametrize("name, a, b, c", [
    ("modular-addition", 7, 9, 5), ("modular-addition", 0, 0, 0),
    ("modular-subtraction", 3, 5, 9), ("modular-subtraction", 10, 4, 6),
    ("modular-multiplication", 4, 6, 2), ("modular-multiplication", 0, 9, 0),
])
def test_modular_values(name, a, b, c):
    data = make_task(name, p=11).generate()
    assert find(data, (str(a), str(b))).output == (str(c),)
    assert len(all_examples(data)) == 121


@pytest.mark.parametrize("params, pattern", [
    ({"p": 12}, "p must be prime, got 12"), ({"p": 1}, "got 1"),
    ({"frac_train": 1.0}, "frac_train .* got 1.0"), ({"frac_train": 0}, "got 0"),
    ({"p": 2, "frac_train": 0.1}, "empty train split"),
])
def test_modular_bad_parameters(params, pattern):
    with pytest.raises(UserError, match=pattern):
        make_task("modular-addition", **params).generate()


# --- sparse parity -----------------------------------------------------------------------------

def test_sparse_parity_labels_follow_support():
    task = make_task("sparse-parity", n=10, k=4, n_train=200, n_test=100, seed=5)
    support = task.support()
    assert len(support) == 4 and list(support) == sorted(set(support))
    assert all(0 <= i < 10 for i in support)
    data = task.generate()
    for e in all_examples(data):
        assert e.output == (str(sum(int(e.input[i]) for i in support) % 2),)
    ones_on_support = tuple("1" if i in support else "0" for i in range(10))
    assert task.label(ones_on_support) == "0"  # four ones: even
    one_off = tuple("1" if i in support[:3] else "0" for i in range(10))
    assert task.label(one_off) == "1"
    assert (len(data.train), len(data.test)) == (200, 100)
    assert data.input_vocab == ("0", "1", "=") and data.output_vocab == ("0", "1")


def test_sparse_parity_support_depends_on_seed():
    supports = {make_task("sparse-parity", n=30, k=3, seed=s).support() for s in range(5)}
    assert len(supports) > 1


def test_sparse_parity_uses_whole_small_space():
    data = make_task("sparse-parity", n=4, k=2, n_train=10, n_test=6).generate()
    assert len({e.input for e in all_examples(data)}) == 16


def test_sparse_parity_large_n():
    data = make_task("sparse-parity", n=80, k=5, n_train=20, n_test=20).generate()
    assert len({e.input for e in all_examples(data)}) == 40


@pytest.mark.parametrize("params, pattern", [
    ({"n": -3}, "n must be positive, got -3"), ({"k": 0}, "k must be positive, got 0"),
    ({"n": 5, "k": 6}, "k must be at most n=5, got 6"),
    ({"n": 4, "n_train": 10, "n_test": 7}, "17 exceeds the 16"),
    ({"n_test": 0}, "n_test must be positive, got 0"),
])
def test_sparse_parity_bad_parameters(params, pattern):
    with pytest.raises(UserError, match=pattern):
        make_task("sparse-parity", **params)


# --- permutation groups and group composition --------------------------------------------------

def test_s3_composition_hand_computed():
    # "102" swaps 0,1 and "021" swaps 1,2; g∘h applies h first: 0->0->1, 1->2->2, 2->1->0.
    data = make_task("group-composition", group="S3", frac_train=0.5).generate()
    assert find(data, ("102", "021")).output == ("120",)
    assert find(data, ("021", "102")).output == ("201",)
    assert find(data, ("120", "120")).output == ("201",)  # a 3-cycle squared
    assert find(data, ("120", "201")).output == ("012",)  # and its inverse
    assert data.input_vocab == ("012", "021", "102", "120", "201", "210", "=")
    assert len(all_examples(data)) == 36 and len(data.train) == 18


@pytest.mark.parametrize("name, order", [("S3", 6), ("S4", 24), ("S5", 120), ("A4", 12),
                                          ("A5", 60)])
def test_group_orders_and_tables(name, order):
    group = groups.get_group(name)
    assert group.order == order and group.elements[0] == perms.identity(group.degree)
    table = group.multiplication_table()  # [order, order]
    assert table.shape == (order, order)
    for row in (table, table.T):  # a Latin square: every product appears once per row/column
        assert all(len(set(r)) == order for r in row.tolist())
    inv = group.inverse_indices()
    assert np.all(table[np.arange(order), inv] == 0)
    assert np.all(table[0] == np.arange(order))


def test_sign_and_cycle_type():
    assert perms.sign((1, 0, 2)) == -1 and perms.sign((1, 2, 0)) == 1
    assert perms.cycle_type((1, 0, 3, 4, 2)) == (3, 2)
    s5 = groups.get_group("S5")
    assert int((s5.signs() == 1).sum()) == 60
    assert sorted(len(c) for c in s5.conjugacy_classes()) == [1, 10, 15, 20, 20, 24, 30]
    assert groups.from_token("2013") == (2, 0, 1, 3)
    with pytest.raises(UserError, match="'0012'"):
        groups.from_token("0012")


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(5)), st.permutations(range(5)), st.permutations(range(5)))
def test_composition_is_associative_with_inverses(g, h, k):
    g, h, k = tuple(g), tuple(h), tuple(k)
    assert perms.compose(perms.compose(g, h), k) == perms.compose(g, perms.compose(h, k))
    assert perms.compose(g, perms.inverse(g)) == perms.identity(5)
    assert perms.sign(perms.compose(g, h)) == perms.sign(g) * perms.sign(h)


@pytest.mark.parametrize("group", ["S9", "Z5", "", "S1"])
def test_group_composition_bad_group(group):
    with pytest.raises(UserError, match=re.escape(repr(group))):
        make_task("group-composition", group=group)


# --- algorithmic tasks -------------------------------------------------------------------------

@pytest.mark.parametrize("name, body, labels", [
    ("reverse", "abc", "cba"), ("reverse", "hgfedcb", "bcdefgh"),
    ("hist", "aabc", "2211"), ("hist", "baaab", "23332"),
    ("double-hist", "aabc", "1122"), ("double-hist", "aabbcd", "222222"),
    ("sort", "cab", "abc"), ("sort", "hbahb", "abbhh"),
    ("most-freq", "abbccc", "cba..."), ("most-freq", "baab", "ba.."),
    ("dyck-1", "(()", "PPP"), ("dyck-1", "(())", "PPPT"), ("dyck-1", "())(", "PTFF"),
    ("dyck-2", "({)}", "PPFF"), ("dyck-2", "{}()", "PTPT"), ("dyck-2", "{(})", "PPFF"),
    ("induction", "a1c0a3b2a", "....1...3"), ("induction", "a1b2c3d0b", "........2"),
])
def test_hand_checked_labels(name, body, labels):
    task = small(name)
    example = task.example(tuple(body))
    expected = tuple(None if c == "." else c for c in labels)
    pad = task.max_len - 1 - len(body)
    assert example.input == ("BOS", *body) + ("PAD",) * pad
    assert example.output == (None, *expected) + (None,) * pad


@pytest.mark.parametrize("name, input_vocab, output_vocab", [
    ("reverse", "BOS a b c d e f g h PAD", "a b c d e f g h"),
    ("hist", "BOS a b c d e f g h PAD", "1 2 3 4 5 6 7"),
    ("double-hist", "BOS a b c d e f g h PAD", "1 2 3 4 5 6 7"),
    ("most-freq", "BOS a b c d e f g h PAD", "a b c d e f g h"),
    ("dyck-1", "BOS ( ) PAD", "F P T"),
    ("dyck-2", "BOS ( ) { } PAD", "F P T"),
    ("induction", "BOS a b c d 0 1 2 3 PAD", "0 1 2 3"),
])
def test_aligned_vocabularies(name, input_vocab, output_vocab):
    data = small(name).generate()
    assert data.input_vocab == tuple(input_vocab.split())
    assert data.output_vocab == tuple(output_vocab.split())


def test_double_hist_vocab_bounded_by_vocab_size():
    assert make_task("double-hist", vocab_size=3).output_vocab() == ("1", "2", "3")


def test_default_sizes_follow_paper_split():
    data = make_task("reverse").generate()
    assert (len(data.train), len(data.test)) == (16000, 4000)
    lengths = Counter(sum(t != "PAD" for t in e.input) - 1 for e in all_examples(data))
    assert set(lengths) == set(range(1, 8)) and lengths[1] == 8  # every length-1 sequence


def test_small_input_space_uses_every_sequence():
    data = make_task("sort", vocab_size=2, max_len=3, n_samples=100).generate()
    assert len(all_examples(data)) == 2 + 4


def test_length_quotas_water_filling():
    assert length_quotas([2, 4, 100, 100], 40) == [2, 4, 17, 17]
    assert length_quotas([2, 4], 100) == [2, 4]
    assert sum(length_quotas([10 ** 6] * 7, 20000)) == 20000


@pytest.mark.parametrize("name", ["dyck-1", "dyck-2"])
def test_dyck_labels_all_frequent(name):
    data = make_task(name, n_samples=2000).generate()
    counts = Counter(t for e in all_examples(data) for t in e.output if t is not None)
    total = sum(counts.values())
    assert set(counts) == {"F", "P", "T"}
    assert min(counts.values()) / total > 0.05


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="(){}", min_size=1, max_size=15))
def test_dyck_labels_match_reduction(text):
    def reference(prefix: str) -> str:  # cancel matched pairs until none is left
        while "()" in prefix or "{}" in prefix:
            prefix = prefix.replace("()", "").replace("{}", "")
        if not prefix:
            return "T"
        return "F" if any(c in ")}" for c in prefix) else "P"
    expected = tuple(reference(text[:i + 1]) for i in range(len(text)))
    assert dyck_labels(tuple(text), (("(", ")"), ("{", "}"))) == expected


def test_induction_every_example_has_a_label():
    data = make_task("induction", n_samples=300, n_letters=6, n_numbers=3, max_len=8).generate()
    for e in all_examples(data):
        assert len(e.input) == 8 and e.output[-1] is not None
        assert all(e.input[i] in "abcdef" for i in (1, 3, 5, 7))


# --- the paper's set-up (Transformer Programs Table 1) -------------------------------------------

@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_eos_marks_the_end(name):
    task = make_task(name, vocab_size=3, eos=True, max_len=6, n_samples=200)
    example = task.example(("c", "a", "b"))
    assert example.input == ("BOS", "c", "a", "b", "EOS", "PAD")
    expected = ("b", "a", "c") if name == "reverse" else ("a", "b", "c")
    assert example.output == (None, *expected, None, None)
    data = task.generate()
    assert data.input_vocab == ("BOS", "a", "b", "c", "EOS", "PAD")
    # bodies leave room for EOS: the longest has max_len - 2 tokens, and every input has one EOS
    assert max(sum(t in "abc" for t in e.input) for e in all_examples(data)) == 4
    assert all(e.input.count("EOS") == 1 for e in all_examples(data))


def test_most_freq_label_rest():
    task = make_task("most-freq", vocab_size=3, label_rest=True, max_len=6)
    assert task.example(("b", "a", "a", "b")).output == (None, "b", "a", "-", "-", None)
    assert task.output_vocab() == ("a", "b", "c", "-")


def test_induction_paper_variant():
    task = make_task("induction", fixed_pairs=True, label_unseen=True, query_rate=0.5,
                     n_samples=2000)
    assert task.labels(tuple("a1b2a1c")) == ("?", None, "?", None, "1", None, "?")
    data = task.generate()
    assert data.output_vocab == ("0", "1", "2", "3", "?")
    lead = [e for e in all_examples(data) if e.input[1] in "0123"]
    assert 0.4 < len(lead) / len(all_examples(data)) < 0.6  # half start with a number
    for e in all_examples(data):
        body = e.input[1:]
        start = 1 if body[0] in "0123" else 0
        pairs = [body[i:i + 2] for i in range(start, len(body) - 1, 2)]
        assert len({tuple(p) for p in pairs}) == len({p[0] for p in pairs})  # one number a letter
        assert all(label is not None for t, label in zip(body, e.output[1:]) if t in "abcd")


def test_dyck_paper_sampling():
    data = make_task("dyck-2", sampling="paper", n_samples=1000).generate()
    inputs = [e.input for e in all_examples(data)]
    assert all("PAD" not in x and len(x) == 16 for x in inputs)  # always full length
    valid = [x for x in inputs if "F" not in dyck_labels(x[1:], (("(", ")"), ("{", "}")))]
    assert 0.3 < len(valid) / len(inputs) < 0.7  # the built half (and lucky random ones)


def test_letter_paper_sampling():
    """The original's generator: uniform lengths, duplicates dropped, at most 5 n draws. With 5
    letters up to length 6 it finds ~14.1k distinct sequences (the original: 14,124), every
    short one but only ~2/3 of the longest; "even" sampling takes every sequence instead."""
    from collections import Counter

    paper = make_task("reverse", vocab_size=5, eos=True, sampling="paper").generate()
    inputs = [e.input for e in all_examples(paper)]
    assert len(set(inputs)) == len(inputs)
    assert 13800 < len(inputs) < 14500
    lengths = Counter(sum(t in "abcde" for t in x) for x in inputs)
    assert [lengths[n] for n in range(1, 5)] == [5, 25, 125, 625]
    assert 0.6 < lengths[6] / 5 ** 6 < 0.75
    even = make_task("reverse", vocab_size=5, eos=True).generate()
    assert len(all_examples(even)) == sum(5 ** n for n in range(1, 7))  # 19,530: all of them
    small = make_task("hist", vocab_size=6, sampling="paper", n_samples=500).generate()
    assert len(all_examples(small)) == 500  # found before the draws run out


@pytest.mark.parametrize("name, params, pattern", [
    ("reverse", {"sampling": "odd"}, "sampling must be one of even, paper, got 'odd'"),
    ("reverse", {"vocab_size": 30}, "vocab_size must be at most 26, got 30"),
    ("reverse", {"eos": True, "max_len": 2}, "max_len must be at least 3 with eos=true, got 2"),
    ("induction", {"query_rate": 1.5}, "query_rate must be between 0 and 1, got 1.5"),
    ("dyck-1", {"sampling": "x"}, "sampling must be one of mixed, paper, got 'x'"),
    ("sort", {"vocab_size": 1}, "vocab_size must be at least 2, got 1"),
    ("hist", {"max_len": 1}, "max_len must be at least 2, got 1"),
    ("most-freq", {"n_samples": -5}, "n_samples must be at least 2, got -5"),
    ("dyck-1", {"frac_train": 1.5}, "frac_train .* got 1.5"),
    ("induction", {"max_len": 9}, "max_len must be even .* got 9"),
    ("induction", {"n_numbers": 11}, "n_numbers must be at most 10, got 11"),
])
def test_algorithmic_bad_parameters(name, params, pattern):
    with pytest.raises(UserError, match=pattern):
        make_task(name, **params)


def test_token_accuracy_skips_unlabelled():
    ex = Example(input=("BOS", "a", "b"), output=(None, "b", "a"))
    assert token_accuracy([("x", "b", "b")], [ex]) == 0.5


# --- custom JSONL tasks ------------------------------------------------------------------------

def write(tmp_path, lines, name="task.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line)
                              for line in lines) + "\n")
    return path


def test_jsonl_aligned_auto(tmp_path):
    records = [{"input": [i, "x"], "output": [None, i % 3]} for i in range(12)]
    data = load_jsonl_task(write(tmp_path, records), frac_train=0.75, seed=1)
    assert data.layout == "aligned" and data.sep_token is None and data.name == "task"
    assert (len(data.train), len(data.test)) == (9, 3)
    assert data.input_vocab == tuple(str(i) for i in range(12)) + ("x", "PAD")
    assert data.output_vocab == ("0", "1", "2")
    assert Example(input=("4", "x"), output=(None, "1")) in all_examples(data)
    assert data == load_jsonl_task(write(tmp_path, records), frac_train=0.75, seed=1)


def test_jsonl_seq2seq_auto_and_special_names(tmp_path):
    records = [{"input": ["SEP", str(i)], "output": ["y", "z", str(i + 1)]} for i in range(5)]
    data = load_jsonl_task(write(tmp_path, records), frac_train=0.6)
    assert data.layout == "seq2seq" and data.sep_token == "<SEP>" and data.pad_token == "PAD"
    assert set(data.output_vocab) <= set(data.input_vocab)  # the decoder reads outputs back
    assert data.input_vocab[-2:] == ("<SEP>", "PAD")


def test_jsonl_duplicate_inputs_stay_in_one_split(tmp_path):
    records = [{"input": [i % 4], "output": [i]} for i in range(20)] + [{"input": [0],
                                                                         "output": [0]}]
    for seed in range(5):
        data = load_jsonl_task(write(tmp_path, records), seed=seed, frac_train=0.5)
        assert not {e.input for e in data.train} & {e.input for e in data.test}
        assert len(all_examples(data)) == 20  # the repeated line is kept once
    with pytest.raises(UserError, match=r"input \['0'\] at lines 1 and 5"):
        load_jsonl_task(write(tmp_path, records), require_functional=True)


@pytest.mark.parametrize("lines, pattern", [
    ([], "no examples"),
    (["", "  "], "no examples"),
    ([{"input": [1], "output": [1]}, {"input": [2], "output": [2]}, "{bad json"],
     "line 3: invalid JSON: "),
    ([{"input": [1], "output": [1]}, {"input": [2]}], "line 2: missing key 'output'"),
    ([{"output": [1]}], "line 1: missing key 'input'"),
    ([{"input": "abc", "output": [1]}], "line 1: 'input' must be a list, got str"),
    ([{"input": [1], "output": []}], "line 1: 'output' is an empty list"),
    ([{"input": [1.5], "output": [1]}], r"line 1: input\[0\] must be a string or an integer, "
                                        r"got 1.5"),
    ([{"input": [None], "output": [1]}], r"line 1: input\[0\] .* got null"),
    ([{"input": [1], "output": [True]}], r"line 1: output\[0\] .* got true"),
    (["[1, 2]"], "line 1: expected an object"),
    ([{"input": [1], "output": [1]}], "need at least 2 distinct inputs"),
    ([{"input": [1, 2], "output": [None, None]}, {"input": [2], "output": [1]}],
     "line 1: every output label is null"),
    ([{"input": [1], "output": [1]}, {"input": [2, 3], "output": [None]}],
     "line 2: null labels are only allowed in the aligned layout"),
])
def test_jsonl_errors(tmp_path, lines, pattern):
    with pytest.raises(UserError, match=pattern):
        load_jsonl_task(write(tmp_path, lines))


def test_jsonl_missing_file_and_bad_options(tmp_path):
    with pytest.raises(UserError, match="not found: .*nope.jsonl"):
        load_jsonl_task(tmp_path / "nope.jsonl")
    path = write(tmp_path, [{"input": [i], "output": [i, i]} for i in range(4)])
    with pytest.raises(UserError, match="layout must be one of .* got 'weird'"):
        load_jsonl_task(path, layout="weird")
    with pytest.raises(UserError, match="line 1: aligned layout needs as many outputs"):
        load_jsonl_task(path, layout="aligned")
    with pytest.raises(UserError, match="frac_train .* got 0"):
        load_jsonl_task(path, frac_train=0)
    assert load_jsonl_task(path, layout="seq2seq").layout == "seq2seq"


def test_check_functional_messages():
    a = Example(input=("1", "2"), output=("3",))
    b = Example(input=("1", "2"), output=("4",))
    c = Example(input=("5",), output=("3",))
    check_functional([a, c, a])  # repeats with the same output are fine
    with pytest.raises(UserError, match=r"not a function of the inputs: input \['1', '2'\] "
                                        r"at lines 3 and 7"):
        check_functional([c, a, b], lines=[1, 3, 7])
    with pytest.raises(UserError, match="at examples 1 and 3"):
        check_functional([a, c, b])
