"""Run a batch of CLIP jobs: image embeddings in as few encoder runs as the batch size allows, text
embeddings from the cache or computed once (averaged over prompt templates for an ensemble).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from npu_worker.backend import Backend, BackendError
from npu_worker.config import ClipConfig
from npu_worker.logs import log_event
from npu_worker.protocol import Embed, Embeddings
from npu_worker.text_cache import TextEmbeddingCache

log = logging.getLogger("npu_worker.clip_work")
TOKEN_COUNT_ENTRIES = 50_000


@dataclass
class Prompts:
    """A job's prompt embeddings, ready before its images are encoded."""

    embeddings: np.ndarray
    tokens: int
    cache_hits: int


@dataclass
class EmbedJob:
    rid: str
    model: str
    images: list[np.ndarray]
    texts: list[str]
    templates: tuple[str, ...]  # () = texts as they are
    received: float = 0.0  # the engine's clock when it was queued
    cancelled: threading.Event = field(default_factory=threading.Event)
    prompts: Prompts | BackendError | None = None  # set by ClipWork.prepare (compute thread only)

    @classmethod
    def from_message(cls, message: Embed) -> EmbedJob:
        return cls(message.rid, message.model, list(message.images), list(message.texts), message.templates)


@dataclass
class EmbedResult:
    job: EmbedJob
    answer: Embeddings


def take_batch(queue: list[EmbedJob], max_batch: int) -> list[EmbedJob]:
    """The oldest jobs whose images fit one batch (always at least the first job)."""
    taken: list[EmbedJob] = []
    images = 0
    for job in queue:
        if taken and images + len(job.images) > max_batch:
            break
        taken.append(job)
        images += len(job.images)
    return taken


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ClipWork:
    def __init__(
        self,
        backend: Backend,
        cache: TextEmbeddingCache,
        max_batch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.cache = cache
        self.max_batch = max(1, max_batch)
        self.encoder_runs = 0
        self.images_encoded = 0
        self._token_counts: dict[tuple[str, str], int] = {}

    def text_embeddings(self, model: str, texts: Sequence[str], templates: tuple[str, ...]) -> np.ndarray:
        """(len(texts), D) embeddings; cache misses computed in one encoder run."""
        unique = list(dict.fromkeys(texts))
        found: dict[str, np.ndarray] = {}
        for text in unique:
            vector = self.cache.get((model, templates, text))
            if vector is not None:
                found[text] = vector
        missing = [text for text in unique if text not in found]
        if missing:
            if templates:
                expanded = [template.replace("{}", text) for text in missing for template in templates]
                vectors = self.backend.embed_texts(model, expanded)
                vectors = _normalise(vectors.reshape(len(missing), len(templates), -1).mean(axis=1))
            else:
                vectors = self.backend.embed_texts(model, missing)
            for text, vector in zip(missing, vectors, strict=True):
                self.cache.put((model, templates, text), vector)
                found[text] = vector
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def warm(self, model: str, dim: int, cache_file: Path | None, config: ClipConfig) -> None:
        """Load the saved text embeddings, then compute the configured preload prompts (both ways)."""
        if cache_file is not None:
            self.cache.load(cache_file, dim)
        prompts = list(config.preload_prompts)
        if prompts:
            for templates in ((), config.templates):
                self.text_embeddings(model, prompts, templates)
            log_event(log, "prompts_preloaded", count=len(prompts))

    def text_tokens(self, model: str, texts: Sequence[str]) -> int:
        """Tokens of the texts (usage figures), counted once per text: camera pipelines repeat prompts."""
        missing = [t for t in dict.fromkeys(texts) if (model, t) not in self._token_counts]
        if len(self._token_counts) + len(missing) > TOKEN_COUNT_ENTRIES:
            self._token_counts.clear()
        for text in missing:
            self._token_counts[(model, text)] = self.backend.count_text_tokens(model, [text])
        return sum(self._token_counts[(model, t)] for t in texts)

    def image_embeddings(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        chunks = [images[i : i + self.max_batch] for i in range(0, len(images), self.max_batch)]
        results = []
        for chunk in chunks:
            results.append(self.backend.embed_images(model, chunk))
            self.encoder_runs += 1
            self.images_encoded += len(chunk)
        return np.concatenate(results) if results else np.zeros((0, 0), np.float32)

    def prepare(self, job: EmbedJob) -> None:
        """Resolve the job's prompt embeddings now (cache hits, mostly), while its batch still gathers.

        The compute thread does this for queued jobs instead of idling, so when the batch runs, the
        image encoder's end releases every answer at once.
        """
        if job.prompts is not None:
            return
        try:
            hits_before = self.cache.hits
            embeddings = self.text_embeddings(job.model, job.texts, job.templates)
            tokens = self.text_tokens(job.model, job.texts)
        except BackendError as exc:
            job.prompts = exc
            return
        except Exception as exc:  # fail this job, never the compute thread that prepares it
            log.exception("clip_prompts_failed")
            job.prompts = BackendError(f"the backend failed: {exc!r}")
            return
        job.prompts = Prompts(embeddings, tokens, self.cache.hits - hits_before)

    def serve(self, batch: list[EmbedJob]) -> Iterator[tuple[EmbedJob, Embeddings | BackendError]]:
        """Each job still wanted with its answer, as soon as it is ready; a crash fails the rest of the
        batch, never the compute thread."""
        unanswered = {job.rid: job for job in batch if not job.cancelled.is_set()}
        try:
            for outcome in self.run(list(unanswered.values())):
                job, answer = (outcome.job, outcome.answer) if isinstance(outcome, EmbedResult) else outcome
                del unanswered[job.rid]
                yield job, answer
        except Exception as exc:
            log.exception("clip_batch_crashed")
            for job in unanswered.values():
                yield job, BackendError(f"the backend failed: {exc!r}")

    def run(self, jobs: list[EmbedJob]) -> Iterator[EmbedResult | tuple[EmbedJob, BackendError]]:
        """Every job's embeddings (or its error), each yielded as soon as it is ready.

        Images of jobs on the same model share encoder runs; prompts are resolved before it.
        """
        started = self.clock()
        by_model: dict[str, list[EmbedJob]] = {}
        for job in jobs:
            by_model.setdefault(job.model, []).append(job)
        for model, group in by_model.items():
            ready: list[tuple[EmbedJob, Prompts]] = []
            for job in group:
                self.prepare(job)
                if isinstance(job.prompts, Prompts):
                    ready.append((job, job.prompts))
                elif job.prompts is not None:
                    yield job, job.prompts
            try:
                images = self.image_embeddings(model, [image for job, _ in ready for image in job.images])
                scale = self.backend.logit_scale(model)
            except BackendError as exc:
                yield from ((job, exc) for job, _ in ready)
                continue
            offset = 0
            for job, prompts in ready:
                mine = images[offset : offset + len(job.images)]
                offset += len(job.images)
                answer = Embeddings(
                    rid=job.rid,
                    model=model,
                    logit_scale=scale,
                    text_tokens=prompts.tokens,
                    cache_hits=prompts.cache_hits,
                    batch_images=len(images),
                    queue_wait_s=started - job.received,
                    compute_s=self.clock() - started,
                    image_embeddings=mine,
                    text_embeddings=prompts.embeddings,
                )
                yield EmbedResult(job, answer)
