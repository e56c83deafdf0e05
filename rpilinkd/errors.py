"""The one error tree of rpilinkd. Every class carries a stable ``code``.

The code is what crosses process boundaries (the local API's error maps, MQTT
events, log lines); the client library maps it back to the class with
:func:`error_for_code`. Codes never change once released; new ones may appear.

::

    RpilinkError                         internal
     +-- ConfigError (ValueError)        bad_config       key, value, reason
     +-- PhyError                        phy_error
     |    +-- PhyUnavailableError        phy_unavailable  pigpiod unreachable, backend missing
     |    +-- PigpioCommandError         pigpio_error     pigpiod answered < 0 (code kept)
     |    +-- PhyTimeoutError            phy_timeout
     +-- LinkError                       link_error
     |    +-- FrameError (ValueError)    bad_frame        counted in stats, never reaches a user
     |    |    +-- CrcError               crc_error        a CRC did not match (wire damage)
     |    +-- LinkDownError              link_down
     |    +-- DeliveryError              delivery_failed  not acknowledged after the retry budget
     |    |    +-- PeerRestartedError    peer_restarted   in flight when the peer rebooted
     |    +-- VersionMismatchError       version_mismatch
     |    +-- RoleConflictError          role_conflict    both forced master (or slave)
     |    +-- MessageTooLargeError       too_large
     +-- ApiError                        bad_request      malformed or invalid request
     |    +-- UnknownOpError             unknown_op
     |    +-- NoListenerError            no_listener      nobody bound that port on the peer
     |    +-- PortInUseError             port_in_use
     |    +-- NameInUseError             name_in_use
     |    +-- NotBoundError              not_bound
     |    +-- TooManyClientsError        too_many_clients
     |    +-- QueueFullError             queue_full
     |    +-- ShuttingDownError          shutting_down
     |    +-- RemoteError                remote_error     the peer daemon refused the message
     +-- SimError                        sim_error        emulator misuse (bad wiring file, ...)
     +-- TelemetryError                  mqtt_error
"""

from __future__ import annotations

from typing import ClassVar


class RpilinkError(Exception):
    """Root of every error rpilinkd raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(RpilinkError, ValueError):
    """A configuration key or value is wrong."""

    code = "bad_config"

    def __init__(self, key: str, reason: str, value: object = None) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"config key {key!r}: {reason}{shown}")


# --- phy -------------------------------------------------------------------


class PhyError(RpilinkError):
    """The bus backend failed."""

    code = "phy_error"


class PhyUnavailableError(PhyError, ConnectionError):
    """The backend cannot be reached or loaded (pigpiod down, module missing)."""

    code = "phy_unavailable"


class PigpioCommandError(PhyError):
    """pigpiod answered a command with a negative status."""

    code = "pigpio_error"

    def __init__(self, command: str, status: int, detail: str = "") -> None:
        self.command = command
        self.status = status
        extra = f": {detail}" if detail else ""
        super().__init__(f"pigpiod {command} failed with {status}{extra}")


class PhyTimeoutError(PhyError, TimeoutError):
    """A bus operation did not finish in time."""

    code = "phy_timeout"


# --- link ------------------------------------------------------------------


class LinkError(RpilinkError):
    """The link protocol failed."""

    code = "link_error"


class FrameError(LinkError, ValueError):
    """Bytes that are not a valid frame (bad CRC, length, type, ...)."""

    code = "bad_frame"


class CrcError(FrameError):
    """A frame's header or body CRC did not match: damage on the wire."""

    code = "crc_error"


class LinkDownError(LinkError):
    """The link to the peer is not up."""

    code = "link_down"


class DeliveryError(LinkError):
    """A message was not acknowledged by the peer within the retry budget."""

    code = "delivery_failed"


class PeerRestartedError(DeliveryError):
    """The peer restarted while a message was in flight; it was not delivered."""

    code = "peer_restarted"


class VersionMismatchError(LinkError):
    """The peer speaks another protocol version."""

    code = "version_mismatch"


class RoleConflictError(LinkError):
    """Both nodes insist on the same role (two forced masters or slaves)."""

    code = "role_conflict"


class MessageTooLargeError(LinkError, ValueError):
    """A message exceeds the configured maximum size."""

    code = "too_large"


# --- local API -------------------------------------------------------------


class ApiError(RpilinkError):
    """A request to the local API was malformed or invalid."""

    code = "bad_request"


class UnknownOpError(ApiError):
    """The request names an operation the daemon does not know."""

    code = "unknown_op"


class NoListenerError(ApiError):
    """Nobody is bound to the destination port on the peer."""

    code = "no_listener"


class PortInUseError(ApiError):
    """Another client already bound that port."""

    code = "port_in_use"


class NameInUseError(ApiError):
    """Another client already bound that name."""

    code = "name_in_use"


class NotBoundError(ApiError):
    """The client has not bound the port it refers to."""

    code = "not_bound"


class TooManyClientsError(ApiError):
    """The daemon serves its maximum number of clients."""

    code = "too_many_clients"


class QueueFullError(ApiError):
    """A bounded queue is full; retry later."""

    code = "queue_full"


class ShuttingDownError(ApiError):
    """The daemon is stopping; the request was not carried out."""

    code = "shutting_down"


class RemoteError(ApiError):
    """The peer daemon refused the message for a reason it named."""

    code = "remote_error"


# --- emulator and telemetry -------------------------------------------------


class SimError(RpilinkError):
    """The emulator was given something it cannot model (bad wiring file, ...)."""

    code = "sim_error"


class TelemetryError(RpilinkError):
    """The MQTT telemetry publisher failed."""

    code = "mqtt_error"


def _all_subclasses(cls: type[RpilinkError]) -> list[type[RpilinkError]]:
    found: list[type[RpilinkError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_classes() -> dict[str, type[RpilinkError]]:
    """Map every stable code to its class (codes are unique in the tree)."""
    return {cls.code: cls for cls in _all_subclasses(RpilinkError)}


def error_for_code(code: str) -> type[RpilinkError]:
    """The class for a stable code; unknown codes (newer daemons) map to the root."""
    return error_classes().get(code, RpilinkError)
