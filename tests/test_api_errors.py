"""Every bad request gets OpenAI's error body with the right status, and the service keeps serving."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from PIL import Image
from service import Service, image_data_url

GOOD_TEXT = [{"role": "user", "content": "What color is the shape?"}]


def _assert_error(response: Any, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages[0].content[0].text",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"messages": GOOD_TEXT, "temperature": "hot"}, "temperature"),
        ({"messages": GOOD_TEXT, "temperature": 2.5}, "temperature"),
        ({"messages": GOOD_TEXT, "top_p": 1.5}, "top_p"),
        ({"messages": GOOD_TEXT, "max_tokens": 0}, "max_tokens"),
        ({"messages": GOOD_TEXT, "max_tokens": 1.5}, "max_tokens"),
        ({"messages": GOOD_TEXT, "max_completion_tokens": -1}, "max_completion_tokens"),
        ({"messages": GOOD_TEXT, "n": 2}, "n"),
        ({"messages": GOOD_TEXT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": GOOD_TEXT, "stop": 5}, "stop"),
        ({"messages": GOOD_TEXT, "seed": "x"}, "seed"),
        ({"messages": GOOD_TEXT, "stream": "yes"}, "stream"),
        ({"messages": GOOD_TEXT, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"messages": GOOD_TEXT, "frequency_penalty": 3}, "frequency_penalty"),
        ({"messages": GOOD_TEXT, "presence_penalty": "x"}, "presence_penalty"),
        ({"messages": GOOD_TEXT, "model": 7}, "model"),
        ({"messages": GOOD_TEXT, "user": 7}, "user"),
    ],
)
def test_malformed_fields_are_400_naming_the_param(
    service: Service, body: dict[str, Any], param: str
) -> None:
    error = _assert_error(service.http.post("/v1/chat/completions", json=body), 400, "invalid_request", param)
    assert error["type"] == "invalid_request_error"


def test_unknown_fields_are_ignored(service: Service) -> None:
    body = {"messages": GOOD_TEXT, "max_tokens": 2, "logit_bias": {}, "whatever": [1, 2]}
    assert service.http.post("/v1/chat/completions", json=body).status_code == 200


def test_body_that_is_not_json(service: Service) -> None:
    response = service.http.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_error(response, 400, "invalid_json")
    _assert_error(service.http.post("/v1/chat/completions", json=[1, 2]), 400, "invalid_request", "body")


def test_unknown_model_is_404(service: Service) -> None:
    body = {"model": "gpt-4o", "messages": GOOD_TEXT}
    error = _assert_error(
        service.http.post("/v1/chat/completions", json=body), 404, "model_not_found", "model"
    )
    assert "qwen2-vl-demo" in error["message"]


def test_unknown_route_and_method(service: Service) -> None:
    _assert_error(service.http.get("/v1/nothing"), 404, "not_found")
    _assert_error(service.http.get("/v1/chat/completions"), 405, "method_not_allowed")


def test_prompt_longer_than_the_context_is_400_with_numbers(service: Service) -> None:
    long_text = "red circle " * 3000
    body = {"messages": [{"role": "user", "content": long_text}]}
    error = _assert_error(
        service.http.post("/v1/chat/completions", json=body), 400, "context_length_exceeded", "messages"
    )
    assert "2048" in error["message"]


def test_openai_client_raises_its_own_error_types(service: Service) -> None:
    client = openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="qwen2-vl-demo", messages=GOOD_TEXT, n=3)  # type: ignore[arg-type]
    assert bad.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=GOOD_TEXT)  # type: ignore[arg-type]


def _png_bytes(size: tuple[int, int] = (64, 64), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _image_body(url: str) -> dict[str, Any]:
    return {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}],
            }
        ],
        "max_tokens": 2,
    }


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with small limits and API keys (one inline, one from a key file)."""
    tmp = tmp_path_factory.mktemp("strict")
    key_file = tmp / "keys"
    key_file.write_text("# keys\nfile-key\n")
    running = Service(
        tmp,
        {
            "clip": {"enabled": False},
            "api": {
                "max_body_bytes": 400_000,
                "max_image_bytes": 100_000,
                "max_image_pixels": 2_000_000,
                "max_images_per_request": 2,
                "api_keys": ["inline-key"],
                "api_key_file": str(key_file),
                "cors_enabled": True,
                "cors_origins": ["http://ha.local:8123"],
            },
        },
    ).wait_ready()
    yield running
    running.stop()


def _post(service: Service, body: Any, key: str | None = "inline-key", **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return service.http.post("/v1/chat/completions", json=body, headers=headers, **kwargs)


def test_api_keys_are_required_when_configured(strict: Service) -> None:
    url, _ = image_data_url(seed=1)
    _assert_error(_post(strict, _image_body(url), key=None), 401, "invalid_api_key")
    _assert_error(_post(strict, _image_body(url), key="wrong"), 401, "invalid_api_key")
    assert _post(strict, _image_body(url)).status_code == 200
    assert _post(strict, _image_body(url), key="file-key").status_code == 200
    assert strict.http.get("/health").status_code == 200  # health stays open for probes
    _assert_error(strict.http.get("/v1/models"), 401, "invalid_api_key")


def test_cors_for_configured_origins(strict: Service) -> None:
    preflight = strict.http.options(
        "/v1/chat/completions",
        headers={"Origin": "http://ha.local:8123", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers.get("access-control-allow-origin") == "http://ha.local:8123"
    other = strict.http.options(
        "/v1/chat/completions",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.headers.get("access-control-allow-origin") is None


def test_body_over_the_limit_is_413(strict: Service) -> None:
    body = {"messages": [{"role": "user", "content": "x" * 500_000}]}
    _assert_error(_post(strict, body), 413, "body_too_large")


def test_image_over_the_byte_limit_is_413(strict: Service) -> None:
    rng = __import__("numpy").random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype="uint8"))
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    assert 100_000 < len(buffer.getvalue()) < 300_000
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    _assert_error(
        _post(strict, _image_body(url)), 413, "image_too_large", "messages[0].content[0].image_url.url"
    )


def test_image_with_too_many_pixels_is_413(strict: Service) -> None:
    url = "data:image/png;base64," + base64.b64encode(_png_bytes((2000, 1500))).decode()
    _assert_error(_post(strict, _image_body(url)), 413, "image_too_large")


def test_unsupported_image_type_is_415(strict: Service) -> None:
    url = "data:image/tiff;base64," + base64.b64encode(_png_bytes(fmt="TIFF")).decode()
    error = _assert_error(_post(strict, _image_body(url)), 415, "unsupported_image_type")
    assert "TIFF" in error["message"]


def test_corrupt_and_truncated_images_are_400(strict: Service) -> None:
    truncated = _png_bytes((256, 256))[:-200]
    for data in (truncated, b"GIF89a garbage", b"\xff\xd8\xff\xe0 broken jpeg"):
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        _assert_error(_post(strict, _image_body(url)), 400, "invalid_image")
    _assert_error(_post(strict, _image_body("data:image/png;base64,@@@notbase64")), 400, "invalid_image_url")


def test_remote_images_are_refused_unless_enabled(strict: Service) -> None:
    error = _assert_error(
        _post(strict, _image_body("http://127.0.0.1:1/cat.jpg")), 400, "remote_images_disabled"
    )
    assert "allow_remote_images" in error["message"]


def test_too_many_images_is_400(strict: Service) -> None:
    url, _ = image_data_url(seed=2)
    parts = [{"type": "image_url", "image_url": {"url": url}}] * 3
    body = {"messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "?"}]}]}
    _assert_error(_post(strict, body), 400, "invalid_request", "messages")


def test_service_still_serves_after_every_bad_request(strict: Service) -> None:
    url, _ = image_data_url(seed=3)
    assert _post(strict, _image_body(url)).status_code == 200
    assert "level=error" not in strict.logs()
