"""One generation on the compute thread, advanced one backend event at a time.

Pulling a token at a time lets the engine notice an abort or a deadline between two tokens, and run
CLIP batches in between. Leaving a generation closes the backend's iterator, which for HailoRT
leaves the generation's context and so aborts it on the device.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from npu_worker.backend import (
    BackendError,
    DeviceFailedError,
    Finish,
    GenerationEvent,
    Message,
    SamplingParams,
)
from npu_worker.protocol import Final, Generate, Token
from npu_worker.structured import with_json_hint

if TYPE_CHECKING:
    from npu_worker.engine import Engine

log = logging.getLogger("npu_worker.generation")


@dataclass
class GenerateJob:
    rid: str
    model: str
    messages: list[Message]
    params: SamplingParams
    timeout_s: float
    stream: bool = True  # False: the text comes whole in Final, no Token frames
    received: float = 0.0  # the engine's clock when it was queued
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_message(cls, message: Generate) -> GenerateJob:
        return cls(
            message.rid,
            message.model,
            list(message.messages),
            message.params,
            message.timeout_s,
            message.stream,
        )


class Generation:
    """A running generation; `step()` until it says it is over."""

    def __init__(self, engine: Engine, job: GenerateJob, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.job = job
        self.clock = clock
        self.started = clock()
        self.first_token_at: float | None = None
        self.deadline = job.received + job.timeout_s
        self.events: Iterator[GenerationEvent] | None = None
        self.text: list[str] = []

    def step(self) -> bool:
        """Advance by one event; True when the generation is over (finished, failed or cancelled)."""
        job, engine = self.job, self.engine
        try:
            if job.cancelled.is_set():
                engine.figures.requests_cancelled += 1
                return self.close()
            if self.events is None:
                messages = with_json_hint(job.messages, job.params)
                self.events = engine.backend.generate(job.model, messages, job.params)
            event = next(self.events)
            if isinstance(event, Finish):
                engine.figures.requests_finished += 1
                engine.emit(self._final(event))
                return self.close()
            engine.figures.tokens_generated += 1
            self.first_token_at = self.first_token_at or self.clock()
            if event.text and job.stream:
                engine.emit(Token(job.rid, event.text, event.token_id))
            elif event.text:
                self.text.append(event.text)
            if self.clock() > self.deadline:
                engine.fail(job.rid, "timeout", f"generation exceeded its {job.timeout_s:g} s timeout")
                return self.close()
            return False
        except StopIteration:
            engine.fail(job.rid, "internal_error", "the backend ended a generation without a finish")
        except DeviceFailedError as exc:
            engine.fail(job.rid, exc.code, exc.message)
            engine.on_fatal(exc.message)
        except BackendError as exc:
            engine.fail(job.rid, exc.code, exc.message, getattr(exc, "param", None))
        except Exception as exc:
            log.exception("generation_crashed", extra={"fields": {"rid": job.rid}})
            engine.fail(job.rid, "internal_error", f"the backend failed: {exc!r}")
        return self.close()

    def _final(self, event: Finish) -> Final:
        now = self.clock()
        return Final(
            rid=self.job.rid,
            text="".join(self.text),
            reason=event.reason,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            queue_wait_s=self.started - self.job.received,
            ttft_s=(self.first_token_at or now) - self.started,
            compute_s=now - self.started,
            cached_tokens=event.cached_tokens,
        )

    def close(self) -> bool:
        if self.events is not None and hasattr(self.events, "close"):
            self.events.close()  # leaves the backend's generation context: aborts device work
        return True
