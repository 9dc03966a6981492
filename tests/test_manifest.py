from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from abrsim.cli import cli
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Rung, load_ladder, model_quality, pertitle_ladder, read_ladder_toml
from abrsim.manifest import (
    DEFAULT_DURATION_S,
    import_manifest,
    parse_iso8601_duration,
    read_dash_mpd,
    read_hls_playlist,
    read_manifest,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a URL or a socket fails the test: imports are offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_error(
    exc: pytest.ExceptionInfo[InputError], path: Path, line: int | None, text: str
) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path.name in message
    if line is not None:
        assert f"{path.name}:{line}" in message, message
    assert text in message, message


# --------------------------------------------------------------------------------------- DASH

# A static MPD with a video and an audio adaptation set (the fuzzers start from the same one).
from fuzzing import MPD as MPD_TEMPLATE  # noqa: E402


def test_dash_segment_template(tmp_path: Path) -> None:
    result = read_dash_mpd(write(tmp_path, "title.mpd", MPD_TEMPLATE))
    ladder = result.ladder
    assert result.format == "dash"
    assert result.sizes_from == "cbr"
    assert ladder.name == "title"
    assert list(ladder.bitrates_bps) == [800e3, 2.5e6, 5e6]  # sorted by bandwidth
    assert [(r.width, r.height, r.codec) for r in ladder.rungs] == [
        (640, 360, "h264"), (1280, 720, "h264"), (1920, 1080, "h264")
    ]
    assert ladder.rungs[0].frame_rate_hz == pytest.approx(30000 / 1001)  # inherited from the set
    assert ladder.rungs[2].frame_rate_hz == 25.0
    assert ladder.segment_duration_s == 4.0  # 360000 / 90000
    assert ladder.segment_count == 16  # ceil(60.5 / 4)
    np.testing.assert_array_equal(ladder.size_bits[0], [3.2e6, 10e6, 20e6])
    assert any("audio" in note and "not video" in note for note in result.notes)


def test_dash_vbr_sizes_are_seeded(tmp_path: Path) -> None:
    path = write(tmp_path, "title.mpd", MPD_TEMPLATE)
    first = read_dash_mpd(path, size_model="vbr", seed=4).ladder
    second = import_manifest(path, size_model="vbr", seed=4)
    other = import_manifest(path, size_model="vbr", seed=5)
    assert first.size_bits.tobytes() == second.size_bits.tobytes()
    assert first.size_bits.tobytes() != other.size_bits.tobytes()
    np.testing.assert_allclose(first.size_bits.mean(axis=0), first.bitrates_bps * 4.0)
    with pytest.raises(UnknownNameError, match="unknown size model 'abr'"):
        read_dash_mpd(path, size_model="abr")


def mpd(body: str, attributes: str = 'mediaPresentationDuration="PT10S"', period: str = "") -> str:
    return (
        f'<?xml version="1.0"?>\n<MPD type="static" {attributes}>\n<Period{period}>\n'
        f"{body}\n</Period>\n</MPD>\n"
    )


def test_dash_segment_timeline(tmp_path: Path) -> None:
    body = """<AdaptationSet contentType="video">
<SegmentTemplate timescale="1000"><SegmentTimeline>
<S t="0" d="2000" r="3"/><S d="1500"/>
</SegmentTimeline></SegmentTemplate>
<Representation id="a" bandwidth="1000000" width="640" height="360" codecs="hvc1.1.6.L93.B0"/>
<Representation id="b" bandwidth="3000000" width="1280" height="720" codecs="hvc1.1.6.L120.B0"/>
</AdaptationSet>"""
    ladder = read_dash_mpd(write(tmp_path, "t.mpd", mpd(body))).ladder
    assert ladder.segment_count == 5
    assert ladder.segment_duration_s == 2.0  # the most common duration; the last is shorter
    assert [r.codec for r in ladder.rungs] == ["hevc", "hevc"]


def test_dash_timeline_repeat_to_the_end(tmp_path: Path) -> None:
    body = """<AdaptationSet contentType="video">
<Representation id="a" bandwidth="1000000"><SegmentTemplate timescale="10">
<SegmentTimeline><S d="40" r="-1"/></SegmentTimeline></SegmentTemplate></Representation>
</AdaptationSet>"""
    ladder = read_dash_mpd(write(tmp_path, "t.mpd", mpd(body, "", ' duration="PT30S"'))).ladder
    assert (ladder.segment_count, ladder.segment_duration_s) == (8, 4.0)  # ceil(30 / 4)


def test_dash_segment_list_byte_ranges_give_sizes(tmp_path: Path) -> None:
    def representation(rid: str, bandwidth: int, sizes: list[int]) -> str:
        ranges, offset = [], 0
        for size in sizes:
            ranges.append(f'<SegmentURL mediaRange="{offset}-{offset + size - 1}"/>')
            offset += size
        return (f'<Representation id="{rid}" bandwidth="{bandwidth}" width="640" height="360">'
                f'<SegmentList timescale="1" duration="2">{"".join(ranges)}</SegmentList></Representation>')

    body = ('<AdaptationSet mimeType="video/mp4" codecs="avc1.4d401e">'
            + representation("lo", 400_000, [90_000, 110_000, 100_000])
            + representation("hi", 1_200_000, [280_000, 320_000, 300_000]) + "</AdaptationSet>")
    result = read_dash_mpd(write(tmp_path, "list.mpd", mpd(body)))
    assert result.sizes_from == "manifest"
    expected_bytes = [[90e3, 280e3], [110e3, 320e3], [100e3, 300e3]]
    np.testing.assert_array_equal(result.ladder.size_bits / 8, expected_bytes)
    assert result.ladder.segment_duration_s == 2.0


def test_dash_segment_base_needs_a_segment_duration(tmp_path: Path) -> None:
    body = """<AdaptationSet contentType="video">
<Representation id="a" bandwidth="1000000"><SegmentBase indexRange="0-999"/></Representation>
</AdaptationSet>"""
    path = write(tmp_path, "base.mpd", mpd(body, 'mediaPresentationDuration="PT1M"'))
    with pytest.raises(InputError, match="expected segment_duration_s to be given"):
        read_dash_mpd(path)
    ladder = read_dash_mpd(path, segment_duration_s=6.0).ladder
    assert (ladder.segment_count, ladder.segment_duration_s) == (10, 6.0)


def test_dash_codec_filter(tmp_path: Path) -> None:
    body = """<AdaptationSet contentType="video" codecs="avc1.640028">
<SegmentTemplate duration="4"/>
<Representation id="avc" bandwidth="3000000" width="1280" height="720"/></AdaptationSet>
<AdaptationSet contentType="video" codecs="hev1.1.6.L120.90">
<SegmentTemplate duration="4"/>
<Representation id="hevc" bandwidth="3000000" width="1280" height="720"/></AdaptationSet>"""
    path = write(tmp_path, "two.mpd", mpd(body))
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, 9, "has the same bandwidth, 3e+06 bit/s, as Representation id='avc'")
    result = read_dash_mpd(path, codec="hevc")
    assert [r.codec for r in result.ladder.rungs] == ["hevc"]
    assert any("skipped Representation id='avc'" in note for note in result.notes)
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path, codec="zzz")
    assert_one_line_error(exc, path, 3, "found no video representation of codec 'zzz'; expected one of the "
                                        "codecs found: h264, hevc (--codec)")


def test_hls_codec_filter_names_the_codecs_found(tmp_path: Path) -> None:
    path = write(tmp_path, "master.m3u8", MASTER)
    result = CliRunner().invoke(cli, ["ladders", "import", str(path), "-o", str(tmp_path / "x.toml"),
                                      "--segment-duration-s", "4", "--codec", "zzz"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("found no video variant of codec 'zzz'; expected one of the codecs "
                                          "found: h264 (--codec)")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0S", 0.0), ("PT4S", 4.0), ("PT1M0.5S", 60.5), ("PT1H", 3600.0), ("P1DT1S", 86401.0),
     ("PT0.25S", 0.25)],
)
def test_parse_iso8601_duration(text: str, seconds: float) -> None:
    assert parse_iso8601_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "4S", "PT1.5", "P1Y", "P2M", "-PT3S", "PT1H2S3M", "1:00"])
def test_parse_iso8601_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_iso8601_duration(text)


VIDEO = '<AdaptationSet contentType="video"><SegmentTemplate duration="2"/>{}</AdaptationSet>'


def template(attributes: str) -> str:
    """An MPD of one video representation under a SegmentTemplate with ``attributes``."""
    return mpd(f'<AdaptationSet contentType="video"><SegmentTemplate {attributes}/>'
               '<Representation id="a" bandwidth="9"/></AdaptationSet>')


BAD_MPDS = [
    pytest.param("not xml at all", 1, "malformed XML", id="not-xml"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="1"/>')).replace("</MPD>", ""), 7,
                 "malformed XML: no element found", id="unclosed"),
    pytest.param('<?xml version="1.0"?>\n<html/>', 2, "found a <html> root element; expected <MPD>",
                 id="root"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="1"/>'), 'type="dynamic"')
                 .replace('type="static" ', ""), 2, "(live); expected a static", id="dynamic"),
    pytest.param(mpd("").replace("</Period>", "</Period><Period/>"), 5, "a second <Period>",
                 id="two-periods"),
    pytest.param(mpd(VIDEO.format('<Representation id="a"/>')), 4, "missing attribute bandwidth",
                 id="no-bandwidth"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="0"/>')), 4,
                 "attribute bandwidth=0; expected bit/s > 0", id="zero-bandwidth"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="-5"/>')), 4,
                 "attribute bandwidth=-5; expected bit/s > 0", id="negative-bandwidth"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="fast"/>')), 4,
                 "attribute bandwidth='fast'; expected an integer", id="text-bandwidth"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="9" width="0"/>')), 4,
                 "attribute width=0; expected pixels > 0", id="zero-width"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="9" frameRate="fast"/>')), 4,
                 "attribute frameRate='fast'", id="frame-rate"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="9" numChannels="two"/>')), 4,
                 "malformed attribute value", id="other-integer"),
    pytest.param(mpd('<AdaptationSet contentType="audio"><Representation id="a" bandwidth="9"/>'
                     "</AdaptationSet>"), 3, "found no video representation", id="no-video"),
    pytest.param(mpd(VIDEO.format("")), 4, "found no <Representation>", id="no-representation"),
    pytest.param(mpd('<AdaptationSet contentType="video"><SegmentTemplate/>'
                     '<Representation id="a" bandwidth="9"/></AdaptationSet>'), 4,
                 "found neither a duration attribute nor a SegmentTimeline", id="no-duration"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="9"/>'), ""), 4,
                 "found no presentation or period duration", id="no-presentation-duration"),
    pytest.param(mpd(VIDEO.format('<Representation id="a" bandwidth="9"/>'),
                     'mediaPresentationDuration="P1M"'),
                 2, "years and months have no fixed length", id="month-duration"),
    pytest.param(mpd('<AdaptationSet contentType="video"><SegmentTemplate timescale="1">'
                     '<SegmentTimeline><S d="0"/></SegmentTimeline></SegmentTemplate>'
                     '<Representation id="a" bandwidth="9"/></AdaptationSet>'), 4,
                 "attribute d=0; expected an integer > 0", id="zero-segment"),
    pytest.param(template('duration="4" timescale="0"'), 4,
                 "attribute timescale=0; expected an integer > 0", id="zero-timescale"),
    pytest.param(template('duration="4" timescale="abc"'), 4,
                 "attribute timescale='abc'; expected an integer", id="text-timescale"),
    pytest.param(mpd('<AdaptationSet contentType="video"><Representation id="a" bandwidth="9">'
                     '<SegmentList timescale="0" duration="2"><SegmentURL/></SegmentList>'
                     "</Representation></AdaptationSet>"), 4,
                 "attribute timescale=0; expected an integer > 0", id="zero-list-timescale"),
    pytest.param(template('duration="2000000000"'), 4,
                 "its segments last 2e+09 s; expected at most 1e+06 s", id="segments-of-years"),
]


@pytest.mark.parametrize(("text", "line", "expected"), BAD_MPDS)
def test_dash_bad_input(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "bad.mpd", text)
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, line, expected)


def test_dash_inconsistent_segment_counts(tmp_path: Path) -> None:
    body = """<AdaptationSet contentType="video">
<Representation id="a" bandwidth="1000">
<SegmentTemplate timescale="1"><SegmentTimeline><S d="2" r="4"/></SegmentTimeline></SegmentTemplate>
</Representation>
<Representation id="b" bandwidth="2000">
<SegmentTemplate timescale="1"><SegmentTimeline><S d="2" r="3"/></SegmentTimeline></SegmentTemplate>
</Representation>
</AdaptationSet>"""
    path = write(tmp_path, "counts.mpd", mpd(body))
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, 9,
                          "Representation id='b' has 4 segments but Representation id='a' has 5")


def test_dash_external_entities_are_neither_fetched_nor_expanded(tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.txt", "TOP-SECRET")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE MPD [ <!ENTITY leak SYSTEM "file://{secret}"> ]>
<MPD type="static" mediaPresentationDuration="PT10S"><Period><AdaptationSet contentType="video">
<SegmentTemplate duration="2"/><Representation id="&leak;" bandwidth="1000"/></AdaptationSet></Period></MPD>
"""
    path = write(tmp_path, "xxe.mpd", xxe)
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, 2, "found a declaration of entity 'leak'")
    assert "TOP-SECRET" not in str(exc.value)


def test_dash_entity_expansion_and_external_dtd_are_refused(tmp_path: Path) -> None:
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE MPD [\n <!ENTITY a "ha">\n <!ENTITY b "&a;&a;&a;&a;">\n]>\n'
              '<MPD type="static">&b;</MPD>\n')
    path = write(tmp_path, "laughs.mpd", laughs)
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, 3, "found a declaration of entity 'a'")
    remote = ('<?xml version="1.0"?>\n<!DOCTYPE MPD SYSTEM "http://127.0.0.1:9/mpd.dtd">\n'
              '<MPD type="static"/>\n')
    path = write(tmp_path, "dtd.mpd", remote)
    with pytest.raises(InputError) as exc:
        read_dash_mpd(path)
    assert_one_line_error(exc, path, 2, "external DTD 'http://127.0.0.1:9/mpd.dtd'; expected none")


def test_manifest_file_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_manifest(tmp_path / "nope.mpd")
    with pytest.raises(InputError, match="the file is empty"):
        read_manifest(write(tmp_path, "empty.mpd", "  \n"))
    with pytest.raises(InputError, match="expected a DASH MPD"):
        read_manifest(write(tmp_path, "what.txt", "hello"))
    with pytest.raises(UnknownNameError, match="unknown manifest format 'smooth'"):
        read_manifest(write(tmp_path, "t.mpd", MPD_TEMPLATE), "smooth")


# ---------------------------------------------------------------------------------------- HLS

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


def media_playlist(sizes: list[int] | None, durations: list[float]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:4", "#EXT-X-TARGETDURATION:6", "#EXT-X-PLAYLIST-TYPE:VOD"]
    offset = 0
    for k, duration in enumerate(durations):
        lines.append(f"#EXTINF:{duration:.3f},")
        if sizes is not None:
            lines.append(f"#EXT-X-BYTERANGE:{sizes[k]}@{offset}")
            offset += sizes[k]
        lines.append("media.mp4" if sizes is not None else f"segment{k}.ts")
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def test_hls_master_without_media_playlists(tmp_path: Path) -> None:
    path = write(tmp_path, "master.m3u8", MASTER)
    with pytest.raises(InputError, match="expected segment_duration_s to be given"):
        read_hls_playlist(path)
    result = read_hls_playlist(path, segment_duration_s=6.0, duration_s=61.0)
    ladder = result.ladder
    assert result.format == "hls"
    assert list(ladder.bitrates_bps) == [1e6, 3.3e6]  # AVERAGE-BANDWIDTH when present, else BANDWIDTH
    assert [(r.width, r.height, r.codec, r.frame_rate_hz) for r in ladder.rungs] == [
        (640, 360, "h264", 29.97), (1280, 720, "h264", None)
    ]
    assert (ladder.segment_count, ladder.segment_duration_s) == (11, 6.0)
    assert any("audio-only" in note for note in result.notes)
    assert sum("not found beside the master playlist" in note for note in result.notes) == 2
    default = read_hls_playlist(path, segment_duration_s=6.0)
    assert default.ladder.segment_count == DEFAULT_DURATION_S / 6
    assert any("assumed 600 s" in note for note in default.notes)
    # Decimal bandwidths, which the RFC does not allow but players and the m3u8 library read.
    decimal = write(tmp_path, "decimal.m3u8", MASTER.replace("BANDWIDTH=3300000", "BANDWIDTH=3.3e6"))
    assert list(read_hls_playlist(decimal, segment_duration_s=6.0).ladder.bitrates_bps) == [1e6, 3.3e6]


def test_hls_media_playlists_give_segments_and_sizes(tmp_path: Path) -> None:
    durations = [6.0, 6.0, 6.0, 2.5]
    write(tmp_path, "v360/index.m3u8", media_playlist([700_000, 760_000, 740_000, 300_000], durations))
    write(tmp_path, "v720/index.m3u8", media_playlist([2_400_000, 2_600_000, 2_500_000, 900_000], durations))
    result = read_manifest(write(tmp_path, "master.m3u8", MASTER))
    assert result.sizes_from == "manifest"
    assert (result.ladder.segment_count, result.ladder.segment_duration_s) == (4, 6.0)
    np.testing.assert_array_equal(result.ladder.size_bits[:, 0] / 8, [700_000, 760_000, 740_000, 300_000])


def test_hls_media_playlists_without_sizes_and_remote_uris(tmp_path: Path) -> None:
    write(tmp_path, "v360/index.m3u8", media_playlist(None, [4.0] * 5))
    master = MASTER.replace("v720/index.m3u8", "https://cdn.example.com/v720/index.m3u8")
    result = read_hls_playlist(write(tmp_path, "master.m3u8", master), size_model="vbr", seed=2)
    assert result.sizes_from == "vbr"
    assert (result.ladder.segment_count, result.ladder.segment_duration_s) == (5, 4.0)
    assert any("remote; nothing is fetched" in note for note in result.notes)


def test_hls_inconsistent_segment_counts(tmp_path: Path) -> None:
    write(tmp_path, "v360/index.m3u8", media_playlist(None, [6.0] * 4))
    write(tmp_path, "v720/index.m3u8", media_playlist(None, [6.0] * 5))
    with pytest.raises(InputError) as exc:
        read_hls_playlist(write(tmp_path, "master.m3u8", MASTER))
    assert_one_line_error(exc, tmp_path / "v720" / "index.m3u8", 13,  # its last #EXTINF
                          "v720/index.m3u8 has 5 segments but EXT-X-STREAM-INF v360/index.m3u8 has 4")


BAD_MASTERS = [
    pytest.param("#EXT-X-VERSION:3\n#EXTM3U\n", 1, "expected '#EXTM3U' first", id="no-header"),
    pytest.param("#EXTM3U\n#EXTINF:4,\na.ts\n", 1, "found a media playlist", id="media-playlist"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=640x360\nv.m3u8\n", 2, "missing attribute BANDWIDTH",
                 id="no-bandwidth"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=0\nv.m3u8\n", 2,
                 "found BANDWIDTH=0; expected bit/s > 0",
                 id="zero-bandwidth"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=-7\nv.m3u8\n", 2, "found BANDWIDTH=-7",
                 id="negative-bandwidth"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,AVERAGE-BANDWIDTH=0\nv.m3u8\n", 2,
                 "found AVERAGE-BANDWIDTH=0", id="zero-average"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\nv.m3u8\n", 2,
                 "field 'BANDWIDTH': found BANDWIDTH=lots; expected a number of bit/s",
                 id="text-bandwidth"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1_000\nv.m3u8\n", 2, "found BANDWIDTH=1_000",
                 id="underscore-bandwidth"),
    pytest.param('#EXTM3U\n#EXT-X-STREAM-INF:CODECS="avc1.64001f,mp4a.40.2",BANDWIDTH=9,AVERAGE-BANDWIDTH=abc'
                 "\nv.m3u8\n", 2, "field 'AVERAGE-BANDWIDTH': found AVERAGE-BANDWIDTH=abc",
                 id="text-average"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,FRAME-RATE=fast\nv.m3u8\n", 2,
                 "field 'FRAME-RATE': found FRAME-RATE=fast; expected frames/s", id="text-frame-rate"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,RESOLUTION=wide\nv.m3u8\n", 2,
                 "found RESOLUTION='wide'", id="resolution"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9\nv.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=20\n", 4,
                 "without a URI line", id="no-uri"),
    pytest.param("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,CODECS=\"mp4a.40.2\"\na.m3u8\n", 2,
                 "found no video variant", id="audio-only"),
]


@pytest.mark.parametrize(("text", "line", "expected"), BAD_MASTERS)
def test_hls_bad_input(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "bad.m3u8", text)
    with pytest.raises(InputError) as exc:
        read_hls_playlist(path, segment_duration_s=4.0)
    assert_one_line_error(exc, path, line, expected)


def test_hls_bad_media_playlist(tmp_path: Path) -> None:
    write(tmp_path, "v360/index.m3u8", "#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:soon,\nb.ts\n")
    with pytest.raises(InputError) as exc:
        read_hls_playlist(write(tmp_path, "master.m3u8", MASTER))
    assert "index.m3u8:4" in str(exc.value)
    assert "field 'EXTINF': found EXTINF=soon; expected the segment duration in seconds" in str(exc.value)
    write(tmp_path, "v360/index.m3u8", "#EXTM3U\n#EXTINF:4_0,\na.ts\n")
    with pytest.raises(InputError, match=r"index.m3u8:2, field 'EXTINF': found EXTINF=4_0"):
        read_hls_playlist(write(tmp_path, "master.m3u8", MASTER))
    write(tmp_path, "v360/index.m3u8", "#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:1e308,\nb.ts\n")  # fuzz, seed 24
    with pytest.raises(InputError, match=r"index.m3u8:4, field 'EXTINF': found segment duration 1e\+308; "
                                         r"expected seconds > 0 and at most 1e\+06"):
        read_hls_playlist(write(tmp_path, "master.m3u8", MASTER))
    write(tmp_path, "v360/index.m3u8", "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:0@0\na.ts\n")
    with pytest.raises(InputError, match=r"index.m3u8:3, field 'EXT-X-BYTERANGE': found '0@0'"):
        read_hls_playlist(write(tmp_path, "master.m3u8", MASTER))


# ---------------------------------------------------------------------------------------- CLI


def test_cli_import_writes_a_ladder_that_loads_back(tmp_path: Path) -> None:
    source = write(tmp_path, "title.mpd", MPD_TEMPLATE)
    out = tmp_path / "ladders" / "imported.toml"
    result = CliRunner().invoke(cli, ["ladders", "import", str(source), "-o", str(out), "--size-model", "vbr",
                                      "--seed", "3", "--quality-model", "vmaf"])
    assert result.exit_code == 0, result.output
    assert "1920x1080" in result.output
    assert "note: skipped AdaptationSet" in result.output
    expected = read_dash_mpd(source, size_model="vbr", seed=3, name="imported").ladder
    loaded = load_ladder(out)
    assert loaded.name == "imported"
    assert loaded.rungs == expected.rungs
    assert loaded.size_bits.tobytes() == expected.size_bits.tobytes()
    assert loaded.quality is not None and loaded.quality.min() > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["imported.toml"]  # model keys, no tables


def test_cli_import_with_manifest_sizes_writes_a_table(tmp_path: Path) -> None:
    durations = [6.0, 6.0, 3.0]
    write(tmp_path, "v360/index.m3u8", media_playlist([700_000, 760_000, 300_000], durations))
    write(tmp_path, "v720/index.m3u8", media_playlist([2_400_000, 2_600_000, 900_000], durations))
    out = tmp_path / "out" / "hls.toml"
    result = CliRunner().invoke(cli, ["ladders", "import", str(write(tmp_path, "master.m3u8", MASTER)),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "hls.sizes.csv").is_file()
    ladder = read_ladder_toml(out)
    np.testing.assert_array_equal(ladder.size_bits[:, 1] / 8, [2_400_000, 2_600_000, 900_000])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.mpd", mpd(VIDEO.format('<Representation id="a" bandwidth="0"/>')), "bad.mpd:4"),
        ("bad.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=0\nv.m3u8\n", "bad.m3u8:2"),
        ("xxe.mpd", '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<MPD/>',
         "xxe.mpd:2"),
    ],
)
def test_cli_import_bad_input_is_one_line_exit_2(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, name, text)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["ladders", "import", str(path), "-o", str(tmp_path / "x.toml"),
                                      "--segment-duration-s", "4"])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1
    assert "Traceback" not in message
    assert expected in message
    assert path.read_bytes() == before
    assert not (tmp_path / "x.toml").exists()


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_cli_title_complexity_is_one_line_naming_the_option(tmp_path: Path, value: str) -> None:
    master = write(tmp_path, "master.m3u8", MASTER)
    for command in (["ladders", "import", str(master), "--quality-model", "vmaf"],
                    ["ladders", "pertitle", "--rungs", "3"]):
        result = CliRunner().invoke(cli, [*command, "-o", str(tmp_path / "x.toml"),
                                          "--segment-duration-s", "4", "--title-complexity", value])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"abrsim: error: field '--title-complexity': found {float(value):g}; "
            "expected a finite number > 0 (1: like the envivio title)")
        assert not (tmp_path / "x.toml").exists()
    with pytest.raises(ValueError, match=r'"title_complexity" must be finite and > 0, got -1.0$'):
        model_quality([Rung(1e6, height=360)], 100, title_complexity=-1.0)
    with pytest.raises(InputError, match=r"'title_complexity': expected a finite number > 0, found -1.0$"):
        pertitle_ladder(rung_count=3, title_complexity=-1.0)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "two words"])
def test_cli_name_is_a_plain_name_as_in_a_sweep(tmp_path: Path, name: str) -> None:
    master = write(tmp_path, "master.m3u8", MASTER)
    for command in (["ladders", "import", str(master)], ["ladders", "pertitle", "--rungs", "3"]):
        result = CliRunner().invoke(cli, [*command, "-o", str(tmp_path / "x.toml"),
                                          "--segment-duration-s", "4", "--name", name])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (f"abrsim: error: field '--name': got {name!r}; expected letters, "
                                         "digits and _ . + - (starting with a letter or digit)")
        assert list(tmp_path.iterdir()) == [master]
    result = CliRunner().invoke(cli, ["ladders", "import", str(master), "-o", str(tmp_path / "x.toml"),
                                      "--segment-duration-s", "4", "--name", "my_ladder-2.0"])
    assert result.exit_code == 0, result.output
    assert load_ladder(tmp_path / "x.toml").name == "my_ladder-2.0"


def test_cli_import_needs_a_toml_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ladders", "import", str(write(tmp_path, "t.mpd", MPD_TEMPLATE)),
                                      "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "expected a .toml file" in result.output


def test_hls_variants_outside_the_masters_folder_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.m3u8"
    secret.write_text("#EXTM3U\nTOP-SECRET-LINE\n")
    folder = tmp_path / "title"
    (folder / "v720").mkdir(parents=True)
    (folder / "v720" / "index.m3u8").symlink_to(secret)  # a symlink that leads out
    master = (MASTER.replace("v360/index.m3u8", "../secret.m3u8")
              + "#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028\"\n"
              + f"{secret}\n")  # an absolute path
    result = read_hls_playlist(write(folder, "master.m3u8", master), segment_duration_s=6.0)
    skipped = [note for note in result.notes if "outside the master playlist's folder" in note]
    assert len(skipped) == 3
    assert not any("TOP-SECRET" in note for note in result.notes)
    assert result.sizes_from != "manifest"
