"""Link states, and the theory of operation of the connection.

A link is DOWN until the bus-access machine has decided the roles, then
ARBITRATING while the two connections exchange HELLOs, then UP::

             start()            HELLO exchange done
    DOWN ───────────▶ ARBITRATING ────────────────▶ UP
     ▲                    │                          │
     └────────────────────┴──────────────────────────┘
       stop(reason), keepalive timeout, retries exhausted, version mismatch,
       peer restarted (then straight back to ARBITRATING)

=============  ==================================  =============================================
state          what is sent                        leaves on
=============  ==================================  =============================================
DOWN           nothing                             start() -> ARBITRATING
ARBITRATING    HELLO every ``rto_initial``          a HELLO of this session marked SEEN -> UP;
                                                   version mismatch -> DOWN; silence -> DOWN
UP             DATA, VERDICT, ANNOUNCE (sequenced,  silence for ``dead_after`` -> DOWN (timeout);
               windowed, retransmitted), ACKs       a frame not acknowledged after ``retries``
               (also as keepalives)                transmissions -> DOWN (retries_exhausted);
                                                   a HELLO of a new attempt (new nonce or
                                                   epoch) -> ARBITRATING
=============  ==================================  =============================================

Every link-up starts a new *session*: sequence numbers start at zero and every
frame carries the session id, so nothing from an earlier session is ever
accepted. Leaving UP fails every message not yet answered by the peer (code
``link_down``, or ``peer_restarted`` when a HELLO shows the peer's epoch
changed); nothing is delivered from the old session afterwards.
"""

from __future__ import annotations

import enum


class LinkState(enum.Enum):
    DOWN = "down"
    ARBITRATING = "arbitrating"
    UP = "up"


class ErrorLevel(enum.Enum):
    """CAN-style health of the transmit error counter (+8 per retransmission, -1 per ack).

    It makes a degrading cable visible (MQTT, status) before it fails. PASSIVE
    halves the window; unlike CAN, BUS_OFF does not stop the link, since
    selective repeat still delivers at loss rates that would silence a CAN node.
    """

    ACTIVE = "active"  # 0-95
    WARNING = "warning"  # 96-127
    PASSIVE = "passive"  # 128-255: the window is halved
    BUS_OFF = "bus_off"  # 256, the cap: a warning sign only, the link keeps going

    @classmethod
    def of(cls, counter: int) -> ErrorLevel:
        if counter >= 256:
            return cls.BUS_OFF
        if counter >= 128:
            return cls.PASSIVE
        return cls.WARNING if counter >= 96 else cls.ACTIVE
