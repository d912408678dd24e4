"""Structured output that does not depend on the backend: the prompt's hint, and validate-and-retry.

Whatever the dialect (Chat Completions' response_format, the Responses API's text.format, Ollama's
format), a request for JSON reaches the worker as `SamplingParams.json_schema`. The model is told to
answer in JSON (`JSON_HINT`, the form the demo model was trained on; a real Qwen2-VL follows it too).
The CPU backend then constrains every token (npu_worker/json_constraint.py), so its answer always
parses and validates. The Hailo device exposes no logits: its answer is checked against the schema
and the generation tried again, sampling, up to `inference.structured_output_attempts` times; the
tokens of the answer that validated are the ones sent, so a streaming client sees them only once
they are known to be good.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence

import jsonschema

from npu_worker.backend import (
    BackendError,
    Finish,
    GenerationEvent,
    Message,
    SamplingParams,
    TextPart,
    Token,
)

JSON_HINT = "Answer in JSON."
RETRY_TEMPERATURE = 0.7  # a greedy first attempt would only repeat itself


class StructuredOutputError(BackendError):
    """The model's answers did not meet the JSON Schema within the attempts allowed."""

    code = "structured_output_failed"


def with_json_hint(messages: Sequence[Message], params: SamplingParams) -> Sequence[Message]:
    """The conversation with the JSON hint at the end of its last user message, when JSON is asked."""
    if not params.json_schema:
        return messages
    last = max(i for i, m in enumerate(messages) if m.role == "user")
    hinted = Message("user", (*messages[last].parts, TextPart(f"\n{JSON_HINT}")))
    return [*messages[:last], hinted, *messages[last + 1 :]]


def schema_problem(text: str, schema_json: str) -> str | None:
    """Why `text` is not a JSON document the schema accepts, or None when it is."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return f"not JSON ({exc})"
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(json.loads(schema_json)).iter_errors(document)
    )
    return None if error is None else error.message


def validated(
    generate: Callable[[SamplingParams], Iterator[GenerationEvent]], params: SamplingParams, attempts: int
) -> Iterator[GenerationEvent]:
    """Generate until an answer meets params.json_schema (at most `attempts` times), then yield it."""
    problem = ""
    for attempt in range(attempts):
        tries = params if attempt == 0 else _resampled(params, attempt)
        events = list(generate(tries))
        finish = events[-1]
        tokens = [e for e in events if isinstance(e, Token)]
        assert isinstance(finish, Finish)
        found = schema_problem("".join(t.text for t in tokens), params.json_schema)
        if found is None:
            yield from events
            return
        problem = found
    raise StructuredOutputError(
        f"the model's answer did not meet the JSON Schema in {attempts} attempts "
        f"(inference.structured_output_attempts); the last one: {problem}"
    )


def _resampled(params: SamplingParams, attempt: int) -> SamplingParams:
    seed = None if params.seed is None else params.seed + attempt
    return dataclasses.replace(params, temperature=max(params.temperature, RETRY_TEMPERATURE), seed=seed)
