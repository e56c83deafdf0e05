"""rpilinkd: a reliable message link between two Raspberry Pis wired GPIO to GPIO.

Layers (each a subpackage): ``phy`` moves frames across the wires through
pigpiod, ``link`` (sans-IO) makes them a reliable message protocol, ``api``
serves local programs on a Unix socket, ``telemetry`` publishes over MQTT,
``service`` composes them under systemd, and ``sim`` emulates pigpiod on two
wired virtual Pis.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
