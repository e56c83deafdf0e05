"""The sans-IO link layer alone: how fast it is compared with the bus it will drive (issue 3)."""

from __future__ import annotations

import random
import time

from rpilinkd.config import LinkConfig
from rpilinkd.link import Connection, MessageDelivered, MessageReceived
from tests.link.pair import LinkPair, WireFaults

DESCRIPTION = "link layer throughput in memory, against the 500 kB/s line rate at -s 1"
LINE_RATE_S1 = 500_000


def lossless(size: int, seconds: float) -> tuple[float, float]:
    """(messages/s, payload MB/s) from a to b through a direct in-memory wire."""
    config = LinkConfig()
    a = Connection(config, node="a", epoch=1, rng=random.Random(1))
    b = Connection(config, node="b", epoch=2, rng=random.Random(2))
    now = 0.0
    a.start(now, leader=True)
    b.start(now, leader=False)
    b.bind(1)
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    delivered = 0
    outstanding = 0
    started = time.process_time()
    while time.process_time() - started < seconds:
        now += 0.0005
        while a.state.value == "up" and outstanding < 64:
            a.send(1, payload, now)
            outstanding += 1
        for frame in a.frames_to_send(now):
            b.receive_frame(frame, now)
        a.frames_on_wire(now)
        for frame in b.frames_to_send(now + 0.002):
            a.receive_frame(frame, now)
        b.frames_on_wire(now + 0.002)
        for end in (a, b):
            timer = end.get_timer()
            if timer is not None and timer <= now:
                end.handle_timer(now)
        while (event := b.next_event()) is not None:
            if isinstance(event, MessageReceived):
                b.accept(event.message_id, now)
        while (event := a.next_event()) is not None:
            if isinstance(event, MessageDelivered):
                delivered += 1
                outstanding -= 1
    cpu = time.process_time() - started
    return delivered / cpu, delivered * size / cpu / 1e6


def under_loss(loss: float, messages: int) -> dict[str, float]:
    # turns, as on the bus: a frame's timer starts when its side's turn ends
    pair = LinkPair(LinkConfig(), seed=11, faults=WireFaults(loss=loss), half_duplex=True)
    pair.run_until(pair.up, 10)
    pair.ends["b"].bind(1)
    a = pair.ends["a"]
    started, link_started = time.process_time(), pair.now
    for _ in range(messages):
        a.send(1, bytes(1000), pair.now)

    def answered() -> bool:
        return sum(isinstance(e, MessageDelivered) for _, e in pair.events["a"]) == messages

    pair.run_until(answered, 3600)
    data_frames = messages * 4  # 1000-byte messages are four 256-byte fragments
    return {
        "cpu_s": time.process_time() - started,
        "link_time_s": pair.now - link_started,
        "retransmitted_per_data_frame": a.stats.retransmissions / data_frames,
    }


def run(quick: bool) -> dict[str, float | int | str]:
    seconds = 0.5 if quick else 2.0
    figures: dict[str, float | int | str] = {}
    for size in (64, 1024, 16384):
        rate, mbps = lossless(size, seconds)
        figures[f"lossless_{size}B_msgs_per_s"] = round(rate)
        figures[f"lossless_{size}B_MBps"] = round(mbps, 2)
    figures["lossless_16KiB_vs_line_rate_s1_x"] = round(
        float(figures["lossless_16384B_MBps"]) * 1e6 / LINE_RATE_S1, 1
    )
    loss = under_loss(0.10, 300 if quick else 2000)
    figures["loss10_retransmitted_per_data_frame"] = round(loss["retransmitted_per_data_frame"], 3)
    figures["loss10_cpu_s"] = round(loss["cpu_s"], 2)
    # go-back-N model for comparison: each loss (a frame or its ack, p ~ 1-(0.9*0.9))
    # resends on average half a window
    p, window = 1 - 0.9 * 0.9, LinkConfig().window
    figures["loss10_window"] = window
    figures["loss10_go_back_n_model_per_frame"] = round(p / (1 - p) * (1 + window / 2), 3)
    figures["note"] = "MB/s is message payload per CPU second; both ends run in this process"
    return figures
