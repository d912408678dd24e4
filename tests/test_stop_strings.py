"""Stop strings cut the stream at the right place and are never emitted, even in part."""

import numpy as np
import pytest

from npu_worker.stop_strings import StopStringFilter


def feed(stop: tuple[str, ...], pieces: list[str]) -> tuple[list[str], bool]:
    """Push every piece (until stopped), flushing at the end as a runner does."""
    filt = StopStringFilter(stop)
    out = []
    for piece in pieces:
        out.append(filt.push(piece))
        if filt.stopped:
            return out, True
    out.append(filt.flush())
    return out, False


def test_without_stop_strings_text_passes_through_unchanged():
    assert feed((), ["Hel", "lo", " world"]) == (["Hel", "lo", " world", ""], False)


def test_empty_stop_strings_are_ignored():
    assert feed(("",), ["abc"]) == (["abc", ""], False)


def test_text_before_a_stop_string_is_emitted_and_the_rest_is_dropped():
    out, stopped = feed(("STOP",), ["Hello STOP world"])
    assert stopped and out == ["Hello "]


def test_a_stop_string_spanning_pieces_is_never_emitted_in_part():
    out, stopped = feed(("STOP",), ["Hel", "lo S", "TO", "P and more"])
    assert stopped
    assert out == ["Hel", "lo ", "", ""]


def test_held_back_text_is_released_once_it_cannot_become_a_stop():
    filt = StopStringFilter(("STOP",))
    assert filt.push("a ST") == "a "
    assert filt.held == "ST"
    assert filt.push("x") == "STx"
    assert filt.held == ""


def test_flush_releases_a_held_prefix_at_the_end_of_the_stream():
    out, stopped = feed(("</answer>",), ["red </ans"])
    assert not stopped
    assert out == ["red ", "</ans"]


def test_the_earliest_of_several_stop_strings_wins():
    out, stopped = feed(("world", "lo w"), ["hello world"])
    assert stopped and out == ["hel"]


def test_nothing_is_emitted_after_the_stop():
    filt = StopStringFilter(("\n",))
    assert filt.push("yes\nno") == "yes"
    assert filt.push("more") == ""
    assert filt.flush() == ""


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_emit_exactly_the_text_before_the_first_stop(seed):
    rng = np.random.default_rng(seed)
    alphabet = list("abc")
    text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))
    stops = tuple("".join(rng.choice(alphabet, size=int(rng.integers(1, 5)))) for _ in range(2))
    cuts = sorted(int(c) for c in rng.integers(0, len(text) + 1, size=int(rng.integers(0, 8))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    out, stopped = feed(stops, pieces)
    found = [i for s in stops if (i := text.find(s)) >= 0]
    expected = text[: min(found)] if found else text
    assert "".join(out) == expected
    assert stopped == bool(found)
