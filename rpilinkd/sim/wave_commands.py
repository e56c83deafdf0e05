"""pigpiod's wave commands (WVCLR ... WVSC), with pigpio v79's checks and error codes.

The other commands and the handler conventions are in commands.py.
"""

from __future__ import annotations

import numpy as np

from rpilinkd.pigpio_protocol import Cmd, Err
from rpilinkd.sim.commands import Call, Handler, registrar, u32
from rpilinkd.sim.waves import Pulses, parse_chain

WAVE_HANDLERS: dict[int, Handler] = {}
command = registrar(WAVE_HANDLERS)


@command(Cmd.WVCLR)
def _wvclr(c: Call) -> int:
    c.board.builder.clear()
    c.board.pool.clear()
    return 0


@command(Cmd.WVNEW)
def _wvnew(c: Call) -> int:
    c.board.builder.clear()
    return 0


@command(Cmd.WVAG)
def _wvag(c: Call) -> int:
    pulses = Pulses.from_wvag(c.ext)
    allowed = np.uint32(c.board.permitted)
    masked = bool(((pulses.on | pulses.off) & ~allowed).any())
    pulses = Pulses(pulses.on & allowed, pulses.off & allowed, pulses.delay)
    result = c.board.builder.add(pulses)
    return Err.SOME_PERMITTED if masked and result >= 0 else result


@command(Cmd.WVGO, Cmd.WVGOR)
def _deprecated(c: Call) -> int:
    return Err.DEPRECATED


@command(Cmd.WVCRE)
def _wvcre(c: Call) -> int:
    wave_id = c.board.pool.create(c.board.builder.pending)
    if wave_id >= 0:
        c.board.builder.clear()
    return wave_id


@command(Cmd.WVCAP)
def _wvcap(c: Call) -> int:
    pct, pct_bool = c.p1, c.p2
    if len(c.ext) == 4:
        pad = (pct, pct_bool, u32(c.ext))
    elif pct_bool and not c.ext:
        pad = (pct, pct_bool, 0)
    elif not pct_bool and not c.ext:
        pad = (pct, pct, 0)
    else:
        return Err.BAD_WAVE_ID  # what pigpio answers to other argument shapes
    wave_id = c.board.pool.create(c.board.builder.pending, pad)
    if wave_id >= 0:
        c.board.builder.clear()
    return wave_id


@command(Cmd.WVDEL)
def _wvdel(c: Call) -> int:
    wave_id = c.p1
    return c.board.pool.delete(wave_id)


@command(Cmd.WVTX, Cmd.WVTXR, Cmd.WVTXM)
def _wvtx(c: Call) -> int:
    wave_id, mode = c.p1, c.p2
    mode = {Cmd.WVTX: 0, Cmd.WVTXR: 1}.get(c.cmd, mode)
    wave = c.board.pool.get(wave_id)
    if wave is None:
        return Err.BAD_WAVE_ID
    if mode > 3:
        return Err.BAD_WAVE_MODE
    now = c.machine.now_us()
    c.board.advance(now)
    c.board.tx.send(now, wave_id, wave.pulses, repeat=bool(mode & 1), sync=mode >= 2)
    return wave.cbs


@command(Cmd.WVCHA)
def _wvcha(c: Call) -> int:
    program = parse_chain(c.ext, c.board.pool)
    if isinstance(program, int):
        return program
    now = c.machine.now_us()
    c.board.advance(now)
    c.board.tx.send_chain(now, program, c.board.pool)
    return 0


@command(Cmd.WVBSY)
def _wvbsy(c: Call) -> int:
    now = c.machine.now_us()
    c.board.advance(now)
    return int(c.board.tx.busy(now))


@command(Cmd.WVTAT)
def _wvtat(c: Call) -> int:
    now = c.machine.now_us()
    c.board.advance(now)
    return c.board.tx.wave_at(now)


@command(Cmd.WVHLT)
def _wvhlt(c: Call) -> int:
    now = c.machine.now_us()
    c.board.advance(now)
    c.board.tx.halt(now)
    return 0


@command(Cmd.WVSM, Cmd.WVSP, Cmd.WVSC)
def _wave_stats(c: Call) -> int:
    which = c.p1
    kind, error = {
        Cmd.WVSM: ("micros", Err.BAD_WVSM_COMMND),
        Cmd.WVSP: ("pulses", Err.BAD_WVSP_COMMND),
        Cmd.WVSC: ("cbs", Err.BAD_WVSC_COMMND),
    }[c.cmd]
    return error if which > 2 else c.board.builder.stat(which, kind)
