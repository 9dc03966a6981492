"""A real DASH asset encoded locally with ffmpeg, cached outside the repository (issue 16).

:func:`make_asset` encodes ffmpeg's ``testsrc2`` pattern with libx264 into several constant-bitrate
representations (CBR with filler: ``nal-hrd=cbr``, so every segment is close to its nominal size),
one keyframe per segment and no scene-cut keyframes (so segments align across representations),
and packages them with ffmpeg's DASH muxer (``manifest.mpd``, ``init-R.m4s``, ``chunk-R-NNNNN.m4s``).
It then writes ``ladder.mpd``: the same representations with a ``SegmentList`` whose
``mediaRange`` of each segment spans its file, so ``abrsim ladders import ladder.mpd`` (and
:func:`ladder_of`) read the real segment sizes. Two encodes are not byte-identical, which is why
sizes are always read from the files.

The asset lives in ``$ABRSIM_ASSET_CACHE`` (default ``~/.cache/abrsim/assets``), in a folder
named after its settings; an asset already there is reused. Encoded media is never committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from abrsim.ladder import Ladder

__all__ = ["ASSET_CACHE", "Asset", "AssetSpec", "ladder_of", "make_asset"]

ASSET_CACHE = Path(os.environ.get("ABRSIM_ASSET_CACHE", Path.home() / ".cache" / "abrsim" / "assets"))
"""Where encoded assets are cached (``$ABRSIM_ASSET_CACHE``)."""


@dataclass(frozen=True)
class AssetSpec:
    """How to encode the asset.

    Args:
        bitrates_kbps: one representation per bitrate, ascending, kbit/s.
        duration_s: media length, seconds (whole segments).
        segment_duration_s: segment length, seconds (whole frames).
        width, height: picture size (one size for all: the browser's decoding stays light).
        frame_rate: frames per second.
        preset: libx264's preset.
    """

    bitrates_kbps: tuple[int, ...] = (300, 750, 1200, 1850, 2850)
    duration_s: int = 60
    segment_duration_s: int = 4
    width: int = 640
    height: int = 360
    frame_rate: int = 25
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        rates = tuple(int(b) for b in self.bitrates_kbps)
        object.__setattr__(self, "bitrates_kbps", rates)
        if not rates or any(b <= 0 for b in rates) or list(rates) != sorted(set(rates)):
            raise ValueError(f'"bitrates_kbps" must be ascending and > 0, got {self.bitrates_kbps!r}')
        if self.segment_duration_s <= 0 or self.duration_s % self.segment_duration_s:
            raise ValueError(f'"duration_s" must be whole segments of {self.segment_duration_s} s, '
                             f"got {self.duration_s!r}")

    @property
    def key(self) -> str:
        """The cache folder's name: a digest of the settings."""
        text = json.dumps(asdict(self), sort_keys=True)
        return "testsrc2-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def segment_count(self) -> int:
        return self.duration_s // self.segment_duration_s


@dataclass(frozen=True)
class Asset:
    """An encoded asset on disk.

    Args:
        folder: where it is (served as the player's document root).
        spec: how it was encoded.
        segment_bytes: per representation, the size of each media segment file, bytes.
        ffmpeg_version: ffmpeg's first version line.
    """

    folder: Path
    spec: AssetSpec
    segment_bytes: tuple[tuple[int, ...], ...] = field(default_factory=tuple)
    ffmpeg_version: str = ""

    @property
    def manifest(self) -> Path:
        """The MPD the player plays (SegmentTemplate)."""
        return self.folder / "manifest.mpd"

    @property
    def ladder_manifest(self) -> Path:
        """The MPD with each segment's real size (SegmentList with byte ranges), for ``ladders import``."""
        return self.folder / "ladder.mpd"


def _segment_path(folder: Path, rep: int, number: int) -> Path:
    return folder / f"chunk-{rep}-{number:05d}.m4s"


def _ffmpeg_command(spec: AssetSpec, out: Path) -> list[str]:
    gop = spec.segment_duration_s * spec.frame_rate
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc2=size={spec.width}x{spec.height}:rate={spec.frame_rate}",
               "-t", str(spec.duration_s)]
    for _ in spec.bitrates_kbps:
        command += ["-map", "0:v"]
    command += ["-c:v", "libx264", "-preset", spec.preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                "-x264-params", "nal-hrd=cbr:force-cfr=1"]
    for index, kbps in enumerate(spec.bitrates_kbps):
        command += [f"-b:v:{index}", f"{kbps}k", f"-minrate:v:{index}", f"{kbps}k",
                    f"-maxrate:v:{index}", f"{kbps}k", f"-bufsize:v:{index}", f"{kbps}k"]
    command += ["-f", "dash", "-seg_duration", str(spec.segment_duration_s), "-use_template", "1",
                "-use_timeline", "0", "-adaptation_sets", "id=0,streams=v",
                "-init_seg_name", "init-$RepresentationID$.m4s",
                "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s",
                str(out / "manifest.mpd")]
    return command


def _write_ladder_mpd(spec: AssetSpec, folder: Path, sizes: list[list[int]]) -> None:
    timescale = 1000
    reps = []
    for index, (kbps, rep_sizes) in enumerate(zip(spec.bitrates_kbps, sizes, strict=True)):
        urls = "\n".join(
            f'          <SegmentURL media="{escape(_segment_path(folder, index, n + 1).name)}" '
            f'mediaRange="0-{size - 1}"/>' for n, size in enumerate(rep_sizes))
        reps.append(
            f'      <Representation id="{index}" bandwidth="{kbps * 1000}" width="{spec.width}" '
            f'height="{spec.height}" codecs="avc1.640020" frameRate="{spec.frame_rate}">\n'
            f'        <SegmentList timescale="{timescale}" '
            f'duration="{spec.segment_duration_s * timescale}">\n'
            f"{urls}\n        </SegmentList>\n      </Representation>")
    text = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'mediaPresentationDuration="PT{spec.duration_s}S" minBufferTime="PT{spec.segment_duration_s}S">\n'
        f'  <Period id="0" duration="PT{spec.duration_s}S">\n'
        '    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true">\n'
        + "\n".join(reps) + "\n    </AdaptationSet>\n  </Period>\n</MPD>\n")
    (folder / "ladder.mpd").write_text(text)


def _load(folder: Path, spec: AssetSpec) -> Asset | None:
    info_path = folder / "asset.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text())
    sizes = tuple(tuple(int(s) for s in rep) for rep in info["segment_bytes"])
    for index, rep in enumerate(sizes):
        for number, size in enumerate(rep):
            path = _segment_path(folder, index, number + 1)
            if not path.exists() or path.stat().st_size != size:
                return None
    return Asset(folder, spec, sizes, info.get("ffmpeg_version", ""))


def make_asset(spec: AssetSpec | None = None, cache: str | Path | None = None) -> Asset:
    """The asset for ``spec``, from the cache or encoded now (about 10-30 s on 2 cores).

    Raises:
        RuntimeError: if ffmpeg is missing or fails, or its output is not what was asked.
    """
    spec = spec or AssetSpec()
    root = Path(cache) if cache is not None else ASSET_CACHE
    folder = root / spec.key
    asset = _load(folder, spec)
    if asset is not None:
        return asset
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (tools/emulation/emulation.sh up installs it)")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".encoding-", dir=root))
    try:
        done = subprocess.run(_ffmpeg_command(spec, work), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        sizes = []
        for index in range(len(spec.bitrates_kbps)):
            rep = []
            for number in range(1, spec.segment_count + 1):
                path = _segment_path(work, index, number)
                if not path.exists():
                    raise RuntimeError(f"ffmpeg wrote no {path.name}: the asset is not "
                                       f"{spec.segment_count} segments of {spec.segment_duration_s} s")
                rep.append(path.stat().st_size)
            sizes.append(rep)
        _write_ladder_mpd(spec, work, sizes)
        version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[0]
        (work / "asset.json").write_text(json.dumps(
            {"spec": asdict(spec), "segment_bytes": sizes, "ffmpeg_version": version}, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    asset = _load(folder, spec)
    assert asset is not None
    return asset


def ladder_of(asset: Asset) -> Ladder:
    """The asset's ladder with its real segment sizes (``abrsim ladders import`` of ``ladder.mpd``)."""
    from abrsim.manifest import read_manifest

    return read_manifest(asset.ladder_manifest, "dash", name=asset.spec.key).ladder
