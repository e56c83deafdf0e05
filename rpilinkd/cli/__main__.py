"""rpilink: talk to rpilinkd from the shell. ``rpilink --help`` explains it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from rpilinkd import __version__
from rpilinkd.cli import wiring
from rpilinkd.client import default_socket
from rpilinkd.exits import ExitCode, Hint, run_main

EPILOG = """\
examples:
  rpilink status                        is the link up? which role, which peer?
  rpilink listen 7                      print what arrives on port 7 (Ctrl-C to stop)
  rpilink send 7 hello                  send "hello" to port 7 on the other Pi
  tar c dir | rpilink send 7 -          one message from stdin (up to the maximum size)
  rpilink listen sensors                bind a named port, announced to the peer
  rpilink endpoints                     the named ports on both Pis
  rpilink cat 9                         pipe stdin/stdout across the link, like netcat
  rpilink bench 9 --count 2000          throughput and latency (run `rpilink listen 9
                                        --quiet` on the other Pi first)
  rpilink demo                          two virtual Pis on rpilink-sim, talking
  rpilink wiring-check                  on both Pis: which wire of the cable is wrong?

The daemon's socket is /run/rpilink.sock unless --socket or $RPILINK_SOCKET says
otherwise. Exit status: 0 ok, 1 refused or failed (the error's code is printed),
2 bad usage, 3 the daemon is not running.
"""


def port_or_name(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpilink",
        description="Talk to rpilinkd: messages between two wired Raspberry Pis.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--socket",
        default=None,
        help="the daemon's socket (default: $RPILINK_SOCKET or /run/rpilink.sock)",
    )
    parser.add_argument("--version", action="version", version=f"rpilink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = sub.add_parser("send", help="send one message to a port on the other Pi")
    send.add_argument("port", type=port_number)
    send.add_argument("data", nargs="?", default="-", help="the message text, or - for stdin")
    send.add_argument("--from", dest="from_port", type=port_number, help="source port to report")

    listen = sub.add_parser("listen", help="bind a port (number or name) and print messages")
    listen.add_argument("port", type=port_or_name, help="a port number or a name")
    listen.add_argument("--count", type=int, help="stop after this many messages")
    listen.add_argument("--raw", action="store_true", help="write the bytes to stdout as they are")
    listen.add_argument("--quiet", action="store_true", help="print nothing (a sink for bench)")

    status = sub.add_parser("status", help="the link's state, role, peer and figures")
    status.add_argument("--json", action="store_true", help="machine-readable")

    endpoints = sub.add_parser("endpoints", help="named ports on this Pi and the peer")
    endpoints.add_argument("--json", action="store_true", help="machine-readable")

    cat = sub.add_parser("cat", help="stdin to the peer's port, the port's messages to stdout")
    cat.add_argument("port", type=port_number)
    cat.add_argument("--chunk", type=int, default=64 * 1024, help="bytes per message (65536)")
    cat.add_argument(
        "--wait", type=float, default=0.5, help="seconds to keep receiving after stdin ends (0.5)"
    )

    bench = sub.add_parser("bench", help="measure throughput and latency to a port")
    bench.add_argument("port", type=port_number)
    bench.add_argument("--count", type=int, default=1000, help="messages (1000)")
    bench.add_argument("--size", type=int, default=1024, help="bytes per message (1024)")
    bench.add_argument("--parallel", type=int, default=16, help="sends in flight (16)")
    bench.add_argument("--json", action="store_true", help="machine-readable summary")

    demo = sub.add_parser("demo", help="run two virtual Pis on rpilink-sim and show them talk")
    demo.add_argument("--sample-us", type=int, default=5, choices=(1, 2, 4, 5, 8, 10))
    demo.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")

    wiring.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rpilinkd.cli import commands  # noqa: PLC0415 - keeps --help fast

    if args.command == "demo":
        from rpilinkd.cli.demo import run_demo  # noqa: PLC0415

        return run_demo(sample_us=args.sample_us, keep=args.keep)
    path = args.socket or default_socket()
    if args.command == "wiring-check":
        return wiring.run_wiring_check(path, args)
    handlers: dict[str, Callable[[str, argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "send": commands.send,
        "listen": commands.listen,
        "status": commands.status,
        "endpoints": commands.endpoints,
        "cat": commands.cat,
        "bench": commands.bench,
    }
    absent = f"no daemon at {path} (is rpilinkd running? see --socket)"
    hints: list[Hint] = [
        (FileNotFoundError, ExitCode.UNREACHABLE, absent),
        (ConnectionRefusedError, ExitCode.UNREACHABLE, absent),
        (PermissionError, ExitCode.UNREACHABLE, f"not allowed to use {path} (join group rpilink)"),
        (ConnectionError, ExitCode.UNREACHABLE, ""),
    ]
    return run_main("rpilink", lambda: asyncio.run(handlers[args.command](path, args)), hints)


if __name__ == "__main__":
    sys.exit(main())
