"""A minimal HTTP/1.1 server of byte payloads, with the sender's TCP state at every request.

``GET /bytes/N`` answers ``N`` bytes (``Content-Length: N``) on a persistent connection. The
server runs on this host, outside the emulated link: it is the TCP *sender* whose congestion
control the measurements are about, so for every request it records the kernel's
``TCP_INFO`` for the connection (congestion window, slow-start threshold, smoothed RTT, time
since data was last sent) before it answers, and the retransmissions the answer cost.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["PayloadServer", "ServedRequest", "TcpInfo", "read_tcp_info"]

_REQUEST_LINE = re.compile(rb"^GET /bytes/(\d+)(?:\?\S*)? HTTP/1\.[01]$")
_CHUNK = bytes(1 << 20)
#: Linux ``struct tcp_info`` (include/uapi/linux/tcp.h) up to ``tcpi_total_retrans``: 8 bytes of
#: u8 fields, then 24 u32 fields.
_TCP_INFO = struct.Struct("=8B24I")
_TCP_INFO_BYTES = 104


@dataclass(frozen=True)
class TcpInfo:
    """What the kernel says about a TCP connection (``getsockopt(TCP_INFO)``), in SI units."""

    ca_state: int
    rto_s: float
    mss_bytes: int
    rtt_s: float
    rttvar_s: float
    ssthresh_segments: int
    cwnd_segments: int
    since_data_sent_s: float
    total_retransmits: int


def read_tcp_info(sock: socket.socket) -> TcpInfo:
    """The ``TCP_INFO`` of a connected socket."""
    fields = _TCP_INFO.unpack(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES))
    u32 = fields[8:]
    return TcpInfo(
        ca_state=fields[1],
        rto_s=u32[0] / 1e6,
        mss_bytes=u32[2],
        rtt_s=u32[15] / 1e6,
        rttvar_s=u32[16] / 1e6,
        ssthresh_segments=u32[17],
        cwnd_segments=u32[18],
        since_data_sent_s=u32[9] / 1e3,
        total_retransmits=u32[23],
    )


@dataclass(frozen=True)
class ServedRequest:
    """One answered request, server side; times are ``CLOCK_MONOTONIC`` seconds.

    Args:
        connection: the connection's number (0 for the first accepted).
        size_bytes: body bytes sent.
        header_bytes: response header bytes sent.
        received_s: when the request's last header line was read.
        written_s: when the whole answer was in the socket's send buffer.
        before: the connection's TCP state when the request was read.
        after: the TCP state when the answer was written to the socket (much of a large answer
            may still be in the send buffer then).
    """

    connection: int
    size_bytes: int
    header_bytes: int
    received_s: float
    written_s: float
    before: TcpInfo
    after: TcpInfo


class PayloadServer:
    """Serve byte payloads on ``(host, port)`` from a background thread; stop with :meth:`close`.

    Args:
        host: the address to listen on (the emulated link's base address).
        port: the port, 0 for any free one (see :attr:`port`).
        congestion_control: the TCP congestion control for its connections (e.g. ``"cubic"``),
            or None for the system's default.
    """

    def __init__(self, host: str, port: int = 0, congestion_control: str | None = None) -> None:
        self.congestion_control = congestion_control
        self.served: list[ServedRequest] = []
        #: each connection's TCP state when its client closed it
        self.final: dict[int, TcpInfo] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, name="payload-server", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        number = 0
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.congestion_control:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION,
                                      self.congestion_control.encode())
            # Like nginx's tcp_nodelay: the last, partial segment of an answer leaves at once.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection, number), daemon=True)
            self._threads.append(thread)
            thread.start()
            number += 1

    def _serve(self, connection: socket.socket, number: int) -> None:
        buffer = b""
        with connection:
            while not self._closing.is_set():
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = connection.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        # the client closed: everything sent has been acknowledged
                        self.final[number] = read_tcp_info(connection)
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                received_s = time.monotonic()
                before = read_tcp_info(connection)
                match = _REQUEST_LINE.match(head.split(b"\r\n", 1)[0])
                if match is None:
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                       b"Connection: close\r\n\r\n")
                    return
                size_bytes = int(match.group(1))
                header = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          f"Content-Length: {size_bytes}\r\n\r\n").encode()
                try:
                    self._send(connection, header, size_bytes)
                except OSError:
                    return
                self.served.append(ServedRequest(number, size_bytes, len(header), received_s,
                                                 time.monotonic(), before, read_tcp_info(connection)))

    @staticmethod
    def _send(connection: socket.socket, header: bytes, size_bytes: int) -> None:
        # The header goes out with the body's first bytes, in one write.
        first = min(size_bytes, len(_CHUNK) - len(header))
        connection.sendall(header + _CHUNK[:first])
        left = size_bytes - first
        view = memoryview(_CHUNK)
        while left > 0:
            step = min(left, len(_CHUNK))
            connection.sendall(view[:step])
            left -= step

    def close(self) -> None:
        """Stop serving, close every connection and join the threads."""
        self._closing.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> PayloadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
