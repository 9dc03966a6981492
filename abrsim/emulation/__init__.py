"""Link emulation: abrsim traces replayed by Mahimahi, downloads over the kernel's TCP (issue 15).

* :mod:`~abrsim.emulation.linktrace` -- traces as Mahimahi link traces (:func:`write_link_trace`).
* :mod:`~abrsim.emulation.linklog` -- Mahimahi's per-packet link logs (:func:`read_link_log`).
* :mod:`~abrsim.emulation.server` -- the byte-payload HTTP/1.1 server (:class:`PayloadServer`).
* :mod:`~abrsim.emulation.harness` -- a run: shell, server, scripted client (:func:`run_downloads`).

The machine needs ``tools/emulation/emulation.sh up`` (root); see ``docs/real_network.md``.
"""

from abrsim.emulation.harness import (
    DownloadRecord,
    EmulationError,
    EmulationRun,
    Request,
    emulation_unavailable,
    run_downloads,
    tcp_settings,
)
from abrsim.emulation.linklog import LinkLog, read_link_log
from abrsim.emulation.linktrace import (
    PACKET_BYTES,
    LinkTrace,
    constant_trace,
    repeat_trace,
    trace_stretch,
    write_link_trace,
)
from abrsim.emulation.server import PayloadServer, ServedRequest, TcpInfo, read_tcp_info

__all__ = [
    "PACKET_BYTES",
    "DownloadRecord",
    "EmulationError",
    "EmulationRun",
    "LinkLog",
    "LinkTrace",
    "PayloadServer",
    "Request",
    "ServedRequest",
    "TcpInfo",
    "constant_trace",
    "emulation_unavailable",
    "read_link_log",
    "read_tcp_info",
    "repeat_trace",
    "run_downloads",
    "tcp_settings",
    "trace_stretch",
    "write_link_trace",
]
