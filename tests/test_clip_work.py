"""ClipWork: prompts looked up before the image encoder runs, each job answered as it is ready."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from npu_worker.backend import BackendError
from npu_worker.clip_work import ClipWork, EmbedJob, EmbedResult
from npu_worker.text_cache import TextEmbeddingCache

DIM = 4


class RecordingEncoders:
    """Deterministic unit vectors, and the order in which the encoders were asked for them."""

    def __init__(self, failing_text: str | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.failing_text = failing_text

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(("texts", len(texts)))
        if self.failing_text in texts:
            raise BackendError(f"cannot encode {self.failing_text!r}")
        return np.stack([_unit(len(text)) for text in texts])

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(("images", len(images)))
        return np.stack([_unit(int(image[0, 0, 0])) for image in images])

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        return sum(len(text.split()) for text in texts)

    def logit_scale(self, model: str) -> float:
        return 100.0


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _job(rid: str, value: int, texts: list[str]) -> EmbedJob:
    return EmbedJob(rid, "clip", [np.full((2, 2, 3), value, np.uint8)], texts, ())


def test_prompts_are_embedded_before_the_one_image_run_and_answers_follow_it() -> None:
    encoders = RecordingEncoders()
    work = ClipWork(encoders, TextEmbeddingCache(1 << 20), max_batch=8)  # type: ignore[arg-type]
    jobs = [_job("a", 1, ["a cat", "a dog"]), _job("b", 2, ["a dog", "a bird"])]
    answers = work.run(jobs)
    first = next(answers)
    assert encoders.calls == [("texts", 2), ("texts", 1), ("images", 2)]  # texts of both jobs, then images
    rest = list(answers)
    assert [a.job.rid for a in [first, *rest] if isinstance(a, EmbedResult)] == ["a", "b"]
    assert isinstance(first, EmbedResult)
    images, texts = first.answer.image_embeddings, first.answer.text_embeddings
    np.testing.assert_allclose(images[0], _unit(1))
    np.testing.assert_allclose(texts, np.stack([_unit(5), _unit(5)]))
    assert first.answer.batch_images == 2 and first.answer.text_tokens == 4


def test_a_job_whose_prompts_fail_is_answered_with_its_error_and_keeps_out_of_the_batch() -> None:
    encoders = RecordingEncoders(failing_text="broken")
    work = ClipWork(encoders, TextEmbeddingCache(1 << 20), max_batch=8)  # type: ignore[arg-type]
    outcomes = list(work.run([_job("bad", 1, ["broken"]), _job("good", 2, ["fine"])]))
    bad, good = outcomes
    assert isinstance(bad, tuple) and bad[0].rid == "bad" and "broken" in bad[1].message
    assert isinstance(good, EmbedResult) and good.job.rid == "good"
    assert ("images", 1) in encoders.calls and good.answer.batch_images == 1


def test_prompts_prepared_while_the_batch_gathers_are_not_looked_up_again() -> None:
    encoders = RecordingEncoders(failing_text="broken")
    work = ClipWork(encoders, TextEmbeddingCache(1 << 20), max_batch=8)  # type: ignore[arg-type]
    early, failing = _job("early", 1, ["a cat"]), _job("failing", 2, ["broken"])
    work.prepare(early)
    work.prepare(failing)
    assert encoders.calls == [("texts", 1), ("texts", 1)]
    assert isinstance(failing.prompts, BackendError)
    late = _job("late", 3, ["a cat", "a newt"])
    outcomes = list(work.run([early, failing, late]))
    assert encoders.calls[2:] == [("texts", 1), ("images", 2)]  # only the late job's new prompt
    assert [o.job.rid if isinstance(o, EmbedResult) else o[0].rid for o in outcomes] == [
        "failing",
        "early",
        "late",
    ]


def test_an_unexpected_text_encoder_failure_fails_only_its_job() -> None:
    class Crashing(RecordingEncoders):
        def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
            if "boom" in texts:
                raise RuntimeError("onnxruntime fell over")
            return super().embed_texts(model, texts)

    work = ClipWork(Crashing(), TextEmbeddingCache(1 << 20), max_batch=8)  # type: ignore[arg-type]
    crashed, fine = _job("crashed", 1, ["boom"]), _job("fine", 2, ["a cat"])
    work.prepare(crashed)
    assert isinstance(crashed.prompts, BackendError) and "onnxruntime fell over" in crashed.prompts.message
    outcomes = list(work.run([crashed, fine]))
    assert isinstance(outcomes[0], tuple) and isinstance(outcomes[1], EmbedResult)
