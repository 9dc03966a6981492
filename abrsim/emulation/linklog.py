"""Mahimahi's link log (``--downlink-log``/``--uplink-log``): what the link did, packet by packet.

Each line after the ``#`` header is ``T + BYTES`` (a packet arrived at the queue), ``T # 1504``
(a delivery opportunity) or ``T - BYTES DELAY`` (a packet left the link after ``DELAY`` ms in
it), ``T`` in whole milliseconds since mm-link's ``init timestamp``. The header's ``base
timestamp`` is when the link trace's zero was, on that clock; ``init timestamp`` is realtime
(``CLOCK_REALTIME``) milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abrsim.errors import InputError

__all__ = ["LinkLog", "read_link_log"]


@dataclass(frozen=True, eq=False)
class LinkLog:
    """One direction of an mm-link, parsed; times in seconds since the link trace's zero.

    Args:
        init_realtime_s: mm-link's init timestamp, realtime seconds.
        base_s: the link trace's zero, seconds after the init timestamp.
        queue: the header's queue description (e.g. ``droptail [packets=100]``).
        arrival_s, arrival_bytes: packets entering the queue.
        departure_s, departure_bytes, departure_delay_s: packets leaving the link, and the
            time each spent in it (queueing plus waiting for a delivery opportunity).
        opportunity_s: delivery opportunities (used or not).
    """

    init_realtime_s: float
    base_s: float
    queue: str
    arrival_s: np.ndarray
    arrival_bytes: np.ndarray
    departure_s: np.ndarray
    departure_bytes: np.ndarray
    departure_delay_s: np.ndarray
    opportunity_s: np.ndarray

    @property
    def zero_realtime_s(self) -> float:
        """The link trace's zero, realtime seconds."""
        return self.init_realtime_s + self.base_s

    @property
    def drops(self) -> int:
        """Packets that arrived but never left (dropped by the queue, or still queued at the end)."""
        return int(self.arrival_s.size - self.departure_s.size)


def read_link_log(path: str | Path) -> LinkLog:
    """Parse an mm-link log file.

    Raises:
        InputError: naming the file and line, if the file is missing or a line is malformed.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the link log: {exc.strerror}", source=source) from exc
    init_ms = base_ms = None
    queue = ""
    arrivals: list[tuple[int, int]] = []
    departures: list[tuple[int, int, int]] = []
    opportunities: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            key = key.strip()
            if key == "init timestamp":
                init_ms = int(value)
            elif key == "base timestamp":
                base_ms = int(value)
            elif key == "queue":
                queue = value.strip()
            continue
        fields = line.split()
        try:
            if len(fields) == 3 and fields[1] == "+":
                arrivals.append((int(fields[0]), int(fields[2])))
            elif len(fields) == 3 and fields[1] == "#":
                opportunities.append(int(fields[0]))
            elif len(fields) == 4 and fields[1] == "-":
                departures.append((int(fields[0]), int(fields[2]), int(fields[3])))
            elif fields:
                raise ValueError(line)
        except ValueError:
            raise InputError(f"cannot parse {line!r}; expected 'T + B', 'T # B' or 'T - B D'",
                             source=source, line=number) from None
    if init_ms is None or base_ms is None:
        raise InputError("no '# init timestamp' and '# base timestamp' header", source=source)
    arrival = np.array(arrivals, dtype=np.int64).reshape(-1, 2)
    departure = np.array(departures, dtype=np.int64).reshape(-1, 3)
    return LinkLog(
        init_realtime_s=init_ms / 1000,
        base_s=base_ms / 1000,
        queue=queue,
        arrival_s=(arrival[:, 0] - base_ms) / 1000,
        arrival_bytes=arrival[:, 1],
        departure_s=(departure[:, 0] - base_ms) / 1000,
        departure_bytes=departure[:, 1],
        departure_delay_s=departure[:, 2] / 1000,
        opportunity_s=(np.array(opportunities, dtype=np.int64) - base_ms) / 1000,
    )
