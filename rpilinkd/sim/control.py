"""The control socket: JSON lines on a Unix socket, for faults and statistics at run time.

Each request is one JSON object on a line; each answer is one line, with
``"ok": true`` and the result, or ``"ok": false`` and an ``error`` naming what
was wrong. Operations:

==================  ==========================================  =======================
op                  arguments                                   answer
==================  ==========================================  =======================
``stats``                                                       ``stats``: the counters
``reset-stats``
``fault``           ``kind`` and its keys (see faults.py)       ``fault``: with its id
``faults``                                                      ``faults``: active list
``remove-fault``    ``id``
``clear-faults``
``restart``         ``board``, optional ``down_s`` (0.2)
``stall``           ``board``, optional ``ms`` (200)
``ports``                                                       ``a``, ``b``
``timeline``        ``record``: true starts, false stops        ``timeline`` (on stop):
                                                                passes, wire edges
==================  ==========================================  =======================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from rpilinkd.errors import SimError
from rpilinkd.sim.faults import Fault
from rpilinkd.sim.timeline import Timeline

_LOGGER = logging.getLogger(__name__)
MAX_LINE = 64 * 1024


class Controllable(Protocol):
    """What the control socket drives (the Simulator)."""

    @property
    def boards(self) -> Mapping[str, object]: ...
    def stats(self) -> dict[str, Any]: ...
    def reset_stats(self) -> None: ...
    def add_fault(self, spec: dict[str, Any] | str) -> dict[str, Any]: ...
    def active_faults(self) -> list[Fault]: ...
    def remove_fault(self, fault_id: int) -> None: ...
    def clear_faults(self) -> None: ...
    async def restart_board(self, board: str, down_s: float = 0.2) -> None: ...
    def stall_alerts(self, board: str, ms: float) -> None: ...
    def port(self, board: str) -> int: ...
    @property
    def timeline(self) -> Timeline: ...


class ControlServer:
    def __init__(self, sim: Controllable, path: Path) -> None:
        self.sim = sim
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, str(self.path), limit=MAX_LINE)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                answer = await self.answer(line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):  # ValueError: a line over the limit
            pass
        finally:
            writer.close()

    async def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"not JSON: {exc}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object"}
        try:
            return {"ok": True, **await self._dispatch(request)}
        except SimError as exc:
            return {"ok": False, "error": exc.message}

    async def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        sim = self.sim
        if op == "stats":
            return {"stats": sim.stats()}
        if op == "reset-stats":
            sim.reset_stats()
            return {}
        if op == "fault":
            return {"fault": sim.add_fault({k: v for k, v in request.items() if k != "op"})}
        if op == "faults":
            return {"faults": [f.describe() for f in sim.active_faults()]}
        if op == "remove-fault":
            fault_id = request.get("id")
            if not isinstance(fault_id, int):
                raise SimError("remove-fault needs an integer 'id'")
            sim.remove_fault(fault_id)
            return {}
        if op == "clear-faults":
            sim.clear_faults()
            return {}
        if op == "restart":
            down = request.get("down_s", 0.2)
            if not isinstance(down, int | float) or not 0 <= down <= 60:
                raise SimError("restart: down_s must be a number of seconds, 0-60")
            await sim.restart_board(str(request.get("board")), float(down))
            return {}
        if op == "stall":
            ms = request.get("ms", 200)
            if not isinstance(ms, int | float) or not 0 <= ms <= 60_000:
                raise SimError("stall: ms must be a number of milliseconds, 0-60000")
            sim.stall_alerts(str(request.get("board")), float(ms))
            return {}
        if op == "ports":
            return {name: sim.port(name) for name in sim.boards}
        if op == "timeline":
            record = request.get("record")
            if not isinstance(record, bool):
                raise SimError("timeline: record must be true (start) or false (stop and return)")
            if record:
                sim.timeline.start()
                return {}
            return {"timeline": sim.timeline.stop()}
        raise SimError(
            f"unknown op {op!r}; ops: stats, reset-stats, fault, faults, remove-fault, "
            "clear-faults, restart, stall, ports, timeline"
        )
