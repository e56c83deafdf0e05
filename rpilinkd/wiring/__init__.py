"""``rpilink wiring-check``: which wire of the cable is wrong, and what to do about it.

Layers inside: ``cable`` (the pins the map expects), ``plan`` (the schedule),
``sync`` (hearing the beacon), ``timeline`` (levels over time), ``analysis``
(observations to findings, pure), ``report`` (table and JSON), ``local``
(this Pi's pigpiod), ``runner`` (a check, start to safe end). docs/wiring.md
("Check your cable") explains the method and why it is safe.
"""
