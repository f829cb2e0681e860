"""Byte-level BPE tokenizers (Hugging Face ``tokenizers``): train one on a corpus, or load a
given ``tokenizer.json``; their identity is the SHA-256 of the canonical JSON.

Byte-level: every byte is in the base alphabet, so any text encodes without unknown tokens;
one special token, ``<|endoftext|>`` (GPT-2's), separates documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from workbench.errors import UserError

EOS = "<|endoftext|>"
MIN_VOCAB = 257  # 256 bytes + the end-of-text token
# end-of-text tokens of tokenizers a user may bring (GPT-2, Llama / SentencePiece, others)
_EOS_CANDIDATES = (EOS, "</s>", "<eos>", "<|end_of_text|>")
TOKENIZER_FILE = "tokenizer.json"


def parse_spec(spec: str) -> tuple[str, int | Path]:
    """``train:VOCAB`` -> ("train", vocab) or ``DIR`` -> ("dir", path); validated, no I/O
    beyond checking the directory."""
    if spec.startswith("train:"):
        raw = spec.split(":", 1)[1]
        try:
            vocab = int(raw)
        except ValueError:
            raise UserError(f"--tokenizer train:VOCAB needs an integer size, got {raw!r}") \
                from None
        if vocab < MIN_VOCAB:
            raise UserError(f"--tokenizer train:{vocab}: a byte-level vocabulary needs at least "
                            f"{MIN_VOCAB} tokens (256 bytes + {EOS})")
        return "train", vocab
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise UserError(f"--tokenizer {spec!r} is neither train:VOCAB_SIZE nor a directory")
    if not (path / TOKENIZER_FILE).is_file():
        raise UserError(f"tokenizer directory {spec!r} has no {TOKENIZER_FILE} "
                        "(a Hugging Face fast tokenizer)")
    return "dir", path


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE of ``vocab_size`` tokens trained on ``texts`` (streamed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def load_tokenizer(directory: str | Path):
    from tokenizers import Tokenizer

    path = Path(directory) / TOKENIZER_FILE
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises a bare Exception on malformed files
        raise UserError(f"cannot read tokenizer {str(path)!r}: {exc}") from None


def eos_id(tok) -> int:
    for name in _EOS_CANDIDATES:
        idx = tok.token_to_id(name)
        if idx is not None:
            return idx
    raise UserError("the tokenizer has no end-of-text token (one of "
                    f"{', '.join(_EOS_CANDIDATES)}) to separate documents")


def eos_token(tok) -> str:
    return tok.id_to_token(eos_id(tok))


def canonical_json(tok) -> str:
    return tok.to_str(pretty=False)


def tokenizer_sha256(tok) -> str:
    return hashlib.sha256(canonical_json(tok).encode()).hexdigest()


def save_hf_tokenizer(tok, directory: str | Path) -> None:
    """The Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json, special tokens)
    that ``AutoTokenizer`` and ``TransformerBridge.boot_transformers`` read."""
    from transformers import PreTrainedTokenizerFast

    name = eos_token(tok)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=name, bos_token=name,
                                   unk_token=name, pad_token=name)
    fast.save_pretrained(str(directory))
