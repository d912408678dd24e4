"""Cut a stream of generated text at the first stop string, never emitting part of one.

Backend-independent: the CPU runner feeds it decoded token text, the Hailo backend its device's text
stream. Text that could still become a stop string is held back and released as soon as it cannot;
text before a stop string is emitted, the stop string and everything after it never are.
"""

from __future__ import annotations

from collections.abc import Iterable


class StopStringFilter:
    """Feed text pieces in order; read back what may be shown now."""

    def __init__(self, stop: Iterable[str]) -> None:
        self.stop = tuple(s for s in stop if s)
        self.held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """The text safe to emit after `text` arrives; sets `stopped` once a stop string appears."""
        if self.stopped:
            return ""
        if not self.stop:
            return text
        buffer = self.held + text
        cut = min((i for s in self.stop if (i := buffer.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self.held = ""
            return buffer[:cut]
        keep = self._possible_stop_start(buffer)
        self.held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """Release the held-back text at the end of the stream (it can no longer grow into a stop)."""
        held, self.held = self.held, ""
        return held

    def _possible_stop_start(self, buffer: str) -> int:
        """Length of the longest tail of `buffer` that is a proper prefix of some stop string."""
        longest = 0
        for s in self.stop:
            for length in range(min(len(s) - 1, len(buffer)), longest, -1):
                if buffer.endswith(s[:length]):
                    longest = length
                    break
        return longest
