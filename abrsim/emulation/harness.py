"""Downloads through an emulated link: Mahimahi's ``mm-delay`` and ``mm-link``, the kernel's TCP.

:func:`run_downloads` writes a trace as the downlink (:func:`~abrsim.emulation.write_link_trace`),
starts ``mm-delay D mm-link UP DOWN`` as an unprivileged user with a drop-tail downlink queue
and both link logs, serves byte payloads from this host (:class:`~abrsim.emulation.PayloadServer`,
outside the link, reached from inside as ``$MAHIMAHI_BASE``), and runs a scripted client inside
the shell that makes the requests on one persistent HTTP/1.1 connection. It returns each
request's start, first byte and last byte on the **link trace's clock** (0 = the moment
mm-link's downlink trace began), with the sender's TCP state and the parsed link logs.

Clock alignment: every shell shares the host's ``CLOCK_MONOTONIC``. mm-link logs its start as
realtime milliseconds (``init timestamp`` + ``base timestamp``); the client reads that header
and pairs a realtime with a monotonic reading, so link time = monotonic - offset, to within the
log's 1 ms resolution. The offset is checked against the uplink log: the client's SYN must enter
the uplink queue when the client says it connected (:attr:`EmulationRun.clock_check_s`).

The machine needs the set-up of ``tools/emulation/emulation.sh up`` (Mahimahi, the iptables
wrapper, the unprivileged user, IP forwarding, the FORWARD rule keeping 100.64.0.0/10 on this
host); :func:`emulation_unavailable` says what is missing. Everything started is ended by its
process id (the shell's process group); the temporary folder is removed.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from abrsim.emulation.linklog import LinkLog, read_link_log
from abrsim.emulation.linktrace import LinkTrace, constant_trace, write_link_trace
from abrsim.emulation.server import PayloadServer, ServedRequest
from abrsim.trace import Trace

__all__ = [
    "EMULATION_USER",
    "SETUP_STATE_DIR",
    "DownloadRecord",
    "EmulationError",
    "EmulationRun",
    "Request",
    "emulation_unavailable",
    "run_downloads",
]

EMULATION_USER = os.environ.get("ABRSIM_EMULATION_USER", "abrsim-emu")
"""The unprivileged user the shells run as (Mahimahi refuses root)."""
SETUP_STATE_DIR = Path(os.environ.get("ABRSIM_EMULATION_STATE", "/var/lib/abrsim-emulation"))
"""Where ``tools/emulation/emulation.sh`` records what it set up."""
_CLIENT = Path(__file__).with_name("_client.py")
#: The uplink: 4 delivery opportunities every millisecond (48 Mbit/s), never the bottleneck.
_UPLINK_LINES = "1\n1\n1\n1\n"
_SYN_BYTES = 64


class EmulationError(RuntimeError):
    """The emulated run failed (the shell exited with an error, or timed out)."""


class Request(NamedTuple):
    """One request of a client's plan: ``gap_s`` idle after the previous last byte, then ``size_bytes``.

    The first request's gap counts from the plan's ``start_link_s``.
    """

    size_bytes: int
    gap_s: float = 0.0


class DownloadRecord(NamedTuple):
    """One download through the emulated link; times in seconds on the link trace's clock.

    ``cwnd_segments``, ``ssthresh_segments``, ``srtt_s`` and ``since_data_sent_s`` are the
    sender's (the server's) TCP state when the request reached it; ``retransmits`` is what
    answering cost. ``header_bytes`` is the HTTP response header.
    """

    index: int
    size_bytes: int
    gap_s: float
    request_s: float
    first_byte_s: float
    done_s: float
    header_bytes: int
    request_bytes: int
    server_received_s: float
    cwnd_segments: int
    ssthresh_segments: int
    srtt_s: float
    since_data_sent_s: float
    retransmits: int
    ca_state: int

    @property
    def download_s(self) -> float:
        """Request to last byte, seconds."""
        return self.done_s - self.request_s


@dataclass(frozen=True, eq=False)
class EmulationRun:
    """What one emulated run measured.

    Args:
        records: the downloads, in order.
        downlink, uplink: the parsed link logs (times on the link trace's clock).
        link_trace: the downlink trace file as written.
        one_way_delay_s: mm-delay's delay, each direction.
        queue_packets: the downlink's drop-tail queue, packets.
        congestion_control: the sender's congestion control.
        clock_check_s: when the SYN entered the uplink queue minus when the client connected,
            on the link clock (about 0 to 0.002 s when the alignment holds).
        connected_s: when the client called connect(), link clock.
        handshake_s: how long connect() took (the TCP handshake: one round trip), seconds.
    """

    records: list[DownloadRecord]
    downlink: LinkLog
    uplink: LinkLog
    link_trace: LinkTrace
    one_way_delay_s: float
    queue_packets: int
    congestion_control: str
    clock_check_s: float
    connected_s: float
    handshake_s: float
    served: list[ServedRequest] = field(default_factory=list)


def _sysctl(name: str) -> str:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return ""


def emulation_unavailable() -> str | None:
    """Why emulated runs cannot happen on this machine, in one line; None when they can."""
    if os.geteuid() != 0:
        return "needs root (Mahimahi's set-up and the shells' user switch)"
    if shutil.which("mm-delay") is None or shutil.which("mm-link") is None:
        return "Mahimahi (mm-delay, mm-link) is not installed: run tools/emulation/emulation.sh up"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    if not (SETUP_STATE_DIR / "up").exists():
        return (f"the emulation set-up is not in place ({SETUP_STATE_DIR}/up): "
                "run tools/emulation/emulation.sh up")
    try:
        pwd.getpwnam(EMULATION_USER)
    except KeyError:
        return f"the user {EMULATION_USER!r} does not exist: run tools/emulation/emulation.sh up"
    if _sysctl("net.ipv4.ip_forward") != "1":
        return "net.ipv4.ip_forward is 0: run tools/emulation/emulation.sh up"
    return None


def tcp_settings() -> dict[str, str]:
    """The kernel's TCP settings that shape the measurements (to store with them)."""
    names = ("net.ipv4.tcp_congestion_control", "net.ipv4.tcp_slow_start_after_idle",
             "net.ipv4.tcp_no_metrics_save", "net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem",
             "net.core.default_qdisc", "net.ipv4.tcp_notsent_lowat")
    return {name: _sysctl(name) for name in names}


def delay_milliseconds(one_way_delay_s: float) -> int:
    """``mm-delay``'s argument: the one-way delay in whole milliseconds.

    Raises:
        ValueError: if ``one_way_delay_s`` is not whole milliseconds >= 0.
    """
    delay_ms = round(one_way_delay_s * 1000)
    if delay_ms < 0 or abs(delay_ms - one_way_delay_s * 1000) > 1e-6:
        raise ValueError(f'"one_way_delay_s" must be whole milliseconds >= 0, got {one_way_delay_s!r}')
    return delay_ms


def mahimahi_command(delay_ms: int, uplink: Path, downlink: Path, queue_packets: int, down_log: Path,
                     up_log: Path, program: list[str]) -> list[str]:
    """``program`` run as the emulation user in ``mm-delay`` + ``mm-link`` (a droptail downlink
    queue of ``queue_packets``, both directions logged)."""
    return [
        "runuser", "-u", EMULATION_USER, "--",
        "mm-delay", str(delay_ms),
        "mm-link", str(uplink), str(downlink),
        "--downlink-queue=droptail", f"--downlink-queue-args=packets={int(queue_packets)}",
        f"--downlink-log={down_log}", f"--uplink-log={up_log}",
        "--", *program,
    ]


def _wait_for(path: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            raise EmulationError(f"the shell exited (status {process.returncode}) before writing {path.name}")
        if time.monotonic() > deadline:
            raise EmulationError(f"timed out after {timeout_s:g} s waiting for {path.name}")
        time.sleep(0.005)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """End the shell we started: its process group (its id is the shell's pid), TERM then KILL."""
    if process.poll() is not None:
        return
    for sig, grace_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_downloads(
    trace: Trace | float,
    requests: Sequence[Request | tuple[int, float]],
    *,
    one_way_delay_s: float = 0.02,
    queue_packets: int = 100,
    start_link_s: float = 0.5,
    congestion_control: str | None = None,
    timeout_s: float | None = None,
    min_period_s: float = 30.0,
    keep_dir: str | Path | None = None,
) -> EmulationRun:
    """Make ``requests`` on one persistent connection through an emulated link.

    Args:
        trace: the downlink (a trace, or a constant rate in bit/s), IP-level capacity.
        requests: the plan: ``(size_bytes, gap_s)`` each.
        one_way_delay_s: mm-delay's delay each way, seconds (whole milliseconds); RTT is twice it.
        queue_packets: the downlink's drop-tail queue, packets.
        start_link_s: the first request leaves at this link time plus its gap, seconds.
        congestion_control: the server's TCP congestion control, or None for the system default.
        timeout_s: end the shell after this long, seconds; None: 60 s plus a generous estimate.
        min_period_s: see :func:`~abrsim.emulation.write_link_trace`.
        keep_dir: copy the run's files (traces, logs, client output) into this folder.

    Returns:
        The run.

    Raises:
        EmulationError: if the machine is not set up, or the run fails or times out.
        ValueError: if ``one_way_delay_s`` is not whole milliseconds >= 0 or ``queue_packets`` < 1.
    """
    reason = emulation_unavailable()
    if reason:
        raise EmulationError(reason)
    delay_ms = delay_milliseconds(one_way_delay_s)
    if int(queue_packets) < 1:
        raise ValueError(f'"queue_packets" must be >= 1, got {queue_packets!r}')
    if not isinstance(trace, Trace):
        trace = constant_trace(float(trace))
    plan = [Request(int(size), float(gap)) for size, gap in requests]
    if timeout_s is None:
        bits = sum(request.size_bytes for request in plan) * 8
        floor_bps = max(float(np.min(trace.bandwidth_bps[trace.bandwidth_bps > 0])), 1e5)
        timeout_s = 60.0 + start_link_s + sum(r.gap_s for r in plan) + 3 * bits / floor_bps
    user = pwd.getpwnam(EMULATION_USER)
    work = Path(tempfile.mkdtemp(prefix="abrsim-emulation-"))
    process = None
    server = None
    try:
        os.chown(work, user.pw_uid, user.pw_gid)
        work.chmod(0o755)
        downlink = write_link_trace(trace, work / "downlink.trace", min_period_s=min_period_s)
        (work / "uplink.trace").write_text(_UPLINK_LINES)
        shutil.copyfile(_CLIENT, work / "client.py")
        down_log, up_log = work / "downlink.log", work / "uplink.log"
        (work / "plan.json").write_text(json.dumps({
            "start_link_s": start_link_s, "downlink_log": str(down_log),
            "requests": [request._asdict() for request in plan]}))
        client = ["python3", str(work / "client.py"), str(work / "plan.json"), str(work)]
        command = mahimahi_command(delay_ms, work / "uplink.trace", downlink.path, queue_packets, down_log,
                                   up_log, client)
        with open(work / "shell.out", "wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, cwd=work)
        _wait_for(work / "base", process, 20.0)
        base = (work / "base").read_text().strip()
        server = PayloadServer(base, 0, congestion_control)
        (work / "port.tmp").write_text(f"{server.port}\n")
        os.chown(work / "port.tmp", user.pw_uid, user.pw_gid)
        (work / "port.tmp").rename(work / "port")
        try:
            status = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise EmulationError(f"the emulated run took over {timeout_s:g} s; ended it") from None
        if status != 0 or not (work / "client.json").exists():
            output_text = (work / "shell.out").read_text(errors="replace").strip()
            raise EmulationError(f"the shell exited with status {status}: {output_text[-2000:]}")
        server.close()
        result = json.loads((work / "client.json").read_text())
        down, up = read_link_log(down_log), read_link_log(up_log)
        if keep_dir is not None:
            shutil.copytree(work, keep_dir, dirs_exist_ok=True)
        return _assemble(result, server, down, up, downlink, one_way_delay_s, int(queue_packets),
                         congestion_control or _sysctl("net.ipv4.tcp_congestion_control"))
    finally:
        if process is not None:
            _end_group(process)
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)


def _assemble(result: dict, server: PayloadServer, down: LinkLog, up: LinkLog,  # type: ignore[type-arg]
              link_trace: LinkTrace, one_way_delay_s: float, queue_packets: int,
              congestion_control: str) -> EmulationRun:
    real_s, mono_s = result["clock_pairs"][0]
    offset_s = result["link_zero_realtime_s"] - (real_s - mono_s)  # link time = monotonic - offset
    served = [request for request in server.served if request.connection == 0]
    if len(served) != len(result["records"]):
        raise EmulationError(
            f"the server answered {len(served)} requests, the client made {len(result['records'])}")
    # An answer's retransmissions: until the next request arrived (the answer was complete by
    # then), or until the client closed, for the last one.
    final = server.final.get(0)
    totals = [answer.before.total_retransmits for answer in served]
    totals.append(final.total_retransmits if final else served[-1].after.total_retransmits)
    records = []
    for k, (row, answer) in enumerate(zip(result["records"], served, strict=True)):
        records.append(DownloadRecord(
            index=row["index"], size_bytes=row["size_bytes"], gap_s=row["gap_s"],
            request_s=row["request_s"] - offset_s, first_byte_s=row["first_byte_s"] - offset_s,
            done_s=row["done_s"] - offset_s, header_bytes=row["header_bytes"],
            request_bytes=row["request_bytes"], server_received_s=answer.received_s - offset_s,
            cwnd_segments=answer.before.cwnd_segments, ssthresh_segments=answer.before.ssthresh_segments,
            srtt_s=answer.before.rtt_s, since_data_sent_s=answer.before.since_data_sent_s,
            retransmits=totals[k + 1] - totals[k],
            ca_state=answer.before.ca_state,
        ))
    connected_s = result["connect_s"] - offset_s
    # The SYN: the uplink's first 64-byte packet (4 tun + 20 IP + 40 TCP header with the SYN's
    # options); its arrival on the downlink's clock.
    syns = np.flatnonzero(up.arrival_bytes == _SYN_BYTES)
    syn_s = float(up.arrival_s[syns[0]]) + up.base_s - down.base_s if syns.size else float("nan")
    return EmulationRun(records=records, downlink=down, uplink=up, link_trace=link_trace,
                        one_way_delay_s=one_way_delay_s, queue_packets=queue_packets,
                        congestion_control=congestion_control, clock_check_s=syn_s - connected_s,
                        connected_s=connected_s, handshake_s=result["connected_s"] - result["connect_s"],
                        served=served)
