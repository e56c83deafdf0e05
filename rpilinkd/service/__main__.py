"""rpilinkd: the daemon. ``rpilinkd --help`` explains the options."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from rpilinkd import __version__
from rpilinkd.config import DEFAULT_CONFIG_PATH, Config, dump_toml, load_config, replace_keys
from rpilinkd.errors import ConfigError
from rpilinkd.exits import run_main

EPILOG = """\
examples:
  rpilinkd --check-config                       validate /etc/rpilink/rpilinkd.toml, print it
  rpilinkd --release-pins                       after a crash: the bus pins safe, then exit
  rpilinkd --pigpio 127.0.0.1:8888 --socket /tmp/a.sock --node a     try it on rpilink-sim
  PIGPIO_ADDR=pi-a.local rpilinkd               pigpiod elsewhere (as pigpio's tools accept)

Settings come from the config file (every key documented in etc/rpilink/rpilinkd.toml),
then PIGPIO_ADDR / PIGPIO_PORT, then the options here. Under systemd the daemon takes
its socket from socket activation and logs to journald; see docs/operations.md.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rpilinkd",
        description="Link two Raspberry Pis wired GPIO to GPIO: a reliable message bus "
        "over pigpiod, served to local programs on a Unix socket.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"config file (default {DEFAULT_CONFIG_PATH}; missing: defaults)",
    )
    parser.add_argument(
        "--pigpio", metavar="HOST:PORT", help="pigpiod to use (default 127.0.0.1:8888)"
    )
    parser.add_argument(
        "--socket", metavar="PATH", help="the API socket (default /run/rpilink.sock)"
    )
    parser.add_argument("--node", metavar="NAME", help="this node's name (default: the hostname)")
    parser.add_argument(
        "--role", choices=("auto", "master", "slave"), help="bus role (default auto)"
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error", "critical"),
        help="log level (default info)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print the effective one, and exit",
    )
    parser.add_argument(
        "--release-pins",
        action="store_true",
        help="leave the bus pins safe (data lines inputs, control outputs low) and exit: "
        "systemd runs this after every stop, for a daemon that was killed",
    )
    parser.add_argument("--version", action="version", version=f"rpilinkd {__version__}")
    return parser.parse_args(argv)


def effective_config(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    """File, then the environment, then the command line; errors name the key."""
    config = load_config(args.config, required=args.config != DEFAULT_CONFIG_PATH)
    overrides: dict[str, Any] = {}
    if environ.get("PIGPIO_ADDR"):
        overrides["pigpio.host"] = environ["PIGPIO_ADDR"]
    if environ.get("PIGPIO_PORT"):
        overrides["pigpio.port"] = _port(environ["PIGPIO_PORT"], "PIGPIO_PORT")
    if args.pigpio:
        host, sep, port = args.pigpio.rpartition(":")
        if not sep or not host:
            raise ConfigError("--pigpio", "must be HOST:PORT", args.pigpio)
        overrides["pigpio.host"] = host
        overrides["pigpio.port"] = _port(port, "--pigpio")
    for option, key in (
        ("socket", "api.socket"),
        ("node", "node.name"),
        ("role", "node.role"),
        ("log_level", "log.level"),
    ):
        if getattr(args, option):
            overrides[key] = getattr(args, option)
    return replace_keys(config, overrides) if overrides else config


def _port(text: str, key: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(key, "must be a port number", text) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main("rpilinkd", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    config = effective_config(args, dict(os.environ))
    if args.check_config:
        print(dump_toml(config), end="")
        return 0
    from rpilinkd.service.daemon import run  # noqa: PLC0415 - keeps --help and --check-config quick
    from rpilinkd.service.systemd import setup_logging  # noqa: PLC0415

    setup_logging(config.log.level)
    if args.release_pins:
        from rpilinkd.service.release import release_pins  # noqa: PLC0415

        return asyncio.run(release_pins(config))
    return asyncio.run(run(config))  # a ConfigError found while building services exits 2 too


if __name__ == "__main__":
    sys.exit(main())
