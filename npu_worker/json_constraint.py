"""Structured output on the CPU backend: constrained decoding, so the answer always parses and validates.

llguidance (the grammar engine behind llama.cpp's and vLLM's JSON Schema support) compiles the
request's JSON Schema and, driven by the model's own tokenizer, says before every token which tokens
keep the output a valid prefix of a document the schema accepts; every other token's logit is set to
-inf before sampling, and the end-of-sequence token is allowed only once the document is complete.
So whatever the sampling (temperature 1 included), the output parses and validates - unless it runs
out of max_tokens first (finish_reason "length").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import llguidance
import numpy as np

from npu_worker.backend import InvalidRequestError


def grammar(schema_json: str) -> str:
    """The llguidance grammar of a JSON Schema, or InvalidRequestError naming what it cannot do."""
    try:
        # Laid out as json.dumps writes it ({"a": 1, "b": 2}), the form models see most in training
        # (the demo VLM learnt exactly it): the compact form pushed the demo off what it knows, so it
        # answered {"color":": ","shape":", "} to every picture. No other whitespace: a model cannot
        # spend its tokens on indentation.
        compiled = llguidance.LLMatcher.grammar_from_json_schema(
            json.loads(schema_json),
            {"key_separator": ": ", "item_separator": ", ", "whitespace_flexible": False},
        )
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(f"the JSON Schema cannot be used: {exc}", "response_format") from exc
    problem = llguidance.LLMatcher.validate_grammar(compiled)
    if problem:
        raise InvalidRequestError(f"the JSON Schema cannot be enforced: {problem}", "response_format")
    return compiled


class JsonVocabulary:
    """A model's tokenizer as llguidance sees it; built once per model (it walks the vocabulary)."""

    def __init__(self, tokenizer_json: Path, end_ids: Iterable[int]) -> None:
        self.tokenizer = llguidance.LLTokenizer(
            tokenizer_json.read_text(encoding="utf-8"), eos_token=sorted(end_ids)
        )

    def constraint(self, schema_json: str) -> JsonConstraint:
        matcher = llguidance.LLMatcher(self.tokenizer, grammar(schema_json))
        return JsonConstraint(matcher, self.tokenizer.vocab_size)


class JsonConstraint:
    """One generation's matcher: masks the logits before each token, follows the chosen token after."""

    def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int) -> None:
        self.matcher = matcher
        self._mask = np.full((vocab_size + 31) // 32, -1, dtype=np.int32)
        self._vocab_size = vocab_size

    def allowed(self, logits: np.ndarray) -> np.ndarray:
        """A copy of `logits` with every token the schema forbids next at -inf (and every id past the
        tokenizer's vocabulary, which a model's padded output row may have)."""
        self.matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        bits = np.unpackbits(self._mask.view(np.uint8), bitorder="little")[: self._vocab_size]
        allow = np.zeros(logits.size, dtype=bool)
        allow[: min(logits.size, bits.size)] = bits[: logits.size].astype(bool)
        return np.where(allow, logits, -np.inf)

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"the JSON matcher refused token {token}: {self.matcher.get_error()}")
