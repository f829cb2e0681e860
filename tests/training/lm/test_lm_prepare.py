"""`workbench data prepare`: every source format, byte-identical output, memory bounded by a
chunk, the token stream read back equals the tokenizer's encoding, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.lm.prepare import prepare
from training.lm.shards import TokenStream, read_manifest
from training.lm.tokenizer import load_tokenizer
from workbench.cli import main

LINES = [f"{a} plus {b} is {a + b}" for a in range(40) for b in range(0, 40, 3)]


def _sources(tmp_path):
    """The same documents as text (blank-line separated), JSONL, Parquet and a datasets dir."""
    docs = ["\n".join(LINES[i:i + 5]) for i in range(0, len(LINES), 5)]
    txt = tmp_path / "corpus.txt"
    txt.write_text("\n\n".join(docs) + "\n")
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    import pyarrow as pa
    import pyarrow.parquet as pq
    parquet = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": docs}), parquet)
    datasets = pytest.importorskip("datasets")
    hf = tmp_path / "hfds"
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(hf))
    return docs, [txt, jsonl, parquet, hf]


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_every_format_gives_the_same_tokens_and_output_is_byte_identical(tmp_path):
    docs, sources = _sources(tmp_path)
    outs = []
    for i, src in enumerate(sources):
        out = tmp_path / f"out{i}"
        result = prepare([str(src)], tokenizer="train:300", output=str(out), val_frac=0.1)
        assert result.documents == len(docs)
        outs.append(out)
    shards = [{k: v for k, v in _files(o).items() if k.endswith(".bin")} for o in outs]
    assert all(s == shards[0] for s in shards)  # one tokenizer, one token stream, any format
    again = tmp_path / "again"
    prepare([str(sources[0])], tokenizer="train:300", output=str(again), val_frac=0.1)
    assert _files(again) == _files(outs[0])  # shards, tokenizer and manifest byte-identical
    manifest = read_manifest(outs[0])
    assert manifest["splits"]["val"]["tokens"] > 0 and manifest["dtype"] == "uint16"
    # reading back: the train split is the documents outside val, each followed by EOS
    tok = load_tokenizer(outs[0] / "tokenizer")
    stream = TokenStream(outs[0], "train")
    tokens = stream.window(0, stream.n_tokens)
    eos = manifest["eos_id"]
    val = TokenStream(outs[0], "val")
    val_tokens = val.window(0, val.n_tokens)
    assert (tokens == eos).sum() + (val_tokens == eos).sum() == len(docs)
    first = tokens[:int(np.argmax(tokens == eos))]
    assert tok.decode(first.tolist()) in docs


def test_memory_bounded_by_chunk_and_output_independent_of_chunk(tmp_path):
    docs, sources = _sources(tmp_path)
    big = prepare([str(sources[1])], tokenizer="train:300", output=str(tmp_path / "big"))
    small = prepare([str(sources[1])], tokenizer="train:300", output=str(tmp_path / "small"),
                    chunk_bytes=300, shard_tokens=1000)
    corpus_bytes = sum(len(d.encode()) for d in docs)
    longest = max(len(d.encode()) for d in docs)
    assert corpus_bytes > 20 * 300
    assert small.peak_chunk_bytes <= 300 + longest < corpus_bytes / 10
    assert small.shards > 2
    a, b = TokenStream(tmp_path / "big", "train"), TokenStream(tmp_path / "small", "train")
    assert a.n_tokens == b.n_tokens
    assert np.array_equal(a.window(0, a.n_tokens), b.window(0, b.n_tokens))  # spans shards
    assert big.tokens_per_second > 0


def test_given_tokenizer_directory_and_builtin_corpus(tmp_path):
    first = tmp_path / "first"
    prepare(["builtin:arithmetic:200"], tokenizer="train:400", output=str(first))
    second = tmp_path / "second"
    prepare(["builtin:arithmetic:200"], tokenizer=str(first / "tokenizer"), output=str(second))
    assert _files(first) == _files(second)


@pytest.mark.parametrize("case", ["missing", "empty", "blank", "no-tokenizer-files",
                                  "uint16-overflow", "exists", "bad-jsonl", "small-vocab"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    good = tmp_path / "good.txt"
    good.write_text("one two three\n")
    out = tmp_path / "out"
    args = [str(good), "--tokenizer", "train:300", "-o", str(out)]
    if case == "missing":
        args[0] = str(tmp_path / "nope.txt")
    elif case == "empty":
        (tmp_path / "empty.txt").write_text("")
        args[0] = str(tmp_path / "empty.txt")
    elif case == "blank":
        (tmp_path / "blank.txt").write_text("\n\n  \n")
        args[0] = str(tmp_path / "blank.txt")
    elif case == "no-tokenizer-files":
        (tmp_path / "tokdir").mkdir()
        args[2] = str(tmp_path / "tokdir")
    elif case == "uint16-overflow":
        args[2] = "train:70000"
        args += ["--dtype", "uint16"]
    elif case == "exists":
        out.mkdir()
        (out / "keep").write_text("x")
    elif case == "bad-jsonl":
        (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"txt": 1}\n')
        args[0] = str(tmp_path / "bad.jsonl")
    elif case == "small-vocab":
        args[2] = "train:100"
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["data", "prepare", *args, "--no-progress"])  # the CLI's own entry, in-process
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error:"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if case == "exists":
        assert [p.name for p in out.iterdir()] == ["keep"]


def test_builtin_default_corpus_holds_arithmetic_and_biographies(tmp_path):
    from training.lm.corpus import builtin_documents

    docs = list(builtin_documents("builtin:default:4"))
    assert any(" = " in d for d in docs) and any("born" in d for d in docs)
    assert docs == list(builtin_documents("builtin:default:4"))  # generated deterministically
    result = prepare(["builtin:default:4"], tokenizer="train:300", output=str(tmp_path / "d"))
    assert result.documents == len(docs)


def test_global_batch_is_the_same_on_any_world_size_and_must_divide(tmp_path):
    import torch

    from training.lm.shards import Sampler, plan_batches
    from workbench.errors import UserError

    prepare(["builtin:arithmetic:100"], tokenizer="train:300", output=str(tmp_path / "d"))
    stream = TokenStream(tmp_path / "d", "train")

    def global_batch(world, micro, step):
        rows = []
        for rank in range(world):
            s = Sampler(stream, 16, plan_batches(8, micro, world, rank), seed=3)
            rows += [s.micro_batch(step, m)[0] for m in range(s.plan.accum_steps)]
        return torch.cat(rows)  # [8, 16] in rank-major order

    one = global_batch(1, 0, step=7)
    assert torch.equal(one, global_batch(2, 0, step=7))
    assert torch.equal(one, global_batch(4, 1, step=7))  # 4 ranks x 2 micro-steps
    assert not torch.equal(one, global_batch(1, 0, step=8))
    x, y = Sampler(stream, 16, plan_batches(8, 0, 1, 0), seed=3).micro_batch(7, 0)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    with pytest.raises(UserError, match="does not divide across 3 ranks"):
        plan_batches(8, 0, 3, 0)
    with pytest.raises(UserError, match="micro_batch_size 3"):
        plan_batches(8, 3, 2, 0)
