"""The local API's wire format: msgpack maps both ways. Sans-IO.

Requests are maps with ``op`` and ``id``; every request gets exactly one reply
with the same ``id``: ``{"id": N, "ok": true, ...}`` or ``{"id": N, "ok":
false, "code": "<stable code>", "message": "<text>"}``. Pushes (``msg``,
``event``) carry no ``id``. docs/api.md is the reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from rpilinkd.errors import ApiError, MessageTooLargeError, RpilinkError, UnknownOpError

API_VERSION = 1
MAX_PORT = 0xFFFF
MAX_NAME = 32
MAX_ID = 2**64 - 1  # msgpack's largest integer
MAX_CLIENT_NAME = 64

# op -> {field: (types, required)}; "id" and "op" are checked for every request
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {"client": ((str,), False)},
    "ping": {},
    "bind": {"port": ((int,), False), "name": ((str,), False)},
    "unbind": {"port": ((int,), True)},
    "send": {"port": ((int,), True), "data": ((bytes,), True), "from": ((int,), False)},
    "status": {},
    "stats": {},
    "endpoints": {},
    "subscribe": {"events": ((bool,), False)},
    "lend": {"seconds": ((int, float), False)},
    "take_back": {},
}
MAX_LEND_S = 600


@dataclass(frozen=True)
class Request:
    op: str
    id: int
    args: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)


def check_port(value: object, key: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PORT:
        raise ApiError(f"{key!r} must be an integer 0-{MAX_PORT}, got {value!r}")
    return value


def parse_request(obj: object) -> Request:
    """Validate one decoded object. Raises ApiError / UnknownOpError naming the problem."""
    if not isinstance(obj, dict):
        raise ApiError(f"a request is a map, got {type(obj).__name__}")
    request_id = obj.get("id")
    if not (isinstance(request_id, int) and not isinstance(request_id, bool)):
        raise ApiError(f"'id' must be a non-negative integer, got {request_id!r}")
    if not 0 <= request_id <= MAX_ID:
        raise ApiError(f"'id' must be a non-negative integer, got {request_id!r}")
    op = obj.get("op")
    if not isinstance(op, str):
        raise ApiError(f"'op' must be a string, got {op!r}")
    if op not in SCHEMA:
        raise UnknownOpError(f"unknown op {op!r}; ops: {', '.join(SCHEMA)}")
    schema = SCHEMA[op]
    args = {k: v for k, v in obj.items() if k not in ("id", "op")}
    for key, value in args.items():
        if key not in schema:
            raise ApiError(f"{op}: unknown field {key!r}; fields: {', '.join(schema) or 'none'}")
        types, _ = schema[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise ApiError(f"{op}: {key!r} must be {names}, got {type(value).__name__}")
    for key, (_, required) in schema.items():
        if required and key not in args:
            raise ApiError(f"{op}: missing {key!r}")
    for key in ("port", "from"):
        if key in args:
            check_port(args[key], key)
    name = args.get("name")
    if name is not None and not 0 < len(name.encode()) <= MAX_NAME:
        raise ApiError(f"{op}: 'name' must be 1-{MAX_NAME} bytes of UTF-8, got {name!r}")
    seconds = args.get("seconds")
    if seconds is not None and not 0 < seconds <= MAX_LEND_S:
        raise ApiError(f"{op}: 'seconds' must be more than 0 and at most {MAX_LEND_S}")
    client = args.get("client")
    if client is not None and len(client.encode()) > MAX_CLIENT_NAME:
        raise ApiError(f"{op}: 'client' must be at most {MAX_CLIENT_NAME} bytes of UTF-8")
    return Request(op, request_id, args)


def ok(request_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **fields}


def error(request_id: int | None, exc: RpilinkError) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "code": exc.code, "message": exc.message}


def pack(obj: Mapping[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


#: the largest map a request can be: every field of the widest op, ``id`` and ``op``
MAX_REQUEST_FIELDS = max(len(fields) for fields in SCHEMA.values()) + 2
#: the longest string a request may hold (op names, port names, the client's name)
MAX_REQUEST_STR = 256


class Decoder:
    """Incoming bytes to objects, with hard limits; any garbage raises ApiError.

    The limits come from the schema, so memory per request is bounded before
    anything is built: at most ``max_request`` bytes buffered, maps of at most
    ``MAX_REQUEST_FIELDS`` entries, strings of at most ``MAX_REQUEST_STR`` bytes,
    one binary field of at most ``max_message`` bytes, and no arrays or
    extension types (no request has any). After an error the stream has no
    resynchronisation point: the server answers (``id`` null) and closes the
    connection. Raises ApiError for garbage, MessageTooLargeError past
    ``max_request``.
    """

    def __init__(self, max_request: int, max_message: int) -> None:
        self._unpacker = msgpack.Unpacker(
            max_buffer_size=max_request,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_map_len=MAX_REQUEST_FIELDS,
            max_str_len=MAX_REQUEST_STR,
            max_bin_len=max_message,
            max_array_len=0,
            max_ext_len=0,
        )

        self._fed = 0  # bytes fed so far
        self._complete = 0  # offset just past the last whole request

    @property
    def pending(self) -> int:
        """Bytes of a request begun and not yet complete."""
        return self._fed - self._complete

    def feed(self, data: bytes) -> Iterator[object]:
        try:
            self._unpacker.feed(data)
            self._fed += len(data)
            for obj in self._unpacker:
                self._complete = self._unpacker.tell()
                yield obj
        except msgpack.BufferFull:
            raise MessageTooLargeError(
                "request larger than the daemon's api.max_request limit"
            ) from None
        except (ValueError, msgpack.UnpackException) as exc:
            raise ApiError(f"not valid msgpack: {exc}") from None
