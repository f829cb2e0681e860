"""Shared fixtures: an isolated WORKBENCH_HOME per test, a store on it, single-threaded torch.

Tests run on a 2-core machine, often in parallel: one torch thread per process avoids OpenMP
oversubscription (which slows small-model steps by an order of magnitude).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Keep every test at one torch thread, even after code that changes the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh WORKBENCH_HOME, also seen by subprocesses started by the test."""
    path = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


@pytest.fixture
def store(home):
    from workbench.store import RunStore

    return RunStore(home)


@pytest.fixture
def run_cli(home):
    """Run ``workbench ARGS`` in a subprocess; returns the CompletedProcess."""

    def run(*args, timeout=300, check=False):
        env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"workbench {' '.join(map(str, args))} failed:\n{proc.stderr}")
        return proc

    return run


def pytest_collection_modifyitems(config, items):
    """Browser tests share one xdist worker (``--dist loadgroup``): dash_duo serves on a fixed
    port, so two at once on different workers would collide."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture
def save_tiny_gpt2():
    """Save a tiny GPT-2 with a WordLevel tokenizer to a directory, the way a Hugging Face
    model directory looks on disk; returns the ``GPT2LMHeadModel``. ``edit(model, tokenizer)``
    runs before saving (e.g. to plant structure into the embeddings)."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    def save(directory, words=None, *, n_layer=2, n_embd=32, edit=None):
        words = list(words) if words is not None else [f"w{i}" for i in range(30)]
        vocab = {w: i for i, w in enumerate(["<unk>", "<eos>"] + words)}
        tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
        tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
        fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                                    eos_token="<eos>", bos_token="<eos>")
        config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=16, n_embd=n_embd,
                                         n_layer=n_layer, n_head=4, bos_token_id=1,
                                         eos_token_id=1)
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(config).eval()
        if edit is not None:
            with torch.no_grad():
                edit(model, fast)
        model.save_pretrained(directory)
        fast.save_pretrained(directory)
        return model

    return save


@pytest.fixture(scope="module")
def arith_corpus(tmp_path_factory):
    """A prepared token corpus (400 arithmetic documents, a 300-token BPE) for pretraining
    tests; read-only (copy it to change it)."""
    from training.lm.prepare import prepare
    out = tmp_path_factory.mktemp("lmdata") / "arith"
    prepare(["builtin:arithmetic:400"], tokenizer="train:300", output=str(out), val_frac=0.1)
    return out
