"""The HELLO exchange's state: the session id, both nonces and when to say HELLO.

The leader picks a session id unlike the last and says HELLO until the
follower's HELLO of that session is marked SEEN; the follower takes the
leader's session and answers (docs/protocol.md §4.2). The nonce, new at every
attempt, tells a late copy of an old HELLO from a new attempt; the peer's
epoch, kept across link-ups, tells a restarted peer. The connection checks a
HELLO's version and values, and takes the steps a valid one asks for
(states.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rpilinkd.link.events import DownReason, PeerInfo
from rpilinkd.link.frames import Flag, Frame, Kind
from rpilinkd.link.hello import Hello


def peer_info(hello: Hello) -> PeerInfo:
    """What the HELLO that brought the link up says of the peer."""
    return PeerInfo(
        hello.node, hello.epoch, hello.version, hello.frame_payload, hello.window, hello.max_message
    )


@dataclass(frozen=True, slots=True)
class HelloStep:
    """What a valid HELLO asks of the connection, in this order."""

    leave_up: DownReason | None = None  # a new attempt: leave UP for ARBITRATING
    restarted_from: int | None = None  # the peer restarted: the epoch it had
    up: bool = False  # the exchange is done: bring the link up


@dataclass
class Handshake:
    """One side's HELLO exchange, across link-up attempts."""

    rng: random.Random
    session: int = 0
    leader: bool = False
    nonce: int = 0  # ours, new at every attempt
    peer_nonce: int | None = None
    hello_seen: bool = False  # the peer's HELLO of this attempt reached us
    offer: Hello | None = None  # the leader's hello a follower is answering
    hello_due: float | None = None
    peer_epoch: int | None = None  # the last epoch we saw, across link-ups

    def new_attempt(self, now: float) -> None:
        """The leader picks a session id unlike the last; a follower waits for it."""
        last = self.session
        choices = [s for s in range(1, 256) if s != last]
        self.session = self.rng.choice(choices) if self.leader else 0
        self.nonce = self.rng.getrandbits(32)
        self.peer_nonce = None
        self.hello_due = now
        self.hello_seen = False
        self.offer = None

    def hello_owed(self, now: float) -> bool:
        return self.hello_due is not None and self.hello_due <= now

    def hello_frame(self, hello: Hello) -> bytes:
        """Our HELLO in this attempt's session, marked SEEN once the peer's reached us."""
        flags = Flag.HELLO_SEEN if self.hello_seen else Flag.NONE
        return Frame(Kind.HELLO, flags, self.session, payload=hello.to_bytes()).to_bytes()

    def take(self, frame: Frame, hello: Hello, now: float, *, up: bool) -> HelloStep:
        """A valid HELLO, the link up or arbitrating; returns what the connection must do."""
        restarted = self.peer_epoch is not None and hello.epoch != self.peer_epoch
        restarted_from = self.peer_epoch if restarted else None
        leave_up = None
        if up:
            if hello.nonce == self.peer_nonce and not restarted:
                # a repeat or a late copy: change nothing. The leader answers it (a
                # follower that missed our SEEN hello comes up on the answer); a follower
                # does not, or two sides up would answer each other's answers forever
                if self.leader:
                    self.hello_due = now
                return HelloStep()
            leave_up = DownReason.PEER_RESTARTED if restarted else DownReason.PEER_RESET
            self.new_attempt(now)
        self.peer_epoch = hello.epoch
        if leave_up is not None and self.leader:
            return HelloStep(leave_up, restarted_from)  # the follower answers our new session
        return HelloStep(leave_up, restarted_from, self._answer(frame, hello, now))

    def came_up(self, now: float) -> None:
        """The link is up: the leader says HELLO once more (marked SEEN, it brings the
        follower up); the follower has nothing more to say."""
        self.offer = None
        self.hello_due = now if self.leader else None

    def _answer(self, frame: Frame, hello: Hello, now: float) -> bool:
        """Take a valid HELLO while arbitrating; returns whether the link comes up."""
        if self.leader:
            if frame.session == self.session and frame.flags & Flag.HELLO_SEEN:
                self.hello_seen = True
                self.peer_nonce = hello.nonce
                return True
            self.hello_due = min(self.hello_due or now, now)
            return False
        if frame.session:
            self.session = frame.session
            self.hello_seen = True
            self.offer = hello
            self.peer_nonce = hello.nonce
            if frame.flags & Flag.HELLO_SEEN:
                return True
            self.hello_due = now
        return False
