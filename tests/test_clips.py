"""Clips through the running service: frame lists and video files, with the official clients, and every
bad clip answered with a clear error. The demo model learnt two clip questions (models/demo/README.md):
which way a shape moves, and what colour it turns."""

from __future__ import annotations

import base64
from typing import Any

import ollama
import openai
import pytest
import shapes_world as sw
from service import Service, clip_data_urls, clip_frames, image_data_url, video_file

MODEL = "qwen2-vl-demo"
SEEDS = range(7100, 7106)


@pytest.fixture(scope="module")
def client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, part: dict[str, Any], question: str) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": question}]}],  # type: ignore[misc,list-item]
        temperature=0,
        max_tokens=8,
    )


def video_url(frames: list[Any], **encode: Any) -> str:
    return "data:video/mp4;base64," + base64.b64encode(video_file(frames, **encode)).decode()


@pytest.mark.parametrize("kind", sorted(sw.CLIP_QUESTIONS))
def test_a_frame_list_is_a_clip_the_model_answers(client: openai.OpenAI, kind: str) -> None:
    right = 0
    for seed in SEEDS:
        frames, expected = clip_data_urls(seed, kind)
        reply = ask(client, {"type": "video", "video": frames}, sw.CLIP_QUESTIONS[kind])
        right += sw.is_correct(reply.choices[0].message.content or "", expected)
        assert reply.usage is not None and reply.usage.prompt_tokens > 2 * 16  # two frame pairs' tokens
    assert right >= len(SEEDS) - 1, f"{right}/{len(SEEDS)} {kind} answers right"


def test_a_video_file_in_vllms_video_url_part_is_sampled_and_answered(client: openai.OpenAI) -> None:
    right = 0
    for seed in SEEDS:
        frames, expected = clip_frames(seed, "motion")
        # 8 frames at 4 fps: sampled at video.fps (2) to 4 frames, each one of the clip's
        doubled = [f for frame in frames for f in (frame, frame)]
        part = {"type": "video_url", "video_url": {"url": video_url(doubled, fps=4)}}
        reply = ask(client, part, sw.CLIP_QUESTIONS["motion"])
        right += sw.is_correct(reply.choices[0].message.content or "", expected)
    assert right >= len(SEEDS) - 1, f"{right}/{len(SEEDS)} directions right"


def test_ollamas_client_sends_a_clip_as_images_under_a_video_marker(service: Service) -> None:
    client = ollama.Client(host=service.base_url)
    right = 0
    for seed in SEEDS:
        frames, expected = clip_data_urls(seed, "turn")
        reply = client.chat(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": f"[video]{sw.CLIP_QUESTIONS['turn']}",
                    "images": [url.split(",", 1)[1] for url in frames],
                }
            ],
            options={"temperature": 0, "num_predict": 8},
        )
        right += sw.is_correct(reply.message.content or "", expected)
    assert right >= len(SEEDS) - 1, f"{right}/{len(SEEDS)} colours right"


def test_ollamas_videos_field_takes_a_video_file(service: Service) -> None:
    frames, expected = clip_frames(SEEDS[0], "motion")
    clip = base64.b64encode(video_file(frames)).decode()
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": sw.CLIP_QUESTIONS["motion"], "videos": [clip]}],
        "stream": False,
        "options": {"temperature": 0},
    }
    reply = service.http.post("/api/chat", json=body)
    assert reply.status_code == 200, reply.text
    assert sw.is_correct(reply.json()["message"]["content"], expected)


def chat(service: Service, content: list[dict[str, Any]], role: str = "user") -> Any:
    messages = [{"role": "user", "content": "Hi"}] if role != "user" else []
    messages.append({"role": role, "content": content})
    return service.http.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 4})


def bad_clips() -> list[tuple[str, list[dict[str, Any]], int, str, str]]:
    frames, _ = clip_data_urls(1, "motion")
    png, _ = image_data_url(1)
    raw = clip_frames(1, "motion")[0]
    long_clip = video_url(raw[:2], fps=0.001)  # two frames, 2000 s
    return [
        (
            "too many frames",
            [{"type": "video", "video": frames * 17}],
            400,
            "invalid_request",
            "content[0].video",
        ),
        ("too many clips", [{"type": "video", "video": frames}] * 3, 400, "invalid_request", "messages"),
        ("no frames", [{"type": "video", "video": []}], 400, "invalid_request", "content[0].video"),
        (
            "a picture",
            [{"type": "video_url", "video_url": {"url": png}}],
            415,
            "unsupported_video_type",
            "url",
        ),
        (
            "broken",
            [
                {
                    "type": "video_url",
                    "video_url": "data:video/mp4;base64,"
                    + base64.b64encode(b"\0\0\0\x18ftypisom" + b"x" * 64).decode(),
                }
            ],
            400,
            "invalid_video",
            "video_url",
        ),
        ("too long", [{"type": "video_url", "video_url": {"url": long_clip}}], 400, "video_too_long", "url"),
        (
            "a bad frame",
            [{"type": "video", "video": [frames[0], "data:image/png;base64,AAAA"]}],
            400,
            "invalid_image",
            "video[1]",
        ),
    ]


@pytest.mark.parametrize(
    ("case", "content", "status", "code", "param"), bad_clips(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_bad_clip_is_refused_naming_the_field(
    service: Service, case: str, content: list[dict[str, Any]], status: int, code: str, param: str
) -> None:
    reply = chat(service, content)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and error["param"].endswith(param), error


def test_clips_are_accepted_in_user_messages_only(service: Service) -> None:
    frames, _ = clip_data_urls(1, "motion")
    reply = chat(service, [{"type": "video", "video": frames}], role="assistant")
    assert reply.status_code == 400 and "user messages only" in reply.json()["error"]["message"]
