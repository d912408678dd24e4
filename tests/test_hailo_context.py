"""The Hailo backend on the HailoRT double: follow-up turns continue the device context, unrelated
requests clear it (saving a long one first), a release drops it; clips through VLM.generate's
`videos` (5.2.0, a two-input frame encoder), as frames, or a clear error naming the release."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import shapes_world as sw
from hailo_double import DEMO_VLM_DIR, import_version
from hailo_double_tools import make_vlm_hef

from npu_worker.backend import (
    Finish,
    ImagePart,
    InvalidRequestError,
    Message,
    ReleaseScope,
    SamplingParams,
    TextPart,
    Token,
    VideoPart,
)
from npu_worker.config import ClipConfig, Config, HailoConfig, ModelConfig
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.hailo.backend import HailoBackend
from npu_worker.hailo.vlm_context import ContextBook, Held, Media

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
GREEDY = SamplingParams(temperature=0, max_tokens=12)
MODEL = "qwen2-vl-demo"


@pytest.fixture(scope="module")
def clip_hef(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vlm_hef(tmp_path_factory.mktemp("hef"), DEMO_VLM_DIR, video_encoder=True)


def backend_for(hef: Path, **hailo: object) -> HailoBackend:
    config = Config(
        backend="hailo",
        model=ModelConfig(path=str(DEMO_VLM_DIR), warmup=False),
        clip=ClipConfig(enabled=False),
        hailo=HailoConfig(vlm_hef=str(hef), **hailo),  # type: ignore[arg-type]
    )
    backend = HailoBackend(config)
    backend.load()
    return backend


@pytest.fixture
def loaded(hailo_env: HailoEnv, clip_hef: Path) -> Iterator[HailoBackend]:
    backend = backend_for(clip_hef, context_save_min_tokens=1)
    yield backend
    backend.unload()


def ask(generate: object, messages: list[Message]) -> tuple[str, Finish]:
    events = list(generate(MODEL, messages, GREEDY))  # type: ignore[operator]
    assert isinstance(events[-1], Finish)
    return "".join(e.text for e in events if isinstance(e, Token)), events[-1]


def picture(seed: int) -> np.ndarray:
    return np.asarray(sw.render(sw.random_scene(np.random.default_rng(seed), n_shapes=2, size=(112, 112))))


def clip(kind: str = "motion", seed: int = 3) -> VideoPart:
    scenes, _ = sw.random_clip(np.random.default_rng(seed), kind)
    return VideoPart(tuple(np.asarray(sw.render(s)) for s in scenes))


def follow_up(first: list[Message], answer: str, question: str) -> list[Message]:
    return [*first, Message.text("assistant", answer), Message("user", (TextPart(question),))]


def test_a_follow_up_continues_the_context_and_answers_as_a_clean_start(
    loaded: HailoBackend, hailo_env: HailoEnv
) -> None:
    first = [Message("user", (ImagePart(picture(1)), TextPart(sw.QUESTIONS["count"])))]
    answer, _ = ask(loaded.generate, first)
    second = follow_up(first, answer, sw.QUESTIONS["shape"])
    cleared = len(hailo_env.journal_entries("context_cleared"))
    reused, finish = ask(loaded.generate, second)
    assert len(hailo_env.journal_entries("context_cleared")) == cleared  # the context went on
    assert finish.cached_tokens > 0 and finish.prompt_tokens == loaded.count_tokens(MODEL, second)
    call = hailo_env.journal_entries("generate")[-1]
    assert isinstance(call["prompt"], str) and call["prompt"].startswith("<|im_end|>\n<|im_start|>user")
    assert call["frames"] == []  # the picture is in the context already
    clean, fresh = ask(_fresh, second)
    assert reused == clean and fresh.cached_tokens == 0


@functools.cache
def _runner() -> Qwen2VLRunner:
    return Qwen2VLRunner(DEMO_VLM_DIR)  # keeps no context: every answer is a clean start


def _fresh(model: str, messages: list[Message], params: SamplingParams) -> Iterator[object]:
    return _runner().generate(messages, params)


def test_an_unrelated_request_starts_clean_and_its_predecessor_is_saved_then_loaded(
    loaded: HailoBackend, hailo_env: HailoEnv
) -> None:
    first = [Message("user", (ImagePart(picture(1)), TextPart(sw.QUESTIONS["count"])))]
    answer, _ = ask(loaded.generate, first)
    other = [Message("user", (ImagePart(picture(2)), TextPart(sw.QUESTIONS["count"])))]
    alone, other_finish = ask(loaded.generate, other)
    assert other_finish.cached_tokens == 0
    assert hailo_env.journal_entries()[-3]["event"] != "generate"  # cleared (after saving) before it
    assert ask(_fresh, other)[0] == alone
    second = follow_up(first, answer, sw.QUESTIONS["shape"])
    reused, finish = ask(loaded.generate, second)  # loaded back from the saved context
    assert finish.cached_tokens > 0 and reused == ask(_fresh, second)[0]
    different = follow_up(
        [Message("user", (ImagePart(picture(9)), TextPart(sw.QUESTIONS["count"])))], answer, "Hi"
    )
    assert ask(loaded.generate, different)[1].cached_tokens == 0  # same text, another picture


def test_memory_pressure_keeps_no_saved_context_on_the_host(loaded: HailoBackend) -> None:
    """Only saved contexts take host memory: under the ladder's share none is saved or kept, while the
    live context on the device still serves the follow-up that comes right after its question."""
    first = [Message("user", (ImagePart(picture(1)), TextPart(sw.QUESTIONS["count"])))]
    answer, _ = ask(loaded.generate, first)
    loaded.limit_kept_contexts(0.25)  # 2 entries x 0.25: no saved context
    other = [Message("user", (ImagePart(picture(2)), TextPart(sw.QUESTIONS["count"])))]
    other_answer, _ = ask(loaded.generate, other)  # the first is not saved before it (it would be)
    assert ask(loaded.generate, follow_up(other, other_answer, sw.QUESTIONS["shape"]))[1].cached_tokens > 0
    assert ask(loaded.generate, follow_up(first, answer, sw.QUESTIONS["shape"]))[1].cached_tokens == 0
    loaded.release(ReleaseScope.VLM)
    loaded.load()  # the share holds across a load
    assert loaded.vlm is not None and loaded.vlm.book.max_saved == 0
    loaded.limit_kept_contexts(1.0)
    assert loaded.vlm.book.max_saved == 2


def test_a_release_drops_the_kept_context(loaded: HailoBackend) -> None:
    first = [Message("user", (ImagePart(picture(1)), TextPart(sw.QUESTIONS["count"])))]
    answer, _ = ask(loaded.generate, first)
    loaded.release(ReleaseScope.VLM)
    loaded.load()
    assert ask(loaded.generate, follow_up(first, answer, sw.QUESTIONS["shape"]))[1].cached_tokens == 0


def test_a_clip_goes_as_videos_and_answers_as_the_cpu_backend(
    loaded: HailoBackend, hailo_env: HailoEnv
) -> None:
    messages = [Message("user", (clip(), TextPart(sw.CLIP_QUESTIONS["motion"])))]
    answer, finish = ask(loaded.generate, messages)
    call = hailo_env.journal_entries("generate")[-1]
    assert call["videos"] == 1 and call["frames"] == []
    assert {"type": "video"} in call["prompt"][0]["content"]
    reference, expected = ask(_fresh, messages)
    assert answer == reference and finish.prompt_tokens == expected.prompt_tokens


def test_clips_as_frames_work_on_a_single_frame_encoder(hailo_env: HailoEnv, demo_vlm_hef: Path) -> None:
    backend = backend_for(demo_vlm_hef, clips_as_frames=True)
    try:
        answer, _ = ask(backend.generate, [Message("user", (clip(), TextPart(sw.CLIP_QUESTIONS["motion"])))])
        assert answer and len(hailo_env.journal_entries("generate")[-1]["frames"]) == 4
    finally:
        backend.unload()
    refused = backend_for(demo_vlm_hef)
    try:
        with pytest.raises(InvalidRequestError, match=r"clips_as_frames"):
            ask(refused.generate, [Message("user", (clip(), TextPart("Hi")))])
    finally:
        refused.unload()


def test_an_older_release_refuses_clips_naming_it(
    hailo_env: HailoEnv, clip_hef: Path, version_restored: None
) -> None:
    import_version("5.1.1")
    backend = backend_for(clip_hef)
    try:
        with pytest.raises(InvalidRequestError, match=r"5\.2\.0 or newer.*HailoRT 5\.1\.1"):
            ask(backend.generate, [Message("user", (clip(), TextPart("Hi")))])
    finally:
        backend.unload()


def test_a_retried_prompt_does_not_save_the_conversation_it_rewinds() -> None:
    """Structured output's retries and regenerated answers ask again from inside the held
    conversation: saving it would cost a save_context that nobody can continue."""
    book = ContextBook(entries=2, save_min_tokens=1, can_save=True)
    book.held = Held("<prompt>answer", Media(images=(b"a",)), tokens=600)
    assert book.plan("<prompt>", Media(images=(b"a",))).save is None  # the same prompt again
    assert book.plan("<other prompt>", Media(images=(b"b",))).save == book.held  # a new conversation
