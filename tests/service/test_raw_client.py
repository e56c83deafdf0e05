"""A client written only from docs/api.md: a plain socket and msgpack (must-show 2).

Nothing from rpilinkd is imported; the code follows the document's own example.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import msgpack

from rpilinkd.testbed import System

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


class RawClient:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(str(path))
        self.unpacker = msgpack.Unpacker(raw=False)
        self.pushes: list[dict[str, object]] = []

    def request(self, op: str, request_id: int, **fields: object) -> dict[str, object]:
        self.sock.sendall(msgpack.packb({"op": op, "id": request_id, **fields}, use_bin_type=True))
        while True:
            for obj in self.unpacker:
                if obj.get("id") == request_id:
                    return obj  # type: ignore[no-any-return]
                self.pushes.append(obj)
            self.unpacker.feed(self.sock.recv(65536))

    def close(self) -> None:
        self.sock.close()

    def push(self) -> dict[str, object]:
        while not self.pushes:
            self.unpacker.feed(self.sock.recv(65536))
            self.pushes.extend(self.unpacker)
        return self.pushes.pop(0)


def test_the_documented_session_works(shared: System) -> None:
    alpha = RawClient(shared.daemon("a").socket)
    beta = RawClient(shared.daemon("b").socket)
    try:
        session(alpha, beta)
    finally:
        alpha.close()
        beta.close()


def session(alpha: RawClient, beta: RawClient) -> None:
    hello = alpha.request("hello", 1, client="my-sensor-reader")
    assert hello == {"id": 1, "ok": True, "api": 1, "node": "alpha", "max_message": 1048576}
    bound = alpha.request("bind", 2, name="sensors")
    assert bound == {"id": 2, "ok": True, "port": 1024}
    assert beta.request("bind", 1, port=7) == {"id": 1, "ok": True, "port": 7}
    assert alpha.request("send", 3, port=7, data=b"temperature 21.5") == {"id": 3, "ok": True}
    message = beta.push()
    assert message == {"op": "msg", "port": 7, "from": 1024, "data": b"temperature 21.5"}
    answer = beta.request("send", 2, port=1024, data=b"ack 21.5", **{"from": 7})
    assert answer == {"id": 2, "ok": True}
    assert alpha.push() == {"op": "msg", "port": 1024, "from": 7, "data": b"ack 21.5"}
    refused = alpha.request("send", 4, port=99, data=b"?")
    assert refused["ok"] is False
    assert refused["code"] == "no_listener"
    status = alpha.request("status", 5)
    table = DOC.read_text().split("**status** reply")[1].split("**stats**")[0]
    for row in re.findall(r"^\| `(.+?)` \|", table, re.M):
        for key in re.findall(r"(\w+)`?", row.replace("`, `", " ")):
            assert key in status, f"status lacks the documented field {key}"
    endpoints = beta.request("endpoints", 3)
    assert endpoints["peer"] == {"sensors": 1024}
