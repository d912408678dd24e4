"""One generation: the device producing tokens in the background, the client reading them from a queue.

Mirrors HailoRT 5.2.0 (libhailort/src/genai/llm/llm.cpp LLMGeneratorCompletion::Impl and
hailort_server/genai/llm/llm_server.cpp): a reader thread keeps asking the device for the next token
whether or not the client reads, up to 1024 queued; the client's generation_status is the status of
the last token IT read. Per token the device decides, in this order: MAX_TOKENS_REACHED (count >=
max_generated_tokens), LOGICAL_END_OF_GENERATION (the tail matches a stop sequence, by default the
HEF's stop ids such as <|im_end|>), ABORTED (an abort was requested), else GENERATING. The last token
is delivered with its text (special tokens included, so "<|im_end|>" shows); after MAX_TOKENS_REACHED
or ABORTED the recovery sequence (default: the eos token) follows, its last token carrying the status.
Releasing the completion while the client still sees GENERATING requests an abort and waits for the
device to finish (one more token, then the recovery sequence). A failure on the device (e.g. a prompt
whose image placeholders do not match the frames) ends the thread; the client's next read() then
fails with status 6, as the real read() does once the reader thread has shut down.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from hailo_double_tools import journal
from hailo_double_tools.device_sampling import DeviceSampler
from hailo_double_tools.generator_params import HAILO_RANDOM_SEED, GeneratorParams
from hailo_double_tools.native import (
    HAILO_INVALID_OPERATION,
    HAILO_TIMEOUT,
    STATUS_EXCEPTIONS,
    fail,
    log,
)
from hailo_double_tools.native import LLMGeneratorCompletionStatus as Status
from hailo_double_tools.settings import token_delay_s

if TYPE_CHECKING:
    from hailo_double_tools.genai_model import GenAIModel

TOKENS_BACKLOG = 1024
MAX_STOP_SEQUENCE_LENGTH = 50
POLL_S = 0.02


class GenerationJob:
    """The device side of one generation, run on its own thread."""

    def __init__(
        self,
        model: GenAIModel,
        prompt: str,
        frames: list[np.ndarray],
        params: GeneratorParams,
        videos: list[list[np.ndarray]] | None = None,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.frames = frames
        self.videos = videos or []
        self.params = params
        self.tokens: queue.Queue[tuple[str, Status]] = queue.Queue(TOKENS_BACKLOG)
        self.abort_requested = threading.Event()
        self.device_done = threading.Event()  # the device is free: nothing left to compute
        self.finished = threading.Event()  # the reader thread ended
        self.device_status: Status | None = None
        self.generated = 0
        self.error: str | None = None
        self._text_buffer: list[int] = []
        self._thread = threading.Thread(target=self._run, name="hailo-double-generation", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._decode(self.model.prefill(self.prompt, self.frames, self.videos))
        except STATUS_EXCEPTIONS as exc:
            self.error = f"status {exc.args[0]}"
        except Exception as exc:  # a crash of the double itself must still end the generation
            self.error = repr(exc)
            log.exception("hailo double: generation failed")
        finally:
            self.device_done.set()
            self.finished.set()

    def _decode(self, logits: np.ndarray) -> None:
        params, context = self.params, self.model.context
        seed = None if params.seed == HAILO_RANDOM_SEED else params.seed
        sampler = DeviceSampler(
            params.temperature, params.top_p, params.top_k, params.frequency_penalty, params.do_sample, seed
        )
        recent: deque[int] = deque(maxlen=MAX_STOP_SEQUENCE_LENGTH)
        while True:
            delay = token_delay_s()
            if delay > 0:
                time.sleep(delay)
            token = sampler.choose(logits, context.history)
            self.generated += 1
            status = self._status(token, recent)
            if status is Status.GENERATING:
                self._deliver(token, status)
                logits = self.model.feed_token(token)
                continue
            self._finish(token, status)
            return

    def _status(self, token: int, recent: deque[int]) -> Status:
        if self.generated >= self.params.max_generated_tokens:
            return Status.MAX_TOKENS_REACHED
        stops = self.model.stop_sequences
        if stops:
            recent.append(token)
            tail = list(recent)
            if any(seq and tail[-len(seq) :] == seq for seq in stops):
                return Status.LOGICAL_END_OF_GENERATION
        if self.abort_requested.is_set():
            return Status.ABORTED
        return Status.GENERATING

    def _finish(self, token: int, status: Status) -> None:
        """End of generation: the server's handle_generation_completion, then delivery.

        The device is free before the client can read the last token, as on the real server, where
        the reply carrying it is sent after the generation's state is settled.
        """
        self.device_status = status
        self._text_buffer.clear()
        final = self._finishing_tokens(token, status)
        self.device_done.set()
        for text, item_status in final:
            self.tokens.put((text, item_status))

    def _finishing_tokens(self, token: int, status: Status) -> list[tuple[str, Status]]:
        if self.params.max_generated_tokens == 0:  # no tokens back: the prefill only fills the context
            return [("", status)]
        context = self.model.context
        context.pending = [token]
        recovery = list(self.model.recovery_tokens)
        if status is Status.LOGICAL_END_OF_GENERATION or not recovery:
            return [self._settle(token, status)]
        final = [self._settle(token, Status.GENERATING)]
        for index, extra in enumerate(recovery):
            context.pending.append(extra)
            final.append(self._settle(extra, status if index == len(recovery) - 1 else Status.GENERATING))
        return final

    def _settle(self, token: int, status: Status) -> tuple[str, Status]:
        """The server's handle_next_token: the token joins the penalty history and is decoded."""
        self.model.context.history.add(token)
        return self._token_text(token), status

    def _deliver(self, token: int, status: Status) -> None:
        self.tokens.put(self._settle(token, status))

    def _token_text(self, token: int) -> str:
        """HailoTokenizer::tokens_to_text(force_printable): hold tokens until they decode cleanly."""
        self._text_buffer.append(token)
        text = self.model.decode(self._text_buffer)
        if "\ufffd" in text:
            return ""
        self._text_buffer.clear()
        return text

    def next_token(self, timeout_s: float) -> tuple[str, Status]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.tokens.get(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
            except queue.Empty:
                if self.finished.is_set() and self.tokens.empty():
                    fail(HAILO_INVALID_OPERATION, f"The generation ended on the device ({self.error})")
                if time.monotonic() >= deadline:
                    fail(HAILO_TIMEOUT, "Timeout waiting for the next token")

    def abort(self) -> None:
        """LLMGeneratorCompletion::Impl::abort: flag the device, wait for the reader thread to end."""
        self.abort_requested.set()
        while not self.finished.wait(POLL_S):
            self._drain()
        self._thread.join()

    def _drain(self) -> None:
        """Keep the queue from blocking the device while an abort waits (the client reads no more)."""
        try:
            while True:
                self.tokens.get_nowait()
        except queue.Empty:
            pass


class Completion:
    """The native LLMGeneratorCompletion the Python LLMGeneratorCompletion wraps."""

    def __init__(self, job: GenerationJob, call: dict[str, Any]) -> None:
        self.job = job
        self.call = call
        self.status = Status.GENERATING
        self.tokens_read = 0
        self.released = False

    def generation_status(self) -> Status:
        return self.status

    def read(self, timeout_ms: int) -> str:
        if self.status is not Status.GENERATING:
            fail(HAILO_INVALID_OPERATION, "read() cannot be called after generation completed!")
        text, self.status = self.job.next_token(timeout_ms / 1000)
        self.tokens_read += 1
        return text

    def read_all(self, timeout_ms: int) -> str:
        deadline = time.monotonic() + timeout_ms / 1000
        pieces = []
        while self.status is Status.GENERATING:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            pieces.append(self.read(remaining_ms))
        return "".join(pieces)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        released_while_generating = self.status is Status.GENERATING
        if released_while_generating:
            self.job.abort()
        self.job.model.generation_released(self.job)
        journal.log(
            "generation_ended",
            call_id=self.call.get("call_id"),
            status=self.status.name,
            device_status=self.job.device_status.name if self.job.device_status else None,
            tokens_read=self.tokens_read,
            tokens_generated=self.job.generated,
            released_while_generating=released_while_generating,
            error=self.job.error,
        )
