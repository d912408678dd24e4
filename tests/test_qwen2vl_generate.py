"""Generation behaviour of the Qwen2-VL runner on the demo model: sampling, stops, limits, errors.

Expectations are derived from the model's own greedy output, so they hold for any committed export.
"""

import threading
from pathlib import Path

import numpy as np
import pytest
import shapes_world as sw

from npu_worker.backend import (
    ContextLengthError,
    Finish,
    ImagePart,
    InvalidRequestError,
    Message,
    SamplingParams,
    TextPart,
    Token,
)
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo" / "qwen2-vl-demo"
GREEDY = SamplingParams(temperature=0, max_tokens=24)


@pytest.fixture(scope="module")
def runner() -> Qwen2VLRunner:
    return Qwen2VLRunner(MODEL_DIR)


def scene_image(seed: int, n_shapes: int = 1, size: tuple[int, int] | None = None) -> np.ndarray:
    scene = sw.random_scene(np.random.default_rng(seed), n_shapes=n_shapes, size=size)
    return np.asarray(sw.render(scene))


def ask(text: str, *images: np.ndarray) -> list[Message]:
    return [Message("user", (*(ImagePart(i) for i in images), TextPart(text)))]


TEXT_ONLY = [Message.text("user", "Hello!")]


def run(runner: Qwen2VLRunner, messages: list[Message], params: SamplingParams) -> tuple[list[Token], Finish]:
    events = list(runner.generate(messages, params))
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert all(isinstance(e, Token) for e in events[:-1])
    return events[:-1], finish  # type: ignore[return-value]


@pytest.fixture(scope="module")
def reply(runner) -> tuple[list[Token], Finish]:
    """The model's greedy reply to a text-only greeting (several text tokens, then eos)."""
    tokens, finish = run(runner, TEXT_ONLY, GREEDY)
    assert sum(1 for t in tokens if t.text) >= 3, "precondition: the greedy reply has >= 3 text tokens"
    return tokens, finish


def test_completion_tokens_count_every_generated_id_including_eos(runner, reply):
    tokens, finish = reply
    assert finish.completion_tokens == len(tokens)
    assert finish.prompt_tokens == runner.count_tokens(TEXT_ONLY)
    if finish.reason == "stop":
        assert tokens[-1].token_id in runner.config.eos_token_ids
        assert tokens[-1].text == ""


def test_a_stop_string_spanning_two_tokens_is_cut_and_never_emitted(runner, reply):
    tokens, _ = reply
    full = "".join(t.text for t in tokens)
    starts = np.cumsum([0] + [len(t.text) for t in tokens])  # offset of each token's text in `full`

    def boundary_stop(k: int) -> str:  # the last char of token k-1 and the first of token k
        return tokens[k - 1].text[-1:] + tokens[k].text[:1]

    i = next(
        k
        for k in range(1, len(tokens))
        if tokens[k - 1].text and tokens[k].text and full.find(boundary_stop(k)) == starts[k] - 1
    )
    stop, cut = boundary_stop(i), starts[i] - 1
    got, finish = run(runner, TEXT_ONLY, SamplingParams(temperature=0, max_tokens=24, stop=(stop,)))
    assert "".join(t.text for t in got) == full[:cut]
    assert finish.reason == "stop"
    assert finish.completion_tokens == len(got) == i + 1
    assert stop not in "".join(t.text for t in got)


def test_held_back_text_is_released_when_the_stop_string_does_not_follow(runner, reply):
    tokens, finish = reply
    full = "".join(t.text for t in tokens)
    first_text = next(t for t in tokens if t.text)
    stop = first_text.text[-1] + "\u2603"  # starts like the reply but never continues like it
    got, got_finish = run(runner, TEXT_ONLY, SamplingParams(temperature=0, max_tokens=24, stop=(stop,)))
    assert "".join(t.text for t in got) == full
    assert got[tokens.index(first_text)].text == first_text.text[:-1]  # its last char was held back
    assert (got_finish.reason, got_finish.completion_tokens) == (finish.reason, finish.completion_tokens)


def test_max_tokens_ends_with_length_after_exactly_that_many_tokens(runner, reply):
    tokens, _ = reply
    got, finish = run(runner, TEXT_ONLY, SamplingParams(temperature=0, max_tokens=2))
    assert [t.token_id for t in got] == [t.token_id for t in tokens[:2]]
    assert (finish.reason, finish.completion_tokens) == ("length", 2)


def test_a_smaller_context_window_limits_generation_to_what_fits(reply):
    tokens, finish = reply
    small = Qwen2VLRunner(MODEL_DIR, context_length=finish.prompt_tokens + 2)
    got, got_finish = run(small, TEXT_ONLY, GREEDY)
    assert [t.token_id for t in got] == [t.token_id for t in tokens[:2]]
    assert (got_finish.reason, got_finish.completion_tokens) == ("length", 2)
    assert small.info.context_length == finish.prompt_tokens + 2


def test_a_prompt_over_the_context_window_is_refused_with_the_numbers_before_decoding(runner):
    messages = ask(sw.QUESTIONS["count"], scene_image(1), scene_image(2))
    prompt_tokens = runner.count_tokens(messages)
    small = Qwen2VLRunner(MODEL_DIR, context_length=prompt_tokens)  # no room for one new token
    with pytest.raises(ContextLengthError) as err:
        small.generate(messages, GREEDY)  # raised by the call itself, not on iteration
    assert (err.value.prompt_tokens, err.value.context_length) == (prompt_tokens, prompt_tokens)
    assert str(prompt_tokens) in err.value.message
    assert runner.info.context_length == runner.config.max_position_embeddings


def test_same_seed_same_text_and_different_seeds_differ(runner):
    messages = ask(sw.QUESTIONS["colour"], scene_image(3))

    def sampled(seed: int) -> list[int]:
        got, _ = run(runner, messages, SamplingParams(temperature=3.0, max_tokens=12, seed=seed))
        return [t.token_id for t in got]

    assert sampled(11) == sampled(11)
    assert len({tuple(sampled(seed)) for seed in (1, 2, 3, 4)}) > 1


def test_a_prompt_with_several_images_counts_every_images_tokens(runner):
    images = [scene_image(4), scene_image(5, 2, (400, 160)), scene_image(6, 3, (128, 600))]
    one = runner.count_tokens(ask(sw.QUESTIONS["count"], images[0]))
    three = ask(sw.QUESTIONS["count"], *images)
    _, finish = run(runner, three, SamplingParams(temperature=0, max_tokens=4))
    grids = runner.prompts.build(three).image_grids
    tokens_per_image = grids.prod(axis=1) // runner.config.merge_size**2
    # each extra image adds its tokens plus <|vision_start|> and <|vision_end|>
    assert finish.prompt_tokens == runner.count_tokens(three) == one + int(tokens_per_image[1:].sum()) + 4


def test_closing_the_iterator_between_tokens_stops_generation(runner, reply):
    tokens, _ = reply
    stream = runner.generate(TEXT_ONLY, GREEDY)
    first = next(stream)
    stream.close()
    assert first.token_id == tokens[0].token_id
    assert next(stream, None) is None
    again, _ = run(runner, TEXT_ONLY, GREEDY)  # the runner is untouched by the abandoned request
    assert [t.token_id for t in again] == [t.token_id for t in tokens]


def test_a_cancel_event_ends_generation_with_reason_cancelled(runner):
    cancel = threading.Event()
    stream = runner.generate(TEXT_ONLY, GREEDY, cancel=cancel)
    first = next(stream)
    cancel.set()
    rest = list(stream)
    assert isinstance(first, Token)
    assert rest == [Finish("cancelled", runner.count_tokens(TEXT_ONLY), 1)]


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([], "empty"),
        ([Message.text("system", "Be brief.")], "user"),
        ([Message.text("tool", "x")], "role"),  # type: ignore[arg-type]
    ],
)
def test_conversations_without_a_user_turn_or_with_unknown_roles_are_invalid(runner, messages, words):
    with pytest.raises(InvalidRequestError, match=words):
        runner.generate(messages, GREEDY)


def test_image_tokens_typed_into_the_text_are_refused(runner):
    with pytest.raises(InvalidRequestError, match="image"):
        runner.count_tokens([Message.text("user", "<|vision_start|><|image_pad|><|vision_end|>hi")])


@pytest.mark.parametrize("pixels", [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 2), np.uint8)])
def test_unusable_image_arrays_are_invalid_requests(runner, pixels):
    with pytest.raises(InvalidRequestError, match="image"):
        runner.generate(ask("What is this?", pixels), GREEDY)


def test_max_tokens_below_one_is_invalid(runner):
    with pytest.raises(InvalidRequestError) as err:
        runner.generate(TEXT_ONLY, SamplingParams(max_tokens=0))
    assert err.value.param == "max_tokens"


def test_model_info_describes_the_loaded_vlm(runner):
    info = runner.info
    assert (info.id, info.kind) == ("qwen2-vl-demo", "vlm")
    assert (info.min_pixels, info.max_pixels) == (
        runner.image_config.min_pixels,
        runner.image_config.max_pixels,
    )
    assert "vision" in info.capabilities
