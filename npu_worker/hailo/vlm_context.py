"""What the Hailo VLM's device context holds, so that a follow-up turn continues it instead of clearing it.

The device keeps its context (the KV cache) across generate() calls until clear_context(). After a
generation the device ended by itself, the context stands for the rendered prompt plus the answer's
text (a 5.2.0 VLM drops the tokens that ended the answer at its next generate()) and for the prompt's
frames and clips. A request whose rendered prompt starts with that text, with the same frames and clips
first, continues it: only the rest of the prompt goes to the device, as a raw string (the device
applies no template to a string; it is rendered here with the HEF's own template), with only the new
frames and clips. Any other request starts clean.

Before a context that holds at least `save_min_tokens` tokens is cleared for an unrelated request, it
is saved (save_context, HailoRT 5.1.1+) and kept on the host, a bounded number of them; a request that
continues a saved conversation loads it back (load_context) instead of prefilling it again.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

from npu_worker.backend import ImagePart, Message, VideoPart
from npu_worker.pixel_digest import pixel_digest


@dataclass(frozen=True)
class Media:
    """Digests of a prompt's frames (images) and clips, in prompt order."""

    images: tuple[bytes, ...] = ()
    clips: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, messages: Sequence[Message]) -> Media:
        parts = [p for m in messages for p in m.parts]
        return cls(
            tuple(pixel_digest((p.pixels,)) for p in parts if isinstance(p, ImagePart)),
            tuple(pixel_digest(p.frames) for p in parts if isinstance(p, VideoPart)),
        )

    def starts_with(self, other: Media) -> bool:
        return (
            self.images[: len(other.images)] == other.images and self.clips[: len(other.clips)] == other.clips
        )


@dataclass(frozen=True)
class Held:
    """A conversation a device context stands for."""

    text: str
    media: Media
    tokens: int

    def continued_by(self, text: str, media: Media) -> bool:
        return len(text) > len(self.text) and text.startswith(self.text) and media.starts_with(self.media)

    def rewound_by(self, text: str, media: Media) -> bool:
        """The request asks again from a point inside this conversation (a retry, a regenerated
        answer): nobody can continue this conversation any more."""
        return self.text.startswith(text) and self.media.starts_with(media)


@dataclass(frozen=True)
class Plan:
    """How a request starts: `held` is the conversation it continues (None: clean); `blob`, when that
    conversation must be loaded back first; `save`, a conversation to save before the context changes."""

    held: Held | None = None
    blob: bytes | None = None
    save: Held | None = None


class ContextBook:
    def __init__(self, entries: int, save_min_tokens: int, can_save: bool) -> None:
        self.entries = entries
        self.max_saved = entries  # saved contexts kept on the host (fewer under memory pressure)
        self.save_min_tokens = save_min_tokens if can_save else 0
        self.held: Held | None = None  # what the device context stands for now; None: unknown
        self._saved: collections.deque[tuple[Held, bytes]] = collections.deque()

    def plan(self, text: str, media: Media) -> Plan:
        """How the request with this rendered prompt and media starts on the device."""
        held = self.held if self.entries > 0 else None
        if held is not None and held.continued_by(text, media):
            return Plan(held)
        save = held if held is not None and self._worth_saving(held, text, media) else None
        for saved, blob in reversed(self._saved):
            if saved.continued_by(text, media):
                self._saved.remove((saved, blob))
                return Plan(saved, blob, save)
        return Plan(save=save)

    def _worth_saving(self, held: Held, text: str, media: Media) -> bool:
        """Long enough to beat a prefill, room for it on the host, and a conversation that may go on."""
        return (
            self.max_saved > 0
            and 0 < self.save_min_tokens <= held.tokens
            and not held.rewound_by(text, media)
        )

    def saved(self, held: Held, blob: bytes) -> None:
        """Keep a saved context; the oldest go first past the entry bound."""
        self._saved.append((held, blob))
        self._evict()

    def limit_saved(self, count: int) -> None:
        """Keep at most `count` saved contexts on the host from now on; the oldest go now."""
        self.max_saved = count
        self._evict()

    def _evict(self) -> None:
        while len(self._saved) > self.max_saved:
            self._saved.popleft()

    def forget(self) -> None:
        self.held = None
        self._saved.clear()
