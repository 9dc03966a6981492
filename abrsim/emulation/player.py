"""dash.js in headless Chromium through the emulated link (issue 16).

:func:`run_player` plays a DASH asset (:mod:`abrsim.emulation.asset`) with dash.js in Debian's
``chromium``, started by the harness inside ``mm-delay D mm-link UP DOWN`` (as the unprivileged
emulation user), while the link replays a trace. Two HTTP/1.1 servers run on this host at the
shell's base address: the *page server* (the player page, dash.js, ``/config``, and ``POST
/events`` where the page sends its event log) and the *media server* (the MPD and segments,
on its own port, so the media requests have their own connections, opened when the player
starts). The link is:

* from link time 0 to ``start_offset_s``: ``preroll_rate_bps`` (a cold Chromium needs about 3.5
  s to come up and load the page and dash.js); the player is created at exactly
  ``start_offset_s`` on the link clock (the page waits for it);
* then the trace (as IP capacity: :meth:`~abrsim.model.PlayerModel.link_trace`), twice, so a
  session longer than the trace sees what abrsim sees (abrsim loops traces).

Times of the page's events are realtime milliseconds; mm-link's log header gives the realtime of
the link's zero, so everything is put on the link trace's clock and then made relative to the
player's start (:class:`PlayerRun`). dash.js is fetched once with ``npm pack`` at a pinned
version (:func:`fetch_dashjs`) into the cache, never committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from abrsim.emulation._client import link_zero_realtime_s
from abrsim.emulation.asset import ASSET_CACHE, Asset
from abrsim.emulation.harness import (
    _UPLINK_LINES,
    EMULATION_USER,
    EmulationError,
    _end_group,
    _wait_for,
    delay_milliseconds,
    emulation_unavailable,
    mahimahi_command,
)
from abrsim.emulation.linklog import read_link_log
from abrsim.emulation.linktrace import write_link_trace
from abrsim.model import PlayerModel
from abrsim.trace import Trace

__all__ = [
    "DASHJS_VERSION",
    "PlayerRun",
    "PlayerSegment",
    "dashjs_settings",
    "fetch_dashjs",
    "load_run",
    "player_unavailable",
    "run_player",
]

DASHJS_VERSION = "5.1.1"
"""The dash.js release the real player runs (the ``dashjs`` rule set models v5.1.1)."""
_PAGE = Path(__file__).with_name("player.html")
_BROWSER = Path(__file__).with_name("_browser.py")
_CHUNK = re.compile(r"chunk-(\d+)-(\d+)\.m4s")


def player_unavailable() -> str | None:
    """Why the real player cannot run here, in one line; None when it can."""
    reason = emulation_unavailable()
    if reason:
        return reason
    for tool in ("chromium", "ffmpeg", "npm"):
        if shutil.which(os.environ.get("ABRSIM_CHROMIUM", tool) if tool == "chromium" else tool) is None:
            return f"{tool} is not installed (tools/emulation/emulation.sh up installs it)"
    return None


def fetch_dashjs(version: str = DASHJS_VERSION, cache: str | Path | None = None) -> Path:
    """dash.js's ``dash.all.min.js`` at ``version``, fetched once with ``npm pack`` into the cache.

    Raises:
        RuntimeError: if npm fails or the package has no such script.
    """
    root = (Path(cache) if cache is not None else ASSET_CACHE.parent) / f"dashjs-{version}"
    script = root / "dash.all.min.js"
    if script.exists():
        return script
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed (tools/emulation/emulation.sh up installs it)")
    work = Path(tempfile.mkdtemp(prefix="dashjs-"))
    try:
        done = subprocess.run(["npm", "pack", f"dashjs@{version}", "--silent"], cwd=work,
                              capture_output=True, text=True, check=False)
        packs = list(work.glob("dashjs-*.tgz"))
        if done.returncode != 0 or not packs:
            raise RuntimeError(f"npm pack dashjs@{version} failed: {done.stderr.strip()[-300:]}")
        with tarfile.open(packs[0]) as archive:
            names = ("package/dist/modern/umd/dash.all.min.js", "package/dist/dash.all.min.js")
            member = next((archive.getmember(n) for n in names if n in archive.getnames()), None)
            if member is None:
                raise RuntimeError(f"dashjs@{version} has none of {', '.join(names)}")
            source = archive.extractfile(member)
            assert source is not None
            root.mkdir(parents=True, exist_ok=True)
            (root / "dash.all.min.js.tmp").write_bytes(source.read())
            (root / "dash.all.min.js.tmp").rename(script)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return script


def dashjs_settings(model: PlayerModel, params: Mapping[str, Any], *, fast_switching: bool = False,
                    first_bitrate_bps: float | None = None) -> dict[str, Any]:
    """dash.js's ``updateSettings`` object from abrsim's player model and ``dashjs`` parameters.

    ``model``: ``max_buffer_s`` is dash.js's buffer target (``bufferTimeDefault``, and the targets at
    the top quality too: abrsim has one target), ``wait_step_s`` its schedule re-check
    (``scheduling.defaultTimeout``), ``abandonment`` (with the rule set's ``abandon``) the abandon
    rule. ``params`` (the ``dashjs`` algorithm's, defaults filled): which rules run (with BOLA and
    the throughput rule both on, dash.js switches between them: DYNAMIC) and their parameters.
    ``fast_switching``: dash.js's segment replacement, which abrsim does not model.
    ``first_bitrate_bps``: dash.js's initial bitrate; None: the rule set's ``initial_bitrate_bps``.
    """
    def flag(name: str) -> bool:
        return bool(params[name])

    initial_kbps = (first_bitrate_bps if first_bitrate_bps is not None
                    else float(params["initial_bitrate_bps"])) / 1000
    return {"streaming": {
        "buffer": {"fastSwitchEnabled": bool(fast_switching),
                   "bufferTimeDefault": model.max_buffer_s,
                   "bufferTimeAtTopQuality": model.max_buffer_s,
                   "bufferTimeAtTopQualityLongForm": model.max_buffer_s,
                   "stallThreshold": float(params["stall_threshold_s"])},
        "scheduling": {"defaultTimeout": max(1, round(model.wait_step_s * 1000))},
        "abr": {
            "initialBitrate": {"video": initial_kbps},
            "autoSwitchBitrate": {"video": True},
            "limitBitrateByPortal": False,
            "rules": {
                "throughputRule": {"active": flag("throughput_rule")},
                "bolaRule": {"active": flag("bola_rule")},
                "insufficientBufferRule": {"active": flag("insufficient_buffer_rule"), "parameters": {
                    "throughputSafetyFactor": float(params["ibr_safety_factor"]),
                    "segmentIgnoreCount": int(params["ibr_ignore_segments"])}},
                "switchHistoryRule": {"active": flag("switch_history_rule"), "parameters": {
                    "sampleSize": int(params["switch_history_samples"]),
                    "switchPercentageThreshold": float(params["switch_history_threshold"])}},
                "droppedFramesRule": {"active": False},
                "abandonRequestsRule": {"active": bool(model.abandonment and flag("abandon")), "parameters": {
                    "abandonDurationMultiplier": float(params["abandon_multiplier"]),
                    "minSegmentDownloadTimeThresholdInMs": round(float(params["abandon_min_time_s"]) * 1000),
                    "minThroughputSamplesThreshold": int(params["abandon_min_samples"])}},
                "l2ARule": {"active": False},
                "loLPRule": {"active": False}},
            "throughput": {
                "averageCalculationMode": "throughputCalculationModeEwma",
                "useDeadTimeLatency": True,
                "bandwidthSafetyFactor": float(params["bandwidth_safety_factor"]),
                "ewma": {"throughputFastHalfLifeSeconds": float(params["fast_half_life"]),
                         "throughputSlowHalfLifeSeconds": float(params["slow_half_life"])}},
        }}}


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass
class _Served:
    port: str
    path: str
    received_s: float
    written_s: float
    bytes: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Timing-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        received_s = time.monotonic()
        path = self.path.split("?", 1)[0]
        answer = self.server.get(path)
        if answer is None:
            self._answer(404, b"not found\n", "text/plain")
            return
        body, content_type = answer
        self._answer(200, body, content_type)
        self.server.served.append(_Served(self.server.name, path, received_s, time.monotonic(), len(body)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path in ("/events", "/done"):
            with contextlib.suppress(ValueError):
                self.server.events.extend(json.loads(body or b"[]"))
            self._answer(204 if path == "/events" else 200, b"", "text/plain")
            if path == "/done":
                self.server.done.set()
            return
        self._answer(404, b"not found\n", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, host: str, files: Mapping[str, Path], dynamic: Mapping[str, bytes],
                 events: list[dict[str, Any]], done: threading.Event, served: list[_Served]) -> None:
        super().__init__((host, 0), _Handler)
        self.name = name
        self.files = dict(files)
        self.dynamic = dict(dynamic)
        self.events = events
        self.done = done
        self.served = served
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"player-{name}", daemon=True)
        self.thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser ended by the harness resets its connections: not worth a traceback."""

    def get(self, path: str) -> tuple[bytes, str] | None:
        if path in self.dynamic:
            return self.dynamic[path], "application/json"
        source = self.files.get(path)
        if source is None:
            return None
        kind = {".mpd": "application/dash+xml", ".m4s": "video/iso.segment", ".mp4": "video/mp4",
                ".js": "application/javascript", ".html": "text/html; charset=utf-8"}
        return source.read_bytes(), kind.get(source.suffix, "application/octet-stream")

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Runs


class PlayerSegment(dict):  # type: ignore[type-arg]
    """One media download of a real run (a dict: segment, rung, request_s, first_byte_s, done_s,
    bytes, abandoned; times relative to the player's start)."""


@dataclass(frozen=True, eq=False)
class PlayerRun:
    """What one real run measured; times in seconds from the player's start (link time - offset).

    Args:
        downloads: media downloads in order of request, completed and abandoned.
        startup_s: the first ``playing`` event.
        stalls: (start, end) of each stall after startup (``waiting`` to ``playing``).
        ended_s: the ``ended`` event (NaN when the run did not end).
        buffer: (time, level) samples every ~250 ms (dash.js's buffer level, seconds).
        first_media_request_s: when the first media segment was requested (the MPD and init
            segment come before it).
        late_s: how late the player started (0 when the page waited for the offset).
        dashjs_version: the version the page reported.
        drops: packets the downlink's queue dropped in the whole run (-1: unknown).
        media: (time, the video element's ``currentTime``) samples every ~250 ms.
        events: the page's raw event log, on the same clock (``t_s``).
    """

    downloads: list[dict[str, Any]]
    startup_s: float
    stalls: list[tuple[float, float]]
    ended_s: float
    buffer: np.ndarray
    first_media_request_s: float
    late_s: float
    dashjs_version: str
    drops: int = -1
    media: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stall_s(self) -> float:
        return float(sum(end - start for start, end in self.stalls))

    def played(self, segment_duration_s: float) -> list[bool]:
        """Per download, whether it is the copy of its segment that played.

        A segment's first completed download plays, unless a later one (fast switching's
        replacement) completed before playback reached the segment's start (the video element's
        ``currentTime``, sampled every 250 ms); abandoned downloads never play.
        """
        chosen: dict[int, int] = {}
        times = self.media[:, 0] if self.media.size else np.zeros(1)
        positions = self.media[:, 1] if self.media.size else np.zeros(1)
        for k, download in enumerate(self.downloads):
            if download["abandoned"]:
                continue
            segment = download["segment"]
            position = float(np.interp(download["done_s"], times, positions))
            if segment not in chosen or position < segment * segment_duration_s:
                chosen[segment] = k
        keep = set(chosen.values())
        return [k in keep for k in range(len(self.downloads))]

    def played_rungs(self, segment_count: int, segment_duration_s: float) -> np.ndarray:
        """The rung each segment was played at (see :meth:`played`; -1 if none arrived)."""
        rungs = np.full(segment_count, -1, dtype=np.int64)
        for download, played in zip(self.downloads, self.played(segment_duration_s), strict=True):
            if played and 0 <= download["segment"] < segment_count:
                rungs[download["segment"]] = download["rung"]
        return rungs


def _parse(events: list[dict[str, Any]], zero_ms: float, offset_s: float, drops: int = -1) -> PlayerRun:
    def t(ms: float | None) -> float:
        return float("nan") if ms is None else (float(ms) - zero_ms) / 1000 - offset_s

    for event in events:
        event["t_s"] = t(event.get("t_ms"))
    events.sort(key=lambda e: e["t_s"])
    start = next((e["t_s"] for e in events if e["kind"] == "player_start"), float("nan"))
    late = next((e["late_ms"] / 1000 for e in events if e["kind"] == "late_start"), 0.0)
    version = next((str(e.get("dashjs_version")) for e in events if e["kind"] == "config_received"), "")
    downloads = []
    for event in events:
        if event["kind"] not in ("fragment_completed", "fragment_abandoned"):
            continue
        match = _CHUNK.search(event.get("url") or "")
        if match is None:
            continue
        downloads.append({"segment": int(match[2]) - 1, "rung": int(match[1]),
                          "request_s": t(event.get("start_ms")) - start,
                          "first_byte_s": t(event.get("first_byte_ms")) - start,
                          "done_s": (t(event.get("end_ms")) if event.get("end_ms") else event["t_s"]) - start,
                          "bytes": int(event.get("bytes_loaded") or 0),
                          "abandoned": event["kind"] == "fragment_abandoned"})
    downloads.sort(key=lambda d: d["request_s"])
    playing = [e["t_s"] - start for e in events if e["kind"] == "video_playing"]
    waiting = [e["t_s"] - start for e in events if e["kind"] == "video_waiting"]
    ended = next((e["t_s"] - start for e in events if e["kind"] == "video_ended"), float("nan"))
    startup = playing[0] if playing else float("nan")
    stalls = []
    for begin in waiting:
        if begin <= startup or (np.isfinite(ended) and begin >= ended - 0.05):
            continue
        resume = next((p for p in playing if p > begin), ended if np.isfinite(ended) else begin)
        if stalls and begin < stalls[-1][1]:
            continue
        stalls.append((begin, resume))
    buffer = np.array([(e["t_s"] - start, e["level_s"]) for e in events
                       if e["kind"] == "buffer_level" and e.get("level_s") is not None], dtype=float)
    media = np.array([(e["t_s"] - start, e["time_s"]) for e in events
                      if e["kind"] == "buffer_level" and e.get("time_s") is not None], dtype=float)
    first = min((d["request_s"] for d in downloads), default=float("nan"))
    return PlayerRun(downloads, startup, stalls, ended, buffer.reshape(-1, 2), first, late, version, drops,
                     media.reshape(-1, 2), events)


def load_run(folder: str | Path) -> PlayerRun:
    """A real run kept by :func:`run_player` (``keep_dir``): its events, parsed again."""
    folder = Path(folder)
    events = json.loads((folder / "events.json").read_text())
    link = folder / "link.json"
    drops = int(json.loads(link.read_text())["drops"]) if link.exists() else -1
    if (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())
        return _parse(events, float(config["link_zero_ms"]), float(config["start_offset_s"]), drops)
    # without the link's zero, times are relative to the player's start all the same
    start_ms = next((float(e["t_ms"]) for e in events if e["kind"] == "player_start"), 0.0)
    return _parse(events, start_ms, 0.0, drops)


def _link_trace(trace: Trace, offset_s: float, preroll_rate_bps: float) -> Trace:
    """The pre-roll at a constant rate, then two passes of the trace."""
    starts = np.concatenate(([0.0], offset_s + trace.start_s, offset_s + trace.duration_s + trace.start_s))
    rates = np.concatenate(([preroll_rate_bps], trace.bandwidth_bps, trace.bandwidth_bps))
    return Trace(starts, rates, offset_s + 2 * trace.duration_s, name=trace.name, measures="capacity")


def run_player(
    trace: Trace,
    asset: Asset,
    settings: Mapping[str, Any],
    *,
    model: PlayerModel,
    one_way_delay_s: float = 0.02,
    queue_packets: int = 100,
    start_offset_s: float = 6.0,
    preroll_rate_bps: float = 24e6,
    dashjs_script: Path | None = None,
    timeout_s: float | None = None,
    keep_dir: str | Path | None = None,
) -> PlayerRun:
    """Play ``asset`` with dash.js in headless Chromium through a link replaying ``trace``.

    Args:
        trace: the downlink from the player's start, read as ``model`` reads it (with
            ``network = "tcp"`` a goodput trace becomes IP capacity, what mm-link replays).
        asset: the encoded asset.
        settings: dash.js's settings (:func:`dashjs_settings`).
        model: the player model the trace is read with.
        one_way_delay_s: mm-delay's delay each way, seconds (whole milliseconds).
        queue_packets: the downlink's drop-tail queue, packets.
        start_offset_s: the player starts at this link time, seconds (>= 5: a cold Chromium takes
            about 3.5 s to load the page).
        preroll_rate_bps: the link's rate before the player starts (the page and dash.js load).
        dashjs_script: dash.js's script; None fetches the pinned version (:func:`fetch_dashjs`).
        timeout_s: end the run after this long; None: the offset plus 4 x the media and 60 s.
        keep_dir: copy the run's files (link trace, logs, events) into this folder.

    Raises:
        EmulationError: if the machine is not set up, or the run fails or times out.
    """
    reason = player_unavailable()
    if reason:
        raise EmulationError(reason)
    delay_ms = delay_milliseconds(one_way_delay_s)
    if not start_offset_s >= 1.0:
        raise ValueError(f'"start_offset_s" must be >= 1 s, got {start_offset_s!r}')
    script = dashjs_script or fetch_dashjs()
    media_s = asset.spec.duration_s
    if timeout_s is None:
        timeout_s = start_offset_s + 4 * media_s + 60.0
    link = _link_trace(model.link_trace(trace) or trace, start_offset_s, preroll_rate_bps)
    user = pwd.getpwnam(EMULATION_USER)
    work = Path(tempfile.mkdtemp(prefix="abrsim-player-"))
    process = None
    servers: list[_Server] = []
    events: list[dict[str, Any]] = []
    done = threading.Event()
    served: list[_Served] = []
    try:
        os.chown(work, user.pw_uid, user.pw_gid)
        work.chmod(0o755)
        downlink = write_link_trace(link, work / "downlink.trace")
        (work / "uplink.trace").write_text(_UPLINK_LINES)
        shutil.copyfile(_BROWSER, work / "browser.py")
        down_log, up_log = work / "downlink.log", work / "uplink.log"
        command = mahimahi_command(delay_ms, work / "uplink.trace", downlink.path, queue_packets, down_log,
                                   up_log, ["python3", str(work / "browser.py"), str(work)])
        with open(work / "shell.out", "wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, cwd=work)
        _wait_for(work / "base", process, 20.0)
        base = (work / "base").read_text().strip()
        zero_ms = link_zero_realtime_s(str(down_log)) * 1000
        media_files = {"/" + p.name: p for p in asset.folder.iterdir() if p.suffix in (".mpd", ".m4s")}
        media = _Server("media", base, media_files, {}, events, done, served)
        servers.append(media)
        config = {"link_zero_ms": zero_ms, "start_offset_s": start_offset_s,
                  "mpd_url": f"http://{base}:{media.server_address[1]}/manifest.mpd",
                  "dashjs_settings": settings}
        page = _Server("page", base, {"/player.html": _PAGE, "/dash.all.min.js": script},
                       {"/config": json.dumps(config).encode()}, events, done, served)
        servers.append(page)
        (work / "url.tmp").write_text(f"http://{base}:{page.server_address[1]}/player.html\n")
        (work / "url.tmp").rename(work / "url")
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.2):
            if process.poll() is not None:
                output_text = (work / "shell.out").read_text(errors="replace").strip()
                raise EmulationError(f"the browser's shell exited (status {process.returncode}) "
                                     f"before playback ended: {output_text[-1500:]}")
            if time.monotonic() > deadline:
                if keep_dir is not None:  # for a look at what happened; --reuse does not take it
                    Path(keep_dir).mkdir(parents=True, exist_ok=True)
                    (Path(keep_dir) / "failed-events.json").write_text(json.dumps(events))
                raise EmulationError(f"the real player took over {timeout_s:g} s; ended it "
                                     f"({len(events)} events received)")
        if keep_dir is not None:
            keep = Path(keep_dir)
            keep.mkdir(parents=True, exist_ok=True)
            (keep / "events.json").write_text(json.dumps(events))
            (keep / "config.json").write_text(json.dumps(config))
            for name in ("downlink.trace", "shell.out"):
                if (work / name).exists():
                    shutil.copyfile(work / name, keep / name)
        _end_group(process)  # mm-link's log is complete once the shell is gone
        drops = read_link_log(down_log).drops if down_log.exists() else -1
        if keep_dir is not None:
            (Path(keep_dir) / "link.json").write_text(json.dumps({"drops": drops}))
        run = _parse(events, zero_ms, start_offset_s, drops)
        if run.late_s > 0:
            raise EmulationError(f"the player started {run.late_s:.2f} s after the offset "
                                 f"({start_offset_s:g} s): raise start_offset_s")
        return run
    finally:
        if process is not None:
            _end_group(process)
        for server in servers:
            server.close()
        shutil.rmtree(work, ignore_errors=True)
