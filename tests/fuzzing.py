"""Seeded fuzz-case generators and a bounded driver for abrsim's input readers (issue 14).

One generator per reader (traces in every format, ladders, manifests, sweep specs, scenarios)
writes one case into a fresh folder: a valid input built from the repository's own files, then
zero or more mutations (truncation, random bytes, extreme numbers, deep nesting, missing and extra
keys, wrong types, unicode, empty files, references outside the folder, enormous counts). Case
``index`` of reader ``name`` under ``seed`` is always the same files (``case_rng``).

:func:`run_case` feeds one case to the reader in-process and classifies what happened:
``accepted`` (the reader returned), ``refused`` (an :class:`abrsim.errors.AbrsimError`, which the
CLI turns into one line and exit 2) or a failure: ``exception`` (anything else escaped), ``hang``
(over the time budget), ``memory`` (a ``MemoryError`` under the worker's address-space limit),
``modified`` (an input file changed), ``leak`` (a manifest opened or echoed a file outside its
folder), ``warning`` (a Python or numpy warning, which the CLI would print), ``cli`` (the CLI exited
other than 0 or 2, or printed a traceback). :func:`fuzz` runs cases in worker processes with an
address-space limit and a hard per-case watchdog, so that even a hang in C code or a crash shows up
as a failure with its case index. Used by ``benchmarks/fuzz.py`` (10,000 cases per reader) and
``tests/test_fuzz.py`` (a small sample).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # third-party data, read only (absent in CI)
SECRET = "FUZZ-SECRET-do-not-echo"  # content of the file outside each case's folder

# ------------------------------------------------------------------------------- building blocks

EXTREME_NUMBERS = (
    "0", "-0", "-1", "1", "0.5", "-0.0", "1e-320", "1e-300", "1e300", "-1e300", "1e308", "1.8e308", "1e999",
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e15", "1e9", "1e18", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "18446744073709551616", "9" * 400, "0x10", "1_000",
    "", " ", "1,5", "\u0661\u0662", "1e", ".", "-", "+1", "0" * 50 + "1", "1" + "0" * 30,
)
UNICODE_BITS = ("\u00e9", "\u202e", "\ufeff", "\x00", "\u2028", "\U0001f600", "\x7f", "\t", "\r", "\x1b[31m")
TOML_NUMBERS: tuple[Any, ...] = (
    0, -1, 1, 2, 3, 0.5, -0.5, 1e-300, 1e300, -1e300, float("nan"), float("inf"), float("-inf"),
    10**9, 10**12, 10**18, 2**63 - 1, -(2**63), 1e6, 1e7, 0.0, -0.0, 1e-9,
)
NAMES = ("bola", "throughput", "robustmpc", "bba", "oracle", "hls", "mobile", "premium", "abrsim", "sabre",
         "pensieve", "4g_low", "3g_high", "markov", "constant", "poisson", "uniform", "exponential",
         "lognormal", "edge", "origin", "down", "latency", "cbr", "vbr", "vmaf", "lru", "h264")


def case_rng(seed: int, reader: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``reader``: independent of every other case."""
    tag = int.from_bytes(hashlib.sha256(reader.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, tag, index])


def pick(rng: np.random.Generator, items: Any) -> Any:
    return items[int(rng.integers(len(items)))]


def toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """One TOML value, with tables inline (so a whole document is ``key = value`` lines)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_key(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_dumps(doc: dict[str, Any]) -> str:
    return "".join(f"{toml_key(key)} = {toml_value(value)}\n" for key, value in doc.items())


def deep_text(kind: str, depth: int) -> str:
    """Text nested ``depth`` levels deep, past Python's recursion limit when depth is large."""
    if kind == "json":
        return "[" * depth + "]" * depth
    if kind == "toml":
        return "deep = " + "[" * depth + "]" * depth + "\n"
    return "<a>" * depth + "</a>" * depth


def mutate_text(rng: np.random.Generator, data: bytes, nest: str, refs: tuple[str, ...]) -> bytes:
    """One byte- or line-level mutation of a file's contents."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    op = int(rng.integers(13))
    if op == 0:  # truncation
        return data[: int(rng.integers(len(data) + 1))]
    if op == 1:  # random bytes at a random place
        cut = int(rng.integers(len(data) + 1))
        return data[:cut] + rng.bytes(int(rng.integers(1, 16))) + data[cut:]
    if op == 2:  # flip bytes
        raw = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            if raw:
                raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
        return bytes(raw)
    if op == 3:  # replace a number with an extreme one
        import re

        numbers = list(re.finditer(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text))
        if numbers:
            match = pick(rng, numbers)
            text = text[: match.start()] + pick(rng, EXTREME_NUMBERS) + text[match.end():]
        return text.encode("utf-8", errors="surrogatepass")
    if op == 4 and lines:  # delete lines
        start = int(rng.integers(len(lines)))
        del lines[start: start + int(rng.integers(1, 4))]
    elif op == 5 and lines:  # duplicate a line, sometimes enormously often (up to a file of ~2 MB)
        line = int(rng.integers(len(lines)))
        copies = int(pick(rng, (1, 2, 10, 1000, 20000)))
        lines[line:line] = [lines[line]] * min(copies, 2_000_000 // (len(lines[line]) + 1))
    elif op == 6 and len(lines) > 1:  # swap two lines
        a, b = (int(k) for k in rng.integers(len(lines), size=2))
        lines[a], lines[b] = lines[b], lines[a]
    elif op == 7:  # unicode and control characters
        cut = int(rng.integers(len(text) + 1))
        text = text[:cut] + pick(rng, UNICODE_BITS) + text[cut:]
        return text.encode("utf-8", errors="surrogatepass")
    elif op == 8:
        return b"" if rng.random() < 0.5 else pick(rng, (b"\n", b" ", b"\xef\xbb\xbf", b"\x00" * 8))
    elif op == 9:  # deep nesting
        depth = int(pick(rng, (50, 999, 5000, 100000)))
        return (text if rng.random() < 0.5 else "").encode() + deep_text(nest, depth).encode()
    elif op == 10:  # CRLF or CR line ends
        return text.replace("\n", pick(rng, ("\r\n", "\r"))).encode("utf-8", errors="surrogatepass")
    elif op == 11 and refs and lines:  # a reference to a file outside the folder
        lines.insert(int(rng.integers(len(lines) + 1)), pick(rng, refs))
    else:  # a random token somewhere
        cut = int(rng.integers(len(text) + 1))
        token = pick(rng, EXTREME_NUMBERS + NAMES + ("=", ",", "#", "[", "]", "{", "}", "\"", "<", ">", "&"))
        text = text[:cut] + token + text[cut:]
        return text.encode("utf-8", errors="surrogatepass")
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


def tree_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from tree_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from tree_paths(value, (*prefix, index))


def random_value(rng: np.random.Generator, refs: tuple[str, ...]) -> Any:
    """A value of a random kind: extreme numbers, strings, wrong types, enormous arrays, paths."""
    kind = int(rng.integers(9))
    if kind <= 2:
        return pick(rng, TOML_NUMBERS)
    if kind == 3:
        return pick(rng, ("", "x" * 10000, "\u00e9\u202e", "nan", "1e9", "-1", *NAMES, *refs))
    if kind == 4:
        return bool(rng.random() < 0.5)
    if kind == 5:
        return [] if rng.random() < 0.5 else [pick(rng, TOML_NUMBERS)] * int(pick(rng, (1, 3, 1000, 100000)))
    if kind == 6:
        return {} if rng.random() < 0.5 else {pick(rng, NAMES): pick(rng, TOML_NUMBERS)}
    if kind == 7:
        return pick(rng, refs) if refs else "../x"
    return int(rng.integers(-5, 10**6)) if rng.random() < 0.5 else float(rng.normal(0, 1e3))


def mutate_tree(rng: np.random.Generator, doc: dict[str, Any], refs: tuple[str, ...]) -> None:
    """Change one place of a parsed document: drop, add, retype or replace a value."""
    paths = list(tree_paths(doc))
    path = pick(rng, paths)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    op = int(rng.integers(4))
    if not path:  # the root: add a stray key
        doc[pick(rng, ("extra", "seed", "name", *NAMES))] = random_value(rng, refs)
    elif op == 0:  # missing key
        del parent[path[-1]]
    elif op == 1 and isinstance(parent[path[-1]], dict):  # an extra key
        parent[path[-1]][pick(rng, ("extra", "count", "path", "name", *NAMES))] = random_value(rng, refs)
    elif op == 2 and isinstance(parent[path[-1]], list) and parent[path[-1]]:  # enormous counts
        factor = int(pick(rng, (2, 50, 5000)))  # up to a few MB: bigger files are refused unread
        parent[path[-1]] = parent[path[-1]] * (factor if len(parent[path[-1]]) * factor <= 200_000 else 1)
    else:
        parent[path[-1]] = random_value(rng, refs)


def refs_for(folder: Path, suffix: str) -> tuple[str, ...]:
    """Names of a file outside ``folder``: relative, absolute, through a symlink, missing, a folder."""
    return (f"../secret{suffix}", str(folder.parent / f"secret{suffix}"), f"link{suffix}",
            "/etc/hostname", "/dev/zero", "/proc/self/environ", "missing" + suffix, ".", "..", "",
            "sub/../../secret" + suffix)


def prepare(folder: Path) -> None:
    """A clean case folder with secrets beside it and a symlink to one inside it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for suffix in ("", ".csv", ".json", ".toml", ".m3u8", ".mpd", ".py"):
        secret = folder.parent / f"secret{suffix}"
        if not secret.exists():
            secret.write_text(f"#EXTM3U\n{SECRET}\n0,{SECRET}\n")
        link = folder / f"link{suffix}"
        link.symlink_to(secret)


# --------------------------------------------------------------------------------- seed inputs

def _read(path: Path, limit_lines: int | None = None) -> str:
    text = path.read_text(encoding="utf-8")
    return text if limit_lines is None else "\n".join(text.split("\n")[:limit_lines]) + "\n"


def _repo_traces() -> list[str]:
    return [_read(path, 400) for path in sorted((REPO / "traces").glob("*.csv"))]


def _shared_texts(pattern: str, limit_lines: int = 200, count: int = 3) -> list[str]:
    files = sorted(SHARED.glob(pattern))[:count] if SHARED.is_dir() else []
    return [_read(path, limit_lines) for path in files]


def _trace_samples(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(pick(rng, (1, 2, 3, 10, 50)))
    durations = rng.exponential(2.0, n) + 0.001
    return durations, rng.lognormal(0.5, 1.0, n)


def trace_text(rng: np.random.Generator, fmt: str) -> str:
    """A valid trace in ``fmt``: a repository trace (abrsim) or random samples (all formats)."""
    durations, mbps = _trace_samples(rng)
    if fmt == "abrsim":
        seeds = _repo_traces()
        if rng.random() < 0.5:
            return pick(rng, seeds)
        starts = np.concatenate(([0.0], np.cumsum(durations)[:-1]))
        latency = rng.random() < 0.3
        header = "time_s,bandwidth_mbps" + (",latency_ms" if latency else "")
        rows = [f"{s:.3f},{b:.4f}" + (f",{rng.integers(0, 200)}" if latency else "")
                for s, b in zip(starts, mbps)]
        duration = f"# duration_s={np.sum(durations) + 1:.3f}\n" if rng.random() < 0.8 else ""
        return duration + header + "\n" + "\n".join(rows) + "\n"
    if fmt == "pensieve":
        times = np.concatenate(([0.0], np.cumsum(durations)))
        return "".join(f"{t:.3f}\t{b:.4f}\n" for t, b in zip(times, np.concatenate(([0.0], mbps))))
    if fmt == "sabre":
        entries = [{"duration_ms": round(d * 1000), "bandwidth_kbps": round(b * 1000, 1),
                    "latency_ms": int(rng.integers(0, 200))} for d, b in zip(durations, mbps)]
        return json.dumps(entries, indent=1)
    times = np.sort(rng.integers(0, int(pick(rng, (10, 1000, 60000))), int(pick(rng, (1, 5, 200)))))
    return "".join(f"{t}\n" for t in times)


TOML_SEEDS = {
    "ladder": [REPO / "ladders" / f"{name}.toml" for name in ("hls", "mobile", "premium")],
    "sweep": [REPO / "experiments" / f"{name}.toml" for name in ("smoke", "all_algorithms_shared_traces")],
    "scenario": [REPO / "experiments" / f"{name}.toml"
                 for name in ("des_shared_bottleneck", "des_flash_crowd", "cdn_edge_outage",
                              "cdn_cache_size")],
}

MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1M0.5S"
     minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0">
    <AdaptationSet contentType="video" mimeType="video/mp4" codecs="avc1.64001f" frameRate="30000/1001">
      <SegmentTemplate timescale="90000" duration="360000" media="$RepresentationID$/$Number$.m4s"/>
      <Representation id="360p" bandwidth="800000" width="640" height="360"/>
      <Representation id="1080p" bandwidth="5000000" width="1920" height="1080" frameRate="25"/>
      <Representation id="720p" bandwidth="2500000" width="1280" height="720"/>
    </AdaptationSet>
    <AdaptationSet contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2">
      <Representation id="audio" bandwidth="128000"/>
    </AdaptationSet>
  </Period>
</MPD>
"""
MPD_TIMELINE = """<?xml version="1.0"?>
<MPD type="static" mediaPresentationDuration="PT20S"><Period><AdaptationSet contentType="video">
<SegmentTemplate timescale="1000" media="$Number$.m4s"><SegmentTimeline><S t="0" d="2000" r="4"/>
<S d="2500" r="3"/></SegmentTimeline></SegmentTemplate>
<Representation id="a" bandwidth="400000" width="640" height="360"/>
<Representation id="b" bandwidth="1500000" width="1280" height="720"/></AdaptationSet></Period></MPD>
"""
MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,\
CODECS="avc1.4d401e,mp4a.40.2",FRAME-RATE=29.970
v360/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3300000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2"
v720/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2"
audio/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=640x360,URI="v360/iframes.m3u8"
"""


def media_playlist(rng: np.random.Generator) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:4", "#EXT-X-TARGETDURATION:6", "#EXT-X-PLAYLIST-TYPE:VOD"]
    offset = 0
    byteranges = rng.random() < 0.5
    for k in range(int(pick(rng, (1, 3, 8)))):
        lines.append(f"#EXTINF:{rng.uniform(1, 6):.3f},")
        if byteranges:
            size = int(rng.integers(1000, 10**6))
            lines.append(f"#EXT-X-BYTERANGE:{size}@{offset}")
            offset += size
        lines.append("media.mp4" if byteranges else f"segment{k}.ts")
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


# ------------------------------------------------------------------------------------ readers

@dataclass(frozen=True)
class Case:
    """One generated input: the file the reader gets, its keyword arguments, and the CLI command."""

    path: Path
    kwargs: dict[str, Any] = field(default_factory=dict)
    cli: tuple[str, ...] = ()


def _mutations(rng: np.random.Generator) -> int:
    """How many mutations a case gets: a fifth stay valid."""
    return int(pick(rng, (0, 1, 1, 1, 2, 3)))


def _write_mutated(rng: np.random.Generator, path: Path, text: str, nest: str, refs: tuple[str, ...]) -> None:
    data = text.encode("utf-8", errors="surrogatepass")
    for _ in range(_mutations(rng)):
        data = mutate_text(rng, data, nest, refs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def generate_trace(rng: np.random.Generator, folder: Path) -> Case:
    from abrsim.trace import TRACE_FORMATS

    fmt = pick(rng, TRACE_FORMATS)
    if fmt == "abrsim" and rng.random() < 0.1 and SHARED.is_dir():
        text = pick(rng, _shared_texts("traces/*/*.csv"))  # a real third-party CSV, not abrsim's columns
    else:
        text = trace_text(rng, fmt)
    suffix = {"abrsim": ".csv", "sabre": ".json"}.get(fmt, "")
    if rng.random() < 0.1:
        suffix = pick(rng, ("", ".csv", ".json", ".txt", ".log"))
    path = folder / f"trace{suffix}"
    _write_mutated(rng, path, text, "json", refs_for(folder, suffix))
    if suffix == ".csv" and rng.random() < 0.15:  # an index.csv giving the duration
        index = f"file,duration_s\n{path.name},{pick(rng, ('600', '1e9', 'nan', '-1', '', '1e300', '5'))}\n"
        _write_mutated(rng, folder / "index.csv", index, "json", ())
    kwargs = {"format": fmt} if rng.random() < 0.3 else {}
    return Case(path, kwargs, ("traces", "stats", str(path)))


def _sabre_movie(rng: np.random.Generator) -> str:
    bitrates = sorted(int(b) for b in rng.integers(100, 8000, int(pick(rng, (1, 3, 6)))))
    count = int(pick(rng, (1, 5, 40)))
    sizes = [[int(b * 4000 * rng.uniform(0.5, 1.5)) for b in bitrates] for _ in range(count)]
    return json.dumps({"segment_duration_ms": 4000, "bitrates_kbps": bitrates, "segment_sizes_bits": sizes})


def _size_csv(rng: np.random.Generator) -> str:
    if rng.random() < 0.3 and SHARED.is_dir():
        return pick(rng, _shared_texts("videos/*/chunk_sizes.csv", 60))
    kbps = sorted(int(b) for b in rng.integers(100, 8000, int(pick(rng, (1, 3, 6)))))
    rows = [",".join([str(k)] + [str(int(b * 500 * rng.uniform(0.5, 1.5))) for b in kbps])
            for k in range(int(pick(rng, (1, 5, 40))))]
    return "chunk_index," + ",".join(f"kbps_{b}" for b in kbps) + "\n" + "\n".join(rows) + "\n"


def generate_ladder(rng: np.random.Generator, folder: Path) -> Case:
    kind = pick(rng, ("toml", "toml", "json", "csv"))
    if kind == "json":
        path = folder / "movie.json"
        _write_mutated(rng, path, _sabre_movie(rng), "json", refs_for(folder, ".json"))
        return Case(path, {}, ("ladders", "show", str(path)))
    if kind == "csv":
        path = folder / "sizes.csv"
        _write_mutated(rng, path, _size_csv(rng), "json", refs_for(folder, ".csv"))
        duration = float(pick(rng, (4.0, 2.0, 0.5, 1e-9, 1e9, 0.0, -1.0, float("nan"), float("inf"))))
        return Case(path, {"segment_duration_s": duration},
                    ("ladders", "show", str(path), "--segment-duration-s", repr(duration)))
    doc = tomllib.loads(pick(rng, TOML_SEEDS["ladder"]).read_text())
    refs = refs_for(folder, ".csv")
    if rng.random() < 0.25:  # sizes (or quality) from a CSV beside the TOML
        for key in ("rungs", "size_model", "size_seed", "size_variation", "segment_count"):
            doc.pop(key, None)
        doc["sizes"] = "table.csv"
        _write_mutated(rng, folder / "table.csv", _size_csv(rng), "json", refs)
    elif rng.random() < 0.2:
        doc["size_model"] = "vbr"
        doc["size_seed"] = int(rng.integers(0, 100))
    for _ in range(_mutations(rng)):
        mutate_tree(rng, doc, refs)
    path = folder / "ladder.toml"
    _write_mutated(rng, path, toml_dumps(doc), "toml", refs) if rng.random() < 0.3 else \
        path.write_text(toml_dumps(doc), encoding="utf-8", errors="surrogatepass")
    return Case(path, {}, ("ladders", "show", str(path)))


def generate_manifest(rng: np.random.Generator, folder: Path) -> Case:
    refs = refs_for(folder, ".m3u8")
    if rng.random() < 0.5:
        path = folder / pick(rng, ("title.mpd", "title.mpd", "title.xml", "title"))
        _write_mutated(rng, path, pick(rng, (MPD, MPD_TIMELINE)), "xml", refs_for(folder, ".mpd"))
    else:
        path = folder / pick(rng, ("master.m3u8", "master.m3u8", "master.m3u", "master"))
        master = MASTER
        if rng.random() < 0.3:  # variants that point outside the folder
            master = master.replace("v720/index.m3u8", pick(rng, refs))
        _write_mutated(rng, path, master, "xml", refs)
        for variant in ("v360", "v720", "audio"):
            if rng.random() < 0.8:
                _write_mutated(rng, folder / variant / "index.m3u8", media_playlist(rng), "xml", refs)
    kwargs: dict[str, Any] = {}
    if rng.random() < 0.3:
        kwargs["size_model"] = pick(rng, ("cbr", "vbr"))
    if rng.random() < 0.3:
        kwargs["segment_duration_s"] = float(pick(rng, (4.0, 1e-9, 1e9, -1.0, float("nan"))))
    if rng.random() < 0.3:
        kwargs["duration_s"] = float(pick(rng, (60.0, 1e-9, 1e12, -1.0, float("inf"))))
    cli = ["ladders", "import", str(path), "-o", str(folder / "out" / "imported.toml")]
    for key, value in kwargs.items():
        cli += [f"--{key.replace('_', '-')}", str(value)]
    return Case(path, kwargs, tuple(cli))


def _small_traces(rng: np.random.Generator, folder: Path) -> None:
    for k in range(2):
        path = folder / "traces" / f"t{k}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(trace_text(rng, "abrsim"))


def generate_sweep(rng: np.random.Generator, folder: Path) -> Case:
    doc = tomllib.loads(pick(rng, TOML_SEEDS["sweep"]).read_text())
    doc["traces_root"] = "."
    _small_traces(rng, folder)
    refs = refs_for(folder, ".toml")
    if rng.random() < 0.2:  # a ladder file beside the spec
        (folder / "ladder.toml").write_text((REPO / "ladders" / "mobile.toml").read_text())
        doc["ladders"] = ["ladder.toml", *doc.get("ladders", [])]
    for _ in range(_mutations(rng)):
        mutate_tree(rng, doc, refs)
    path = _write_toml(rng, folder / "spec.toml", doc, refs)
    return Case(path, {}, ("sweep", str(path), "--out", str(folder / "out"), "--jobs", "1"))


def _write_toml(rng: np.random.Generator, path: Path, doc: dict[str, Any], refs: tuple[str, ...]) -> Path:
    """Write ``doc`` as TOML to ``path``, mutated at the byte level three times in ten."""
    text = toml_dumps(doc)
    if rng.random() < 0.3:
        _write_mutated(rng, path, text, "toml", refs)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def generate_scenario(rng: np.random.Generator, folder: Path) -> Case:
    doc = tomllib.loads(pick(rng, TOML_SEEDS["scenario"]).read_text())
    refs = refs_for(folder, ".csv")
    if rng.random() < 0.3:  # a trace file beside the scenario
        _small_traces(rng, folder)
        doc.setdefault("traces", {})["local"] = {"path": "traces/t0.csv"}
    for _ in range(_mutations(rng)):
        mutate_tree(rng, doc, refs)
    path = _write_toml(rng, folder / "scenario.toml", doc, refs)
    return Case(path, {}, ("simulate", str(path), "--out", str(folder / "out" / "r.csv")))


def _read_trace(case: Case) -> Any:
    from abrsim.trace import load_trace

    return load_trace(case.path, **case.kwargs)


def _read_ladder(case: Case) -> Any:
    from abrsim.ladder import load_ladder

    return load_ladder(case.path, **case.kwargs)


def _read_manifest(case: Case) -> Any:
    from abrsim.manifest import read_manifest

    return read_manifest(case.path, **case.kwargs)


def _read_sweep(case: Case) -> Any:
    from abrsim.sweep import load_spec

    return load_spec(case.path)


def _read_scenario(case: Case) -> Any:
    from abrsim.scenario import load_scenario

    return load_scenario(case.path)


@dataclass(frozen=True)
class Reader:
    """A reader under fuzz: how to generate a case and how to read it."""

    name: str
    generate: Callable[[np.random.Generator, Path], Case]
    read: Callable[[Case], Any]
    confined: bool = False  # reads only files inside the case's folder (manifests: issue 14)
    cli_when_accepted: bool = True  # run the CLI sample on accepted cases too (not sweeps/scenarios)


READERS = {
    "trace": Reader("trace", generate_trace, _read_trace),
    "ladder": Reader("ladder", generate_ladder, _read_ladder),
    "manifest": Reader("manifest", generate_manifest, _read_manifest, confined=True),
    "sweep": Reader("sweep", generate_sweep, _read_sweep, cli_when_accepted=False),
    "scenario": Reader("scenario", generate_scenario, _read_scenario, cli_when_accepted=False),
}


# ------------------------------------------------------------------------------------- driver

class CaseTimeout(BaseException):
    """A case ran past its time budget."""


@dataclass
class Outcome:
    """What one case did."""

    reader: str
    index: int
    status: str  # accepted, refused, or a failure: exception, hang, memory, modified, leak, warning, cli
    detail: str = ""
    seconds: float = 0.0
    cli: bool = False

    @property
    def failed(self) -> bool:
        return self.status not in ("accepted", "refused")


def _digest(folder: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(folder.parent.rglob("*")):
        if path.is_file() and not path.is_symlink():
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _OpenAudit:
    """Records the files opened while active (``sys.addaudithook`` cannot be removed, so it is gated)."""

    def __init__(self) -> None:
        self.active = False
        self.opened: list[str] = []
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            self.opened.append(os.fsdecode(args[0]))


_AUDIT: _OpenAudit | None = None


def _audit() -> _OpenAudit:
    global _AUDIT
    if _AUDIT is None:
        _AUDIT = _OpenAudit()
    return _AUDIT


def _outside(folder: Path, opened: list[str]) -> list[str]:
    root = folder.resolve()
    outside = []
    for name in opened:
        target = Path(name).resolve() if Path(name).is_absolute() else (Path.cwd() / name).resolve()
        if target.is_relative_to(root) or target.suffix in (".py", ".pyc", ".so", ".nbi", ".nbc"):
            continue
        if "site-packages" in target.parts or target.is_relative_to(REPO / "abrsim"):
            continue
        outside.append(str(target))
    return outside


def run_case(reader: Reader, seed: int, index: int, workdir: Path, *, budget_s: float = 10.0,
             cli: bool = False) -> Outcome:
    """Generate case ``index`` in ``workdir`` and read it; never raises (a failure is an outcome)."""
    from abrsim.errors import AbrsimError

    folder = workdir / "case"
    prepare(folder)
    case = reader.generate(case_rng(seed, reader.name, index), folder)
    before = _digest(folder)
    audit = _audit()
    audit.opened.clear()
    started = time.perf_counter()
    outcome = Outcome(reader.name, index, "accepted")
    message = ""
    caught = warnings.catch_warnings(record=True)
    shown = caught.__enter__()
    warnings.simplefilter("always")
    try:
        with time_budget(budget_s):
            audit.active = reader.confined
            try:
                result = reader.read(case)
            finally:
                audit.active = False
        if hasattr(result, "notes"):
            message = " ".join(result.notes)
    except AbrsimError as exc:
        outcome.status, message = "refused", str(exc)
        if "\n" in message.strip():
            outcome.status, outcome.detail = "exception", f"multi-line error: {message!r}"
    except CaseTimeout as exc:
        outcome.status, outcome.detail = "hang", f"reader ran {exc}"
    except MemoryError:
        outcome.status, outcome.detail = "memory", "MemoryError: " + traceback.format_exc(limit=-3)
    except RecursionError:
        outcome.status, outcome.detail = "exception", traceback.format_exc(limit=-3)
    except Exception:
        outcome.status, outcome.detail = "exception", traceback.format_exc(limit=-4)
    finally:
        caught.__exit__(None, None, None)
    outcome.seconds = time.perf_counter() - started
    if not outcome.failed and shown:
        outcome.status = "warning"
        outcome.detail = "; ".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
                                   for w in shown)
    if not outcome.failed and reader.confined:
        outside = _outside(folder, audit.opened)
        if outside or SECRET in message:
            outcome.status, outcome.detail = "leak", f"opened {outside} / message {message[:200]!r}"
    if not outcome.failed and cli and (outcome.status == "refused" or reader.cli_when_accepted):
        outcome.cli = True
        problem = _run_cli(case, budget_s)
        if problem:
            outcome.status, outcome.detail = "cli", problem
    if not outcome.failed:
        after = _digest(folder)
        changed = [name for name in before if after.get(name) != before[name]]
        if changed:
            outcome.status, outcome.detail = "modified", f"input files changed: {changed}"
    return outcome


def _run_cli(case: Case, budget_s: float) -> str:
    """Run the case's CLI command; a description of what is wrong with its exit, or ''."""
    from click.testing import CliRunner

    from abrsim.cli import cli

    try:
        with time_budget(budget_s * 3):
            result = CliRunner().invoke(cli, list(case.cli))
    except CaseTimeout as exc:
        return f"CLI ran {exc}: abrsim {' '.join(case.cli)}"
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exit_code not in (0, 2) or "Traceback" in output:
        shown = ("".join(traceback.format_exception(result.exception, limit=-3)) if result.exception
                 else output)
        return f"abrsim {' '.join(case.cli)} exited {result.exit_code}: {shown[-1500:]}"
    if result.exit_code == 2 and len(result.stderr.strip().splitlines()) != 1:
        return f"abrsim {' '.join(case.cli)} exited 2 with {result.stderr!r}"
    return ""


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's address space at its current size plus ``extra_bytes``."""
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    current = pages * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, resource.RLIM_INFINITY))


def _worker(conn: Connection, reader_name: str, seed: int, indices: list[int], workdir: str,
            budget_s: float, memory_bytes: int, cli_every: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    import m3u8  # noqa: F401 -- the manifest reader's lazy imports: their import-time warnings are not a case's
    import mpegdash.nodes
    import mpegdash.utils  # noqa: F401

    import abrsim.cli
    import abrsim.manifest
    import abrsim.scenario
    import abrsim.sweep  # noqa: F401

    _limit_memory(memory_bytes)
    reader = READERS[reader_name]
    for index in indices:
        conn.send(("start", index))
        outcome = run_case(reader, seed, index, Path(workdir), budget_s=budget_s,
                           cli=cli_every > 0 and index % cli_every == 0)
        conn.send(("done", asdict(outcome)))
    conn.send(("exit", _peak_rss_kib()))


def _peak_rss_kib() -> int:
    """This process's peak resident memory, KiB (``VmHWM``; ``ru_maxrss`` is unreliable in containers)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class FuzzReport:
    """A reader's fuzz run: counts, failures, speed and worker memory."""

    reader: str
    seed: int
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    cli_cases: int = 0
    failures: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    max_rss_mib: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"reader": self.reader, "seed": self.seed, "cases": self.cases, "accepted": self.accepted,
                "refused": self.refused, "failures": len(self.failures), "cli_cases": self.cli_cases,
                "seconds": round(self.seconds, 1),
                "cases_per_s": round(self.cases / max(self.seconds, 1e-9), 1),
                "max_rss_mib": round(self.max_rss_mib, 1)}


def fuzz(reader_name: str, cases: int, seed: int, *, jobs: int = 2, workdir: Path, budget_s: float = 10.0,
         memory_bytes: int = 2 * 2**30, cli_every: int = 50, failures_dir: Path | None = None,
         progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Run cases ``0 .. cases-1`` of one reader in ``jobs`` worker processes.

    A worker silent on one case for ``3 * budget_s + 10`` s (a hang the alarm cannot break, e.g.
    in C code) is killed, its case counted as a hang, and a new worker takes its remaining cases;
    so is a worker that dies (a crash, or the kernel's OOM killer). Failing cases are copied to
    ``failures_dir/<reader>-<seed>-<index>/`` when given.
    """
    report = FuzzReport(reader_name, seed)
    context = multiprocessing.get_context("spawn")
    pending = [list(range(start, cases, jobs)) for start in range(jobs)]
    workers: dict[Connection, dict[str, Any]] = {}

    def start(indices: list[int], slot: int) -> None:
        if not indices:
            return
        parent, child = context.Pipe()
        folder = workdir / f"{reader_name}-{slot}"
        process = context.Process(target=_worker, daemon=True, args=(
            child, reader_name, seed, indices, str(folder), budget_s, memory_bytes, cli_every))
        process.start()
        child.close()
        workers[parent] = {"process": process, "todo": list(indices), "current": None,
                           "since": time.monotonic(), "slot": slot}

    def record(outcome: Outcome) -> None:
        report.cases += 1
        report.cli_cases += outcome.cli
        if outcome.status == "accepted":
            report.accepted += 1
        elif outcome.status == "refused":
            report.refused += 1
        else:
            report.failures.append(outcome)
            if failures_dir is not None:
                target = failures_dir / f"{reader_name}-{seed}-{outcome.index}"
                shutil.rmtree(target, ignore_errors=True)
                prepare(target / "case")  # regenerated: the worker has moved on to other cases
                READERS[reader_name].generate(case_rng(seed, reader_name, outcome.index), target / "case")
                (target / "FAILURE.txt").write_text(json.dumps(asdict(outcome), indent=1) + "\n")
        if progress is not None:
            progress(report.cases)

    began = time.perf_counter()
    for slot, indices in enumerate(pending):
        start(indices, slot)
    hard_s = 3 * budget_s + 10 + (3 * budget_s if cli_every else 0)
    try:
        while workers:
            for conn in wait(list(workers), timeout=0.5):
                state = workers[conn]
                try:
                    message = conn.recv()
                except EOFError:  # the worker died
                    process = state["process"]
                    process.join(5)
                    if state["current"] is not None:
                        index = state["current"]
                        status = "memory" if process.exitcode == -9 else "exception"  # -9: OOM killer
                        record(Outcome(reader_name, index, status,
                                       f"worker died with exit code {process.exitcode}"))
                        state["todo"].remove(index)
                    del workers[conn]
                    start(state["todo"], state["slot"])
                    continue
                if message[0] == "start":
                    state["current"], state["since"] = message[1], time.monotonic()
                elif message[0] == "done":
                    outcome = Outcome(**message[1])
                    record(outcome)
                    state["todo"].remove(outcome.index)
                    state["current"] = None
                else:
                    report.max_rss_mib = max(report.max_rss_mib, message[1] / 1024)
                    state["process"].join()
                    del workers[conn]
            now = time.monotonic()
            for conn, state in list(workers.items()):
                if state["current"] is not None and now - state["since"] > hard_s:
                    state["process"].kill()
                    state["process"].join()
                    index = state["current"]
                    record(Outcome(reader_name, index, "hang", f"no answer in {hard_s:.0f} s; worker killed"))
                    state["todo"].remove(index)
                    del workers[conn]
                    start(state["todo"], state["slot"])
    finally:
        for state in workers.values():
            state["process"].kill()
    report.seconds = time.perf_counter() - began
    return report
