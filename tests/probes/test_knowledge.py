"""Knowledge probes with known answers: anchors land just before each value and on the name's
last token, a P-probe reads an attribute the embedding carries (and stays at chance where the
attribute is not yet in the input), exact-match QA scoring, the QA finetune learns, and bad
input to `workbench probes knowledge run`: one line, exit 2, nothing written."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from probes.knowledge_data import ANCHORS, encode_biographies, encode_names, encode_qa, \
    label_classes  # noqa: E402
from probes.knowledge_probe import ProbeConfig, fit_knowledge_probe  # noqa: E402
from probes.knowledge_qa import FinetuneConfig, finetune_qa, qa_accuracy  # noqa: E402
from training.corpora.biographies import biographies, make_people, qa_pairs  # noqa: E402
from training.corpora.bios_templates import ATTRIBUTES  # noqa: E402


@pytest.fixture(scope="module")
def bios_tok():
    from training.lm.tokenizer import train_tokenizer
    people = make_people(30, seed=1)
    texts = [b.text for b in biographies(people, augmentation="multi2+permute")]
    texts += [q.text for q in qa_pairs(people)]
    return people, train_tokenizer(texts, 600)


def _decode(tok, ids):
    return tok.decode([int(i) for i in ids])


def test_anchors_are_the_name_end_and_the_token_before_each_value(bios_tok):
    people, tok = bios_tok
    by_id = {p.id: p for p in people}
    bios = biographies(people, augmentation="multi2+permute")
    data = encode_biographies(tok, bios, by_id, label_classes(people), n_ctx=512)
    assert data.anchor_names == ANCHORS
    for row, bio in enumerate(bios):
        person = by_id[bio.person_id]
        anchors = data.anchors[row].tolist()
        upto_name = _decode(tok, data.ids[row, 1:anchors[0] + 1])
        assert upto_name.endswith(person.full_name) and upto_name.count(person.full_name) == 1
        for attribute, at in zip(ATTRIBUTES, anchors[1:]):
            before = _decode(tok, data.ids[row, 1:at + 1])
            assert bio.text[:bio.value_spans[attribute].start].rstrip() == before.rstrip()
            first = _decode(tok, data.ids[row, at + 1:at + 2]).strip()  # the value's first
            assert first and person.value(attribute).startswith(first)
    names = encode_names(tok, people, label_classes(people))
    assert [_decode(tok, names.ids[i, 1:names.anchors[i, 0] + 1]).strip()
            for i in range(3)] == [p.full_name for p in people[:3]]


def _tiny_gpt2(vocab=40, n_layer=1, d=32, n_positions=16):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=d,
                                  n_layer=n_layer, n_head=4, bos_token_id=0,
                                  eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _planted(n=240, n_classes=5, seed=0):
    """Sequences ``[filler, filler, class-token, filler...]``: the attribute is the token at
    position 2; anchor 0 is position 1 (before it), anchor 1 is position 2 (on it)."""
    from probes.knowledge_data import Encoded
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    ids = torch.randint(10, 40, (n, 6), generator=gen)
    ids[:, 2] = labels + 1  # class tokens 1..5
    return Encoded(ids=ids, lengths=torch.full((n,), 6), anchors=torch.tensor([[1, 2]] * n),
                   anchor_names=("before", "on"), labels=labels[:, None],
                   person_ids=torch.arange(n))


def test_p_probe_recovers_an_attribute_the_input_carries_and_not_before_it():
    data = _planted()
    train = torch.arange(len(data.ids)) % 2 == 0  # entity split: disjoint rows
    table = fit_knowledge_probe(_tiny_gpt2(), data, train, [5], ("attr",),
                                ProbeConfig(rank=2, steps=150, batch_size=32, lr=1e-2))
    assert table.anchors == ("before", "on") and table.n_test == 120
    before, on = table.accuracy[0][0], table.accuracy[1][0]
    assert on > 0.95, table
    assert before < table.chance[0] + 0.15, table


def test_probe_refuses_a_one_sided_split():
    data = _planted(n=20)
    with pytest.raises(ValueError):
        fit_knowledge_probe(_tiny_gpt2(), data, torch.ones(20, dtype=torch.bool), [5],
                            ("attr",), ProbeConfig(steps=1))


class _Oracle(torch.nn.Module):
    """Predicts the true next token, except at answers of attributes in ``wrong``."""

    def __init__(self, data, wrong=()):
        super().__init__()
        self.data, self.wrong = data, wrong

    def forward(self, input_ids):
        nxt = torch.roll(input_ids, -1, dims=1)
        rows = [i for i, ids in enumerate(self.data.ids) if any(
            torch.equal(ids, r) for r in input_ids)]
        for j, ids in enumerate(input_ids):
            match = [i for i in rows if torch.equal(self.data.ids[i], ids)]
            if match and self.data.attributes[match[0]] in self.wrong:
                last = int(self.data.answer_mask[match[0]].nonzero().max())
                nxt[j, last - 1] = (nxt[j, last - 1] + 1) % 600  # only the last answer token
        return type("Out", (), {"logits": torch.nn.functional.one_hot(nxt, 600).float()})

    def eval(self):
        return self


def test_qa_exact_match_needs_every_answer_token(bios_tok):
    people, tok = bios_tok
    data = encode_qa(tok, qa_pairs(people[:10]))
    assert qa_accuracy(_Oracle(data), data) == {**{a: 1.0 for a in ATTRIBUTES}, "all": 1.0}
    acc = qa_accuracy(_Oracle(data, wrong=("major", "employer")), data, batch_size=7)
    assert acc["major"] == 0.0 and acc["employer"] == 0.0 and acc["birth_city"] == 1.0
    assert acc["all"] == pytest.approx(4 / 6, abs=1e-3)
    # answer tokens: the decoded answer, right after " Answer:"
    first = data.answer_mask[0].nonzero().squeeze(1)
    q = qa_pairs(people[:1])[0]
    assert _decode(tok, data.ids[0, first]).strip() == q.answer
    assert _decode(tok, data.ids[0, 1:int(first[0])]).endswith("Answer:")


def test_qa_finetune_memorises_the_trained_answers(bios_tok):
    people, tok = bios_tok
    data = encode_qa(tok, qa_pairs(people[:4], "birth_city"))
    model = _tiny_gpt2(vocab=tok.get_vocab_size(), n_layer=2, n_positions=64)
    before = qa_accuracy(model, data)["all"]
    tuned = finetune_qa(model, data, FinetuneConfig(steps=150, batch_size=4, lr=5e-3))
    assert before == 0.0 and qa_accuracy(tuned, data)["all"] == 1.0
    assert qa_accuracy(model, data)["all"] == before  # the original is untouched


@pytest.mark.parametrize("args, message", [
    (["--people", "3"], "--people"), (["--augmentation", "multiX"], "multiX"),
    (["--protocol", "both"], "--protocol"), (["--steps", "0"], "--steps"),
    (["--model", "[1]"], "--model"), (["--model", '{"d_model": 63}'], "d_model"),
    (["--model", '{"widgets": 1}'], "widgets"), (["--qa-fraction", "1"], "--qa-fraction"),
    (["--series-checkpoints", "-1"], "--series-checkpoints"), (["--pool-size", "1"], "--pool-size")])
def test_bad_input_one_line_exit_2_nothing_written(run_cli, home, args, message):
    proc = run_cli("probes", "knowledge", "run", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not (home / "knowledge").exists() and not list((home / "runs").glob("*"))


def test_series_checkpoints_spread_over_the_run_first_and_last_included():
    from probes.knowledge_series import pick_checkpoints
    steps = [1, 4, 15, 60, 6, 12, 18, 24, 30, 36, 42, 48, 54]
    assert pick_checkpoints(steps, 3) == [1, 24, 60]
    assert pick_checkpoints(steps, 1) == [60] and pick_checkpoints(steps, 0) == []
    assert pick_checkpoints(steps, 50) == sorted(steps)
    assert len(pick_checkpoints(steps, 6)) == 6


def test_name_anchor_only_cuts_biographies_at_the_name(bios_tok):
    from probes.knowledge_series import name_anchor_only
    people, tok = bios_tok
    bios = [b for b in biographies(people[:4], augmentation="single")]
    data = encode_biographies(tok, bios, {p.id: p for p in people}, label_classes(people), 256)
    cut = name_anchor_only(data)
    assert cut.anchor_names == ("name",) and torch.equal(cut.anchors, data.anchors[:, :1])
    assert cut.ids.shape[1] == int(data.anchors[:, 0].max()) + 1
    assert torch.equal(cut.ids, data.ids[:, :cut.ids.shape[1]])


class _ReadAhead(torch.nn.Module):
    """Predicts every next token of the known texts, except where ``wrong`` marks it."""

    def __init__(self, vocab: int, wrong: set[int] = frozenset()):
        super().__init__()
        self.vocab, self.wrong = vocab, wrong
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids):
        nxt = torch.roll(input_ids, -1, dims=1)  # [B, T]: the oracle reads ahead
        nxt = torch.where(torch.isin(nxt, torch.tensor(sorted(self.wrong) or [-1])), 0, nxt)
        logits = torch.nn.functional.one_hot(nxt, self.vocab).float() * 20.0
        return type("Out", (), {"logits": logits})()


def test_value_memorisation_counts_values_written_exactly(bios_tok):
    from probes.knowledge_qa import value_memorisation
    people, tok = bios_tok
    bios = [b for b in biographies(people[:6], augmentation="single")]
    vocab = tok.get_vocab_size()
    perfect = value_memorisation(_ReadAhead(vocab), tok, bios)
    assert all(perfect[a] == 1.0 for a in ATTRIBUTES) and perfect["all"] == 1.0
    assert perfect["loss"] < 1e-3
    # the oracle misses the tokens only birth dates use: birth date is never written, the
    # other values always
    def tokens(attributes):
        return {i for p in people for a in attributes for i in tok.encode(" " + p.value(a)).ids}
    others = [a for a in ATTRIBUTES if a != "birth_date"]
    missed = value_memorisation(_ReadAhead(vocab, tokens(["birth_date"]) - tokens(others)),
                                tok, bios)
    assert missed["birth_date"] == 0.0 and missed["loss"] > 1.0
    assert all(missed[a] == 1.0 for a in others)


def test_pool_size_follows_the_people_unless_given():
    from probes.knowledge import PEOPLE_PER_VALUE, KnowledgeConfig
    assert KnowledgeConfig(people=300).pool_size == 300 // PEOPLE_PER_VALUE == 12
    assert KnowledgeConfig(people=20).pool_size == 2  # never a one-value pool
    assert KnowledgeConfig(people=300, pool_size=0).pool_size == 0  # the whole pools
    assert KnowledgeConfig(people=300, pool_size=30).pool_size == 30
    # resolved before the key: an explicit 12 and the default at 300 people are one config
    assert KnowledgeConfig(people=300).key() == KnowledgeConfig(people=300, pool_size=12).key()
    assert KnowledgeConfig(people=300).key() != KnowledgeConfig(people=300, pool_size=0).key()
