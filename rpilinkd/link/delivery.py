"""Messages across link drops: the sender's outbox and the receiver's verdict memory.

Resumption (docs/protocol.md §4.5): when the link drops and comes back with
the same peer (same epoch) within ``link.resume_s``, every message not yet
answered is sent again, whole, in its original order and with its original
id. The receiver remembers the verdicts it gave to the last messages of that
peer, so a message that had arrived before the drop (only its verdict was
lost) is answered again, not delivered twice: exactly once, across drops.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: verdicts the receiver remembers per peer epoch; more than the sender may resend
REMEMBERED_VERDICTS = 4096
#: messages a sender carries across a drop; older ones beyond this fail at once
RESUMABLE_MESSAGES = 2048


@dataclass
class Outgoing:
    """A message sent and not yet answered by the peer daemon."""

    port: int
    src_port: int
    data: bytes
    unacked: int = 0  # fragments of the current transmission not yet acknowledged
    verdict_by: float | None = None  # all fragments acknowledged: the answer is due by then
    fails_at: float | None = None  # it survived a drop: give up at this time


class Outbox:
    """Outgoing messages by id, in the order they were sent."""

    def __init__(self) -> None:
        self.messages: OrderedDict[int, Outgoing] = OrderedDict()
        self.resume_until: float | None = None  # a drop is being bridged until then

    def __len__(self) -> int:
        return len(self.messages)

    def get(self, message_id: int) -> Outgoing | None:
        return self.messages.get(message_id)

    def add(self, message_id: int, outgoing: Outgoing) -> None:
        if self.resume_until is not None:
            outgoing.fails_at = self.resume_until  # queued during an outage
        self.messages[message_id] = outgoing

    def pop(self, message_id: int) -> Outgoing | None:
        return self.messages.pop(message_id, None)

    def dropped(self, now: float, resume_s: float) -> list[int]:
        """The link went down: keep what can be resumed; returns the ids to fail now."""
        if resume_s <= 0:
            self.resume_until = None
            return list(self.messages)
        self.resume_until = now + resume_s
        for outgoing in self.messages.values():
            outgoing.unacked, outgoing.verdict_by = 0, None
            if outgoing.fails_at is None:
                outgoing.fails_at = self.resume_until  # never extended by a later drop
        return list(self.messages)[: max(0, len(self.messages) - RESUMABLE_MESSAGES)]

    def resumed(self) -> list[tuple[int, Outgoing]]:
        """The link is up again with the same peer: everything to send again, in order."""
        self.resume_until = None
        return list(self.messages.items())

    def expired(self, now: float) -> list[int]:
        return [i for i, o in self.messages.items() if o.fails_at is not None and now >= o.fails_at]

    def next_deadline(self, *, up: bool) -> float | None:
        """While up: when an answer is overdue; while down: when a resumed message fails."""
        if up:
            times = [o.verdict_by for o in self.messages.values() if o.verdict_by is not None]
        else:
            times = [o.fails_at for o in self.messages.values() if o.fails_at is not None]
        return min(times, default=None)

    def accepting_while_down(self, now: float) -> bool:
        """Whether a new send may wait for the link to come back."""
        return self.resume_until is not None and now < self.resume_until


class VerdictMemory:
    """The last verdicts given to one peer epoch's messages (a bounded, ordered map)."""

    def __init__(self) -> None:
        self._verdicts: OrderedDict[int, str] = OrderedDict()

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._verdicts

    def get(self, message_id: int) -> str | None:
        return self._verdicts.get(message_id)

    def remember(self, message_id: int, code: str) -> None:
        self._verdicts[message_id] = code
        self._verdicts.move_to_end(message_id)
        while len(self._verdicts) > REMEMBERED_VERDICTS:
            self._verdicts.popitem(last=False)

    def forget(self) -> None:
        """A new peer epoch: its message ids start over."""
        self._verdicts.clear()
