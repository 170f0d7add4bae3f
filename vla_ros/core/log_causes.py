"""Log throttling per cause, not per call site: seven different bad images each get their own first line.

A cause is the message with its numbers blanked ("rgb/front: expected 921600 bytes, got 12" and "... got 15" are
one cause; a wrong encoding is another). The first message of a cause is logged at once, then at most one per
`period_s`, saying how many were held back in between. Pure: time comes in as an argument.
"""
from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d.e+-]*")


def cause_of(message: str) -> str:
    """The message with numbers replaced by N (used as the throttling and counting key)."""
    return _NUMBER.sub("N", message)


class CauseThrottle:
    def __init__(self, period_s: float = 5.0):
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def line(self, message: str, now_s: float) -> str | None:
        """The line to log for `message` now, or None to stay quiet."""
        cause = cause_of(message)
        last = self._last.get(cause)
        if last is not None and now_s - last < self.period_s:
            self._held[cause] = self._held.get(cause, 0) + 1
            return None
        self._last[cause] = now_s
        held = self._held.pop(cause, 0)
        return f"{message} (and {held} more like it in the last {now_s - last:.0f} s)" if held else message
