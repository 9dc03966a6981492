"""The scripted HTTP/1.1 client that runs inside the Mahimahi shell (standard library only).

Run as ``python3 _client.py PLAN.json WORK_DIR`` inside ``mm-delay ... mm-link ... --``. It
writes ``$MAHIMAHI_BASE`` to ``WORK_DIR/base`` and waits for the server's port in
``WORK_DIR/port``, then makes the plan's requests on one persistent connection and writes
``WORK_DIR/client.json``. Times are ``CLOCK_MONOTONIC`` seconds (the host's and every shell's
clock); the file also holds pairs of (realtime, monotonic) readings so the caller can place
them on the link trace's clock, whose zero mm-link logs in realtime milliseconds.

The plan: ``{"start_link_s": 0.5, "downlink_log": PATH, "requests": [{"size_bytes": N,
"gap_s": G}, ...]}``. The first request leaves at link time ``start_link_s`` (read from the
downlink log's header) plus its gap; every later one ``gap_s`` after the previous last byte.
"""

import json
import os
import socket
import sys
import time


def clock_pair():
    """The closest (realtime, monotonic) pair of five readings, seconds."""
    best = None
    for _ in range(5):
        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        real = time.clock_gettime(time.CLOCK_REALTIME)
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        if best is None or after - before < best[2]:
            best = (real, (before + after) / 2, after - before)
    return best[0], best[1]


def link_zero_realtime_s(log_path, timeout_s=10.0):
    """The realtime of the link trace's zero: mm-link's init plus base timestamp, from the log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        init_ms = base_ms = None
        try:
            with open(log_path) as file:
                for line in file:
                    if not line.startswith("#"):
                        break
                    if line.startswith("# init timestamp:"):
                        init_ms = int(line.split(":")[1])
                    elif line.startswith("# base timestamp:"):
                        base_ms = int(line.split(":")[1])
        except OSError:
            pass
        if init_ms is not None and base_ms is not None:
            return (init_ms + base_ms) / 1000.0
        time.sleep(0.01)
    raise RuntimeError(f"no init/base timestamp in {log_path}")


def wait_for_file(path, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(path) as file:
                text = file.read()
            if text.endswith("\n"):
                return text.strip()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {path}")


def read_response(sock, buffer):
    """Read one response; return (first_byte_s, done_s, header_bytes, body_bytes, leftover)."""
    first_byte_s = None
    if buffer:
        first_byte_s = time.monotonic()
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed before the response header")
        if first_byte_s is None:
            first_byte_s = time.monotonic()
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    header_bytes = len(head) + 4
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("response without Content-Length")
    received = len(rest)
    while received < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError(f"connection closed after {received} of {length} body bytes")
        received += len(chunk)
    done_s = time.monotonic()
    leftover = b""
    if received > length:  # the server never pipelines, so nothing should be left over
        raise RuntimeError(f"{received - length} bytes beyond Content-Length")
    return first_byte_s, done_s, header_bytes, length, leftover


def main(plan_path, work_dir):
    with open(plan_path) as file:
        plan = json.load(file)
    with open(os.path.join(work_dir, "base.tmp"), "w") as file:
        file.write(os.environ["MAHIMAHI_BASE"] + "\n")
    os.rename(os.path.join(work_dir, "base.tmp"), os.path.join(work_dir, "base"))
    port = int(wait_for_file(os.path.join(work_dir, "port")))
    zero_real_s = link_zero_realtime_s(plan["downlink_log"])
    pairs = [clock_pair()]
    # link time = monotonic - (zero_real_s - (real - monotonic))
    offset_s = zero_real_s - (pairs[0][0] - pairs[0][1])
    connect_s = time.monotonic()
    sock = socket.create_connection((os.environ["MAHIMAHI_BASE"], port))
    connected_s = time.monotonic()
    records = []
    buffer = b""
    previous_done_s = None
    for index, request in enumerate(plan["requests"]):
        if previous_done_s is None:
            leave_s = offset_s + float(plan.get("start_link_s", 0.0)) + float(request["gap_s"])
        else:
            leave_s = previous_done_s + float(request["gap_s"])
        while True:
            left_s = leave_s - time.monotonic()
            if left_s <= 0:
                break
            time.sleep(left_s if left_s > 0.002 else 0)
        size_bytes = int(request["size_bytes"])
        message = (f"GET /bytes/{size_bytes}?i={index} HTTP/1.1\r\nHost: server\r\n"
                   "Connection: keep-alive\r\n\r\n").encode()
        request_s = time.monotonic()
        sock.sendall(message)
        first_byte_s, done_s, header_bytes, body_bytes, buffer = read_response(sock, buffer)
        records.append({"index": index, "size_bytes": size_bytes, "gap_s": float(request["gap_s"]),
                        "request_s": request_s, "first_byte_s": first_byte_s, "done_s": done_s,
                        "request_bytes": len(message), "header_bytes": header_bytes,
                        "body_bytes": body_bytes})
        previous_done_s = done_s
    sock.close()
    pairs.append(clock_pair())
    result = {"link_zero_realtime_s": zero_real_s, "clock_pairs": pairs, "connect_s": connect_s,
              "connected_s": connected_s, "records": records, "base": os.environ["MAHIMAHI_BASE"]}
    with open(os.path.join(work_dir, "client.json.tmp"), "w") as file:
        json.dump(result, file)
    os.rename(os.path.join(work_dir, "client.json.tmp"), os.path.join(work_dir, "client.json"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
