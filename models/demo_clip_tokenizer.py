"""The demo CLIP's own tokenizer: CLIP's byte-level BPE pipeline, trained on the demo captions.

It is built with the `tokenizers` library exactly as transformers' CLIPTokenizer assembles one
(NFC + whitespace + lowercase normaliser, CLIP's split regex then byte-level pre-tokeniser, "</w>"
end-of-word suffix, RobertaProcessing adding <|startoftext|> ... <|endoftext|>). Like OpenAI's vocab
it holds all 256 byte symbols with and without "</w>", so any text tokenises without an unknown
token, and the two special tokens come last.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


def _pipeline(tokenizer: Tokenizer) -> None:
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()


def train_bpe(texts: list[str], vocab_size: int = 1000) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Merges learnt from the captions (every word they use ends up one token)."""
    trainer_model = Tokenizer(BPE(end_of_word_suffix=END_OF_WORD, unk_token=EOS))
    _pipeline(trainer_model)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix=END_OF_WORD,
    )
    trainer_model.train_from_iterator(texts, trainer)
    state = json.loads(trainer_model.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges  # type: ignore[return-value]


def build_tokenizer(texts: list[str]) -> Tokenizer:
    learnt_vocab, merges = train_bpe(texts)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    ordered = alphabet + [a + END_OF_WORD for a in alphabet]
    ordered += [a + b for a, b in merges]
    ordered += sorted(t for t in learnt_vocab if t not in set(ordered))  # e.g. a learnt "x</w>" symbol
    vocab: dict[str, int] = {}
    for token in [*ordered, BOS, EOS]:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            continuing_subword_prefix="",
            end_of_word_suffix=END_OF_WORD,
            fuse_unk=False,
            unk_token=EOS,
        )
    )
    _pipeline(tokenizer)
    tokenizer.add_special_tokens([BOS, EOS])
    tokenizer.post_processor = processors.RobertaProcessing(
        (EOS, vocab[EOS]), (BOS, vocab[BOS]), trim_offsets=False, add_prefix_space=False
    )
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, out_dir: Path, max_length: int) -> None:
    """tokenizer.json plus the HF side files that name the special tokens and the class."""
    tokenizer.save(str(out_dir / "tokenizer.json"))
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "errors": "replace",
        **special,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
