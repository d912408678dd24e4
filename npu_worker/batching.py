"""What the worker's compute thread does next: pure policy, so it is tested without a model.

CLIP work is cheap and latency-sensitive, a VLM generation is long: image-encoder requests are
gathered into one batch and served between two tokens of a running generation, so classification
never waits behind it and the generation slows by at most one batch's time.

A batch runs when it is full (`max_batch` images), or once both its oldest request and the encoder
have waited `batch_wait_s`. The encoder's wait matters under load: the clients one run answers send
their next images within a few milliseconds, and a part-batch started the moment the encoder frees
would leave them for the run after. Closed-loop clients then settle into two half-size batches per
round and pay the encoder's fixed cost per run twice (bench/classify.py, simulated Hailo-10H CLIP,
8 clients: about 128 images/s that way, about 137 with one full batch per round).

One exception: a lone image runs at once when the previous batch was one image too. Nobody came
along last time, so a lone client (one camera, a script) does not pay the wait on every request;
as soon as two requests meet, the waiting resumes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Next(enum.Enum):
    """What the compute thread should do about CLIP and generation work."""

    CLIP = "clip"  # run a CLIP batch now
    TOKEN = "token"  # pull the running generation's next token  # noqa: S105 - not a secret
    START = "start"  # start the next queued generation
    WAIT = "wait"  # a CLIP batch is gathering: wait `wait_s`
    IDLE = "idle"  # nothing to do


@dataclass(frozen=True)
class Decision:
    action: Next
    wait_s: float = 0.0


@dataclass(frozen=True)
class WorkState:
    clip_images: int  # images waiting in CLIP jobs
    clip_text_only: bool  # a waiting CLIP job has no images (nothing to batch: run it now)
    clip_oldest_wait_s: float  # how long the oldest waiting CLIP job has waited (0 when none)
    encoder_idle_s: float  # since the last CLIP batch ended (infinite before the first)
    last_batch_images: int  # images in the last CLIP batch that had any (0 before the first)
    generating: bool  # a generation is running
    generations_queued: int


def next_step(state: WorkState, max_batch: int, batch_wait_s: float) -> Decision:
    clip_waiting = state.clip_images > 0 or state.clip_text_only
    if clip_waiting:
        waited = min(state.clip_oldest_wait_s, state.encoder_idle_s)
        alone_again = state.clip_images == 1 and state.last_batch_images <= 1
        due = (
            state.clip_text_only
            or max_batch <= 1
            or state.clip_images >= max_batch
            or waited >= batch_wait_s
            or alone_again
        )
        if due:
            return Decision(Next.CLIP)
        if state.generating:
            return Decision(Next.TOKEN)
        return Decision(Next.WAIT, batch_wait_s - waited)
    if state.generating:
        return Decision(Next.TOKEN)
    if state.generations_queued:
        return Decision(Next.START)
    return Decision(Next.IDLE)
