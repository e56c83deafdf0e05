"""A process that runs only the MQTT publisher, with moving numbers (for LWT tests).

Usage: python -m tests.support.telemetry_runner PORT NODE
"""

from __future__ import annotations

import asyncio
import signal
import sys

from rpilinkd.config import MqttConfig
from rpilinkd.telemetry.mqtt import TelemetryPublisher
from tests.support.telemetry_fakes import MovingSource


async def main(port: int, node: str) -> None:
    config = MqttConfig(enabled=True, port=port, stats_interval_s=0.5, discovery=False)
    publisher = TelemetryPublisher(config, node=node, version="test", source=MovingSource(node))
    task = asyncio.create_task(publisher.run())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("running", flush=True)
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
