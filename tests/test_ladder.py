from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from abrsim.encoding import (
    CODEC_EFFICIENCY,
    RateQualityModel,
    VbrModel,
    cbr_size_bits,
    codec_family,
    select_rungs,
    upper_convex_hull,
    vbr_size_bits,
)
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import (
    Ladder,
    Rung,
    available_ladders,
    load_ladder,
    model_quality,
    pertitle_ladder,
    read_ladder_toml,
    read_quality_curves,
    read_sabre_movie,
    read_size_csv,
    write_ladder_toml,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEOS = SHARED / "videos"

# (kbit/s, width, height, codec) of each built-in ladder's rungs
BUILTIN_RUNGS = {
    "hls": [
        (145, 416, 234, "h264"),
        (365, 480, 270, "h264"),
        (730, 640, 360, "h264"),
        (1100, 768, 432, "h264"),
        (2000, 960, 540, "h264"),
        (3000, 1280, 720, "h264"),
        (4500, 1280, 720, "h264"),
        (6000, 1920, 1080, "h264"),
        (7800, 1920, 1080, "h264"),
    ],
    "mobile": [
        (200, 416, 234, "h264"),
        (400, 640, 360, "h264"),
        (700, 768, 432, "h264"),
        (1200, 960, 540, "h264"),
        (2000, 1280, 720, "h264"),
    ],
    "premium": [
        (2500, 854, 480, "h264"),
        (5000, 1280, 720, "h264"),
        (15000, 1920, 1080, "h264"),
        (25000, 3840, 2160, "hevc"),
    ],
}
BUILTIN_SEGMENTS = {"hls": (6.0, 100), "mobile": (2.0, 300), "premium": (4.0, 150)}

RUNG = "[[rungs]]\nbitrate_bps = {}\n"
TOML_OK = "segment_duration_s = 2.0\nsegment_count = 3\n" + RUNG.format(1000) + RUNG.format(3000)
CSV_OK = "chunk_index,kbps_1,kbps_3\n0,100,300\n1,110,330\n"
SABRE_OK = {"segment_duration_ms": 2000, "bitrates_kbps": [1, 3], "segment_sizes_bits": [[800, 2400]]}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- built-in ladders -------------------------------------------------------


def test_available_ladders_are_sorted_builtin_names() -> None:
    assert available_ladders() == ["hls", "mobile", "premium"]


@pytest.mark.parametrize("name", sorted(BUILTIN_RUNGS))
def test_builtin_ladder_has_stated_rungs_and_cbr_sizes(name: str) -> None:
    ladder = load_ladder(name)
    assert ladder.name == name
    assert ladder.description
    got = [(r.bitrate_bps / 1000, r.width, r.height, r.codec) for r in ladder.rungs]
    assert got == BUILTIN_RUNGS[name]
    duration_s, count = BUILTIN_SEGMENTS[name]
    assert (ladder.segment_duration_s, ladder.segment_count) == (duration_s, count)
    assert ladder.duration_s == 600.0
    expected = np.tile(ladder.bitrates_bps * duration_s, (count, 1))
    np.testing.assert_array_equal(ladder.size_bits, expected)
    assert ladder.quality is None


def test_cbr_sizes_are_bitrate_times_duration() -> None:
    ladder = Ladder.cbr([Rung(1e6), Rung(2e6)], 4.0, 3)
    np.testing.assert_array_equal(ladder.size_bits, [[4e6, 8e6]] * 3)


def test_unknown_name_lists_available_ladders() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_ladder("nosuch")
    assert info.value.choices == ("hls", "mobile", "premium")
    assert str(info.value) == "unknown ladder 'nosuch'; expected one of: hls, mobile, premium"


# --- readers on small files ---------------------------------------------------


def test_read_ladder_toml_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "tiny.toml", "segment_duration_s = 4\n" + RUNG.format("500_000"))
    ladder = read_ladder_toml(path)
    assert ladder.name == "tiny"
    assert ladder.description == ""
    assert ladder.rungs == (Rung(500_000.0),)
    assert ladder.segment_count == 150
    np.testing.assert_array_equal(ladder.size_bits, np.full((150, 1), 2e6))


def test_read_ladder_toml_all_keys(tmp_path: Path) -> None:
    text = (
        'name = "x"\ndescription = "d"\nsegment_duration_s = 2.0\nsegment_count = 3\n'
        '[[rungs]]\nbitrate_bps = 1000\nwidth = 320\nheight = 180\ncodec = "av1"\n'
    )
    ladder = read_ladder_toml(write(tmp_path, "a.toml", text))
    assert (ladder.name, ladder.description) == ("x", "d")
    assert ladder.rungs == (Rung(1000.0, 320, 180, "av1"),)
    np.testing.assert_array_equal(ladder.size_bits, [[2000.0]] * 3)


def test_read_ladder_toml_with_csv_sizes_and_quality(tmp_path: Path) -> None:
    write(tmp_path, "sizes.csv", CSV_OK)
    write(tmp_path, "q.csv", "chunk_index,kbps_1,kbps_3\n0,0,50.5\n1,10,60\n")
    text = TOML_OK.replace("segment_count = 3\n", 'sizes = "sizes.csv"\nquality = "q.csv"\n')
    ladder = read_ladder_toml(write(tmp_path, "t.toml", text))
    np.testing.assert_array_equal(ladder.size_bits, [[800, 2400], [880, 2640]])
    np.testing.assert_array_equal(ladder.quality, [[0, 50.5], [10, 60]])
    assert ladder.segment_duration_s == 2.0


def test_read_ladder_toml_with_sabre_sizes_and_no_rungs(tmp_path: Path) -> None:
    write(tmp_path, "movie.json", json.dumps(SABRE_OK))
    ladder = read_ladder_toml(write(tmp_path, "t.toml", 'segment_duration_s = 2\nsizes = "movie.json"\n'))
    assert ladder.rungs == (Rung(1000.0), Rung(3000.0))
    np.testing.assert_array_equal(ladder.size_bits, [[800, 2400]])
    assert ladder.name == "t"


def test_read_sabre_movie(tmp_path: Path) -> None:
    ladder = read_sabre_movie(write(tmp_path, "movie.json", json.dumps(SABRE_OK)))
    assert ladder.rungs == (Rung(1000.0), Rung(3000.0))
    assert ladder.segment_duration_s == 2.0
    assert ladder.name == "movie"
    np.testing.assert_array_equal(ladder.size_bits, [[800, 2400]])


def test_read_size_csv_converts_bytes_to_bits(tmp_path: Path) -> None:
    path = write(tmp_path, "sizes.csv", CSV_OK + "\n")
    before = path.read_bytes()
    ladder = read_size_csv(path, 2.0)
    assert path.read_bytes() == before
    assert ladder.rungs == (Rung(1000.0), Rung(3000.0))
    assert ladder.name == "sizes"
    np.testing.assert_array_equal(ladder.size_bits, [[800, 2400], [880, 2640]])
    assert read_size_csv(path, 2.0, name="clip").name == "clip"


def test_load_ladder_dispatches_on_suffix(tmp_path: Path) -> None:
    assert load_ladder(write(tmp_path, "a.toml", TOML_OK)).segment_count == 3
    assert load_ladder(str(write(tmp_path, "b.json", json.dumps(SABRE_OK)))).segment_count == 1
    assert load_ladder(write(tmp_path, "c.csv", CSV_OK), segment_duration_s=2.0).segment_count == 2


@pytest.mark.parametrize(
    ("name", "text", "segment_duration_s", "expected"),
    [
        ("c.csv", CSV_OK, None, "give --segment-duration-s"),
        ("a.toml", TOML_OK, 4.0, "size .csv ladders only"),
        ("x.txt", "hello", None, "unsupported ladder file type '.txt'"),
    ],
)
def test_load_ladder_rejects(
    tmp_path: Path, name: str, text: str, segment_duration_s: float | None, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as info:
        load_ladder(path, segment_duration_s)
    assert name in str(info.value)
    assert expected in str(info.value)


# --- bad input: every message names the file and the line or key -----------


BAD_TOML = [
    ("", "the file is empty"),
    ("segment_duration_s = \n", ":1: invalid TOML"),
    (TOML_OK + "bitrate_kbps = 5\n", "field 'rungs[1].bitrate_kbps': unknown key"),
    ("colour = 1\n" + TOML_OK, "field 'colour': unknown key"),
    (TOML_OK.replace("segment_duration_s = 2.0\n", ""), "field 'segment_duration_s': missing key"),
    ("segment_duration_s = 2.0\n", "field 'rungs': missing key"),
    ("segment_duration_s = 2.0\nrungs = []\n", "field 'rungs': expected at least one"),
    (TOML_OK.replace("2.0", '"2"'), "field 'segment_duration_s': expected a number, found str '2'"),
    (TOML_OK.replace("2.0", "true"), "field 'segment_duration_s': expected a number, found bool"),
    (TOML_OK.replace("2.0", "nan"), "field 'segment_duration_s': expected a finite number > 0, found nan"),
    (TOML_OK.replace("2.0", "-1.0"), "field 'segment_duration_s': expected a finite number > 0"),
    (TOML_OK.replace("= 3\n", "= 2.5\n"), "field 'segment_count': expected an integer, found float"),
    (TOML_OK.replace("= 3\n", "= 0\n"), "field 'segment_count': expected an integer >= 1"),
    (TOML_OK.replace("= 1000", "= 0"), "field 'rungs[0].bitrate_bps': expected a finite number > 0"),
    (
        TOML_OK.replace("= 3000", "= 1000"),
        "field 'rungs[1].bitrate_bps': bitrates must be strictly increasing",
    ),
    (TOML_OK + "width = -5\n", "field 'rungs[1].width': expected an integer > 0"),
    (TOML_OK + "codec = 264\n", "field 'rungs[1].codec': expected a string, found int"),
    ("name = 3\n" + TOML_OK, "field 'name': expected a string"),
    ("rungs = 3\nsegment_duration_s = 1\n", "field 'rungs': expected an array"),
    ("segment_duration_s = 1\nrungs = [1]\n", "field 'rungs[0]': expected a table"),
    ('sizes = "nope.csv"\n' + TOML_OK, "field 'sizes': file"),
    ('sizes = "bad.txt"\n' + TOML_OK, "field 'sizes': unsupported size table"),
    (
        'sizes = "other.csv"\n' + TOML_OK.replace("segment_count = 3\n", ""),
        "field 'sizes': the size table has [1, 2] kbit/s, the rungs have [1, 3]",
    ),
    ('sizes = "sizes.csv"\n' + TOML_OK, "field 'segment_count': is 3 but the size table has 2 segments"),
    (
        'sizes = "movie.json"\n' + TOML_OK.replace("2.0", "4.0").replace("segment_count = 3\n", ""),
        "field 'segment_duration_s': is 4 s but the Sabre file",
    ),
    ('quality = "q.csv"\n' + TOML_OK, "q.csv:2, field 'kbps_1': expected a finite number"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_TOML)
def test_read_ladder_toml_rejects(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "sizes.csv", CSV_OK)
    write(tmp_path, "other.csv", CSV_OK.replace("kbps_3", "kbps_2"))
    write(tmp_path, "bad.txt", CSV_OK)
    write(tmp_path, "q.csv", "chunk_index,kbps_1,kbps_3\n0,nan,1\n1,2,3\n0,0,0\n")
    write(tmp_path, "movie.json", json.dumps(SABRE_OK))
    path = write(tmp_path, "ladder.toml", text)
    with pytest.raises(InputError) as info:
        read_ladder_toml(path)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message
    assert "ladder.toml" in message or "q.csv" in message


BAD_CSV = [
    ("", None, None, "the file is empty"),
    ("chunk,kbps_1\n0,1\n", 1, None, "bad header 'chunk,kbps_1'"),
    ("chunk_index\n0\n", 1, None, "bad header"),
    ("chunk_index,rate_1\n0,1\n", 1, "rate_1", "bad column name 'rate_1'"),
    ("chunk_index,kbps_x\n0,1\n", 1, "kbps_x", "expected a finite number > 0, found 'x'"),
    ("chunk_index,kbps_3,kbps_1\n0,1,2\n", 1, "kbps_1", "bitrates must be strictly increasing"),
    ("chunk_index,kbps_1,kbps_3\n", 1, None, "no data rows"),
    (CSV_OK + "2,1\n", 4, None, "found 2 cells, expected 3"),
    (CSV_OK + "3,1,2\n", 4, "chunk_index", "expected chunk index 2"),
    ("chunk_index,kbps_1\n1,5\n", 2, "chunk_index", "expected chunk index 0"),
    (CSV_OK + "2,abc,5\n", 4, "kbps_1", "expected a finite number > 0, found 'abc'"),
    (CSV_OK + "2,NaN,5\n", 4, "kbps_1", "found 'NaN'"),
    (CSV_OK + "2,5,0\n", 4, "kbps_3", "found '0'"),
    (CSV_OK + "2,5,-3\n", 4, "kbps_3", "found '-3'"),
    (CSV_OK + "2,5,\n", 4, "kbps_3", "found ''"),
]


@pytest.mark.parametrize(("text", "line", "field", "expected"), BAD_CSV)
def test_read_size_csv_rejects(
    tmp_path: Path, text: str, line: int | None, field: str | None, expected: str
) -> None:
    path = write(tmp_path, "sizes.csv", text)
    with pytest.raises(InputError) as info:
        read_size_csv(path, 2.0)
    message = str(info.value)
    assert message.startswith(str(path) if line is None else f"{path}:{line}")
    assert (info.value.line, info.value.field) == (line, field)
    if field is not None:
        assert f"field {field!r}" in message
    assert expected in message


@pytest.mark.parametrize(
    ("quality", "expected"),
    [
        ("chunk_index,kbps_1,kbps_2\n0,1,2\n1,1,2\n", "q.csv:1: columns are [1, 2] kbit/s, expected [1, 3]"),
        ("chunk_index,kbps_1,kbps_3\n0,1,2\n", "q.csv: has 1 chunks, the size table has 2"),
        ("chunk_index,kbps_1,kbps_3\n0,1,2\n1,inf,2\n", "q.csv:3, field 'kbps_1': expected a finite number,"),
    ],
)
def test_read_size_csv_rejects_quality(tmp_path: Path, quality: str, expected: str) -> None:
    sizes = write(tmp_path, "sizes.csv", CSV_OK)
    with pytest.raises(InputError) as info:
        read_size_csv(sizes, 2.0, quality_path=write(tmp_path, "q.csv", quality))
    assert expected in str(info.value)


def test_read_size_csv_rejects_bad_duration(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"sizes\.csv, field 'segment_duration_s'.*got -1"):
        read_size_csv(write(tmp_path, "sizes.csv", CSV_OK), -1)


BAD_SABRE = [
    ("", None, None, "the file is empty"),
    ('{"segment_duration_ms": 1,\n  oops}', 2, None, "invalid JSON"),
    ("[1, 2]", 1, None, "expected a JSON object"),
    (json.dumps({**SABRE_OK, "bitrates_kbps": None}), None, "bitrates_kbps", "expected an array"),
    (
        json.dumps({k: v for k, v in SABRE_OK.items() if k != "segment_sizes_bits"}),
        None,
        "segment_sizes_bits",
        "missing key",
    ),
    (
        json.dumps({**SABRE_OK, "segment_duration_ms": "2000"}),
        None,
        "segment_duration_ms",
        "expected a number",
    ),
    (json.dumps({**SABRE_OK, "segment_duration_ms": 0}), None, "segment_duration_ms", "> 0, found 0"),
    (json.dumps({**SABRE_OK, "bitrates_kbps": [3, 1]}), None, "bitrates_kbps[1]", "strictly increasing"),
    (json.dumps({**SABRE_OK, "bitrates_kbps": [1, True]}), None, "bitrates_kbps[1]", "found bool True"),
    (json.dumps({**SABRE_OK, "segment_sizes_bits": []}), None, "segment_sizes_bits", "at least one segment"),
    (
        json.dumps({**SABRE_OK, "segment_sizes_bits": [[1, 2, 3]]}),
        None,
        "segment_sizes_bits[0]",
        "found 3 sizes",
    ),
    (json.dumps({**SABRE_OK, "segment_sizes_bits": [5]}), None, "segment_sizes_bits[0]", "expected an array"),
    (
        json.dumps({**SABRE_OK, "segment_sizes_bits": [[1, 2], [3, -4]]}),
        None,
        "segment_sizes_bits[1][1]",
        "expected a finite number > 0, found -4",
    ),
    (
        json.dumps({**SABRE_OK, "segment_sizes_bits": [[1, 2], [3, float("nan")]]}),
        None,
        "segment_sizes_bits[1][1]",
        "found nan",
    ),
    (json.dumps({**SABRE_OK, "segment_duration_ms": 2e9}), None, "segment_duration_ms",
     "found 2e+09 ms; expected milliseconds at most 1e+09"),
]


@pytest.mark.parametrize(("text", "line", "field", "expected"), BAD_SABRE)
def test_read_sabre_movie_rejects(
    tmp_path: Path, text: str, line: int | None, field: str | None, expected: str
) -> None:
    path = write(tmp_path, "movie.json", text)
    with pytest.raises(InputError) as info:
        read_sabre_movie(path)
    message = str(info.value)
    assert message.startswith(str(path) if line is None else f"{path}:{line}")
    assert (info.value.line, info.value.field) == (line, field)
    assert expected in message


@pytest.mark.parametrize(
    "reader",
    [read_ladder_toml, read_sabre_movie, lambda path: read_size_csv(path, 1.0), load_ladder],
)
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(InputError, match=f"^{path}: file not found$"):
        reader(path)


def test_load_ladder_missing_toml_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_ladder(str(tmp_path / "nosuch.toml"))


# --- the Ladder constructor ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rungs": ()}, "at least one rung"),
        ({"rungs": (Rung(2e6), Rung(1e6))}, "strictly increasing: rung 1 has 1e+06"),
        ({"segment_duration_s": 0.0}, '"segment_duration_s" must be seconds > 0 and at most 1e+06'),
        ({"segment_duration_s": 1e9}, "at most 1e+06 (about 11.6 days), got 1000000000.0"),
        ({"size_bits": np.ones((2, 3))}, "shape (segments >= 1, 2), got (2, 3)"),
        ({"size_bits": np.zeros((0, 2))}, "got (0, 2)"),
        ({"size_bits": [[1.0, 2.0], [1.0, np.nan]]}, "segment 1 rung 1 is nan"),
        ({"size_bits": [[1.0, 0.0]]}, "segment 0 rung 1 is 0.0"),
        ({"quality": np.ones((1, 2))}, '"quality" must have shape (2, 2)'),
        ({"quality": [[1.0, np.inf], [1.0, 1.0]]}, '"quality" must be finite'),
    ],
)
def test_ladder_validation(kwargs: dict, expected: str) -> None:
    args = {"rungs": (Rung(1e6), Rung(2e6)), "segment_duration_s": 2.0, "size_bits": np.ones((2, 2))}
    with pytest.raises(ValueError, match=re.escape(expected)):
        Ladder(**{**args, **kwargs})


@pytest.mark.parametrize("bitrate_bps", [0.0, -1.0, np.nan, np.inf, 1.1e12, 1e308])
def test_rung_validation(bitrate_bps: float) -> None:
    # Above 1 Tbit/s (the fastest trace) too: 1e308 bit/s made segment sizes overflow (fuzz, seed 24).
    with pytest.raises(ValueError, match=r'"bitrate_bps" must be > 0 and at most 1e\+12 \(1 Tbit/s'):
        Rung(bitrate_bps)
    assert Rung(1e12).bitrate_bps == 1e12


def test_ladder_copies_and_freezes_inputs() -> None:
    sizes = np.ones((2, 1))
    ladder = Ladder((Rung(1.0),), 1.0, sizes)
    sizes[0, 0] = 5.0
    assert ladder.size_bits[0, 0] == 1.0
    assert not ladder.size_bits.flags.writeable


# --- the shared real-world tables -------------------------------------------


@pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared videos folder not present")
def test_read_bbb_sabre_csv() -> None:
    ladder = read_size_csv(VIDEOS / "bbb_sabre" / "chunk_sizes.csv", 3.0)
    assert ladder.segment_count == 199
    assert ladder.rung_count == 10
    assert ladder.bitrates_bps[0] == 230_000
    assert ladder.bitrates_bps[-1] == 6_000_000
    assert ladder.size_bits[0, 0] == 886_360  # 110795 bytes
    assert ladder.quality is None


@pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared videos folder not present")
def test_read_envivio_csv_with_vmaf() -> None:
    folder = VIDEOS / "envivio"
    ladder = read_size_csv(folder / "chunk_sizes.csv", 4.0, quality_path=folder / "vmaf.csv")
    assert ladder.rung_count == 6
    assert ladder.segment_count == 49
    np.testing.assert_array_equal(ladder.bitrates_bps / 1000, [300, 750, 1200, 1850, 2850, 4300])
    assert ladder.size_bits[0, 0] == 181_801 * 8
    assert ladder.quality is not None
    assert ladder.quality.shape == (49, 6)
    assert ladder.quality[0, 0] == pytest.approx(28.809932)
    assert load_ladder(folder / "chunk_sizes.csv", segment_duration_s=4.0).segment_count == 49


@pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared videos folder not present")
def test_read_bbb4k_sabre_csv() -> None:
    ladder = read_size_csv(VIDEOS / "bbb4k_sabre" / "chunk_sizes.csv", 3.0)
    assert (ladder.segment_count, ladder.rung_count) == (199, 6)
    np.testing.assert_array_equal(ladder.bitrates_bps / 1000, [1000, 2500, 5000, 8000, 16000, 35000])


# ------------------------------------------------------------- rungs, quality range, TOML keys



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frame_rate_hz": 0.0}, '"frame_rate_hz" must be finite and > 0'),
        ({"width": 0}, '"width" must be an integer > 0'),
        ({"height": 720.5}, '"height" must be an integer > 0'),
    ],
)
def test_rung_validates(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Rung(1e6, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.5, 100.5])
def test_ladder_quality_must_be_within_0_and_100(bad: float) -> None:
    with pytest.raises(ValueError, match=f"within 0 to 100, segment 1 rung 0 is {bad}"):
        Ladder((Rung(1e6),), 2.0, [[2e6], [2e6]], quality=[[50.0], [bad]])


def test_quality_csv_outside_0_100_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "sizes.csv", CSV_OK)
    write(tmp_path, "q.csv", "chunk_index,kbps_1,kbps_3\n0,10,20\n1,30,101\n")
    toml = write(tmp_path, "l.toml", 'segment_duration_s = 2.0\nsizes = "sizes.csv"\nquality = "q.csv"\n')
    expected = r"q.csv:3, field 'kbps_3': expected a quality score within 0 to 100"
    with pytest.raises(InputError, match=expected):
        read_ladder_toml(toml)


def test_toml_frame_rate_and_per_rung_quality(tmp_path: Path) -> None:
    text = ("segment_duration_s = 2.0\nsegment_count = 3\n"
            "[[rungs]]\nbitrate_bps = 1000\nframe_rate_hz = 29.97\nquality = 40\n"
            "[[rungs]]\nbitrate_bps = 3000\nquality = 80.5\n")
    ladder = read_ladder_toml(write(tmp_path, "l.toml", text))
    assert ladder.rungs[0].frame_rate_hz == 29.97
    np.testing.assert_array_equal(ladder.quality, [[40, 80.5]] * 3)


def test_toml_size_and_quality_models(tmp_path: Path) -> None:
    text = ('segment_duration_s = 4.0\nsegment_count = 50\nsize_model = "vbr"\nsize_seed = 5\n'
            'quality_model = "vmaf"\ntitle_complexity = 1.5\n'
            '[[rungs]]\nbitrate_bps = 800_000\nheight = 360\n'
            '[[rungs]]\nbitrate_bps = 3_000_000\nwidth = 1280\nheight = 720\ncodec = "hevc"\n')
    ladder = read_ladder_toml(write(tmp_path, "m.toml", text))
    expected = vbr_size_bits([800e3, 3e6], 4.0, 50, np.random.default_rng(5))
    assert ladder.size_bits.tobytes() == expected.tobytes()
    np.testing.assert_allclose(ladder.size_bits.mean(axis=0), [3.2e6, 12e6])
    model = RateQualityModel()
    np.testing.assert_allclose(ladder.quality[0], [
        model.quality(800e3, None, 360, 30, "h264", complexity=1.5),
        model.quality(3e6, 1280, 720, 30, "hevc", complexity=1.5),
    ])
    fixed = read_ladder_toml(write(tmp_path, "f.toml", text.replace("size_seed = 5", "size_seed = 5\n"
                                                                  "size_variation = 0.0")))
    np.testing.assert_allclose(fixed.size_bits, cbr_size_bits([800e3, 3e6], 4.0, 50))


MODEL_TOML_ERRORS = [
    ('sizes = "s.csv"\nsize_model = "vbr"\n',
     "field 'size_model': give either a sizes table or a size_model"),
    ('size_model = "abr"\n', "field 'size_model': unknown size model 'abr'; expected one of: cbr, vbr"),
    ("size_seed = 3\n", "field 'size_seed': applies to size_model = \"vbr\" only"),
    ('size_model = "vbr"\nsize_seed = -1\n', "field 'size_seed': expected an integer >= 0"),
    ('size_model = "vbr"\nsize_variation = -0.1\n', "field 'size_variation'"),
    ('quality_model = "psnr"\n', "field 'quality_model': unknown quality model 'psnr'"),
    ("title_complexity = 2\n", "field 'title_complexity': applies with a quality_model only"),
    ('quality_model = "vmaf"\n', "field 'rungs[0].height': missing key; the quality model needs"),
    ('quality_model = "vmaf"\ntitle_complexity = 0\n',
     "field 'title_complexity': expected a finite number > 0"),
]


@pytest.mark.parametrize(("keys", "expected"), [
    ("segment_duration_s = 1e9\n",
     "field 'segment_duration_s': found 1e+09; expected seconds > 0 and at most 1e+06"),
    ("segment_duration_s = 1e-9\n", "field 'segment_duration_s': is 1e-09 s, so the lowest rung's segments "
                                    "(100000 bit/s) hold 0.0001 bits; expected at least one bit"),
    ("segment_duration_s = 4\n[[rungs]]\nbitrate_bps = 0.1\n",
     "field 'rungs[0].bitrate_bps': is 0.1 bit/s, so its segments of 4 s hold 0.4 bits"),
    ('segment_duration_s = 4\nsize_model = "vbr"\nsize_variation = 100\n',
     "field 'size_variation': the VBR sizes drawn with size_variation = 100 go down to"),
])
def test_toml_sizes_name_the_key_that_made_them(tmp_path: Path, keys: str, expected: str) -> None:
    path = write(tmp_path, "l.toml", keys + "[[rungs]]\nbitrate_bps = 1e5\n")
    with pytest.raises(InputError) as exc:
        read_ladder_toml(path)
    assert str(exc.value).startswith(f"{path}, {expected}")
    assert '"size_bits"' not in str(exc.value)


def test_a_size_csv_segment_duration_is_at_most_a_million_seconds(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", CSV_OK)
    with pytest.raises(InputError, match=r"s.csv, field '--segment-duration-s': found 1e\+12; expected "
                                         r"seconds > 0 and at most 1e\+06"):
        load_ladder(path, segment_duration_s=1e12)
    assert load_ladder(path, segment_duration_s=1e6).segment_duration_s == 1e6
    from abrsim.cli import cli

    out = tmp_path / "new" / "p.toml"
    result = CliRunner().invoke(cli, ["ladders", "pertitle", "-o", str(out), "--rungs", "3",
                                      "--segment-duration-s", "1e12", "--duration-s", "1e13"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("abrsim: error: field '--segment-duration-s': found 1e+12; expected "
                                     "seconds > 0 and at most 1e+06 (about 11.6 days)")
    assert not (tmp_path / "new").exists()  # refused before its folder was made


@pytest.mark.parametrize(("prefix", "expected"), MODEL_TOML_ERRORS)
def test_toml_model_key_errors(tmp_path: Path, prefix: str, expected: str) -> None:
    write(tmp_path, "s.csv", CSV_OK)
    path = write(tmp_path, "l.toml", prefix + TOML_OK)
    with pytest.raises(InputError) as exc:
        read_ladder_toml(path)
    assert expected in str(exc.value)
    assert "l.toml" in str(exc.value)


@pytest.mark.parametrize(
    ("rungs", "expected"),
    [
        ("[[rungs]]\nbitrate_bps = 1\nquality = 50\n[[rungs]]\nbitrate_bps = 2\n",
         "field 'rungs[1].quality': missing key; a per-rung quality must be given on every rung"),
        ("[[rungs]]\nbitrate_bps = 1\nquality = 101\n", "field 'rungs[0].quality': expected a quality score"),
        ("[[rungs]]\nbitrate_bps = 1\nframe_rate_hz = 0\n", "field 'rungs[0].frame_rate_hz'"),
    ],
)
def test_toml_rung_errors(tmp_path: Path, rungs: str, expected: str) -> None:
    with pytest.raises(InputError, match=re.escape(expected)):
        read_ladder_toml(write(tmp_path, "l.toml", "segment_duration_s = 2.0\n" + rungs))


def test_toml_two_quality_sources(tmp_path: Path) -> None:
    rungs = TOML_OK.replace("bitrate_bps = 1000\n", "bitrate_bps = 1000\nquality = 5\n")
    text = 'quality_model = "vmaf"\n' + rungs
    with pytest.raises(InputError, match="quality is given by both quality_model and rungs"):
        read_ladder_toml(write(tmp_path, "l.toml", text))


# -------------------------------------------------------------------------------- writer


def same_ladder(a: Ladder, b: Ladder) -> None:
    assert a.rungs == b.rungs
    assert a.segment_duration_s == b.segment_duration_s
    assert a.size_bits.tobytes() == b.size_bits.tobytes()
    assert (a.quality is None) == (b.quality is None)
    if a.quality is not None:
        assert a.quality.tobytes() == b.quality.tobytes()
    assert (a.name, a.description) == (b.name, b.description)


def test_write_ladder_toml_round_trips(tmp_path: Path, vbr_ladder: Ladder) -> None:
    rungs = (Rung(145e3, 416, 234, "h264", 29.97), Rung(2.5e6 + 1 / 3, 1280, 720, "hevc"))
    cbr = Ladder.cbr(rungs, 6.0, 7, name='odd "name"')
    paths = write_ladder_toml(cbr, tmp_path / "cbr.toml")
    assert [p.name for p in paths] == ["cbr.toml"]
    same_ladder(read_ladder_toml(paths[0]), cbr)

    paths = write_ladder_toml(vbr_ladder, tmp_path / "vbr.toml")
    assert [p.name for p in paths] == ["vbr.toml", "vbr.sizes.csv"]
    same_ladder(read_ladder_toml(paths[0]), vbr_ladder)

    rng = np.random.default_rng(3)
    scores = rng.uniform(0, 100, vbr_ladder.size_bits.shape)
    with_table = Ladder(vbr_ladder.rungs, 3.0, vbr_ladder.size_bits, scores, name="q", description="table")
    paths = write_ladder_toml(with_table, tmp_path / "q.toml")
    assert [p.name for p in paths] == ["q.toml", "q.sizes.csv", "q.quality.csv"]
    same_ladder(read_ladder_toml(paths[0]), with_table)

    per_rung = Ladder(rungs, 6.0, cbr.size_bits, np.tile([30.5, 90.25], (7, 1)), name="p")
    paths = write_ladder_toml(per_rung, tmp_path / "p.toml")
    assert "quality = 90.25" in paths[0].read_text()
    same_ladder(read_ladder_toml(paths[0]), per_rung)
    with pytest.raises(ValueError, match='"size_model" must be one of cbr, vbr or None'):
        write_ladder_toml(cbr, tmp_path / "x.toml", size_model="table")


# -------------------------------------------------------------------------- encoding models


def test_codec_family() -> None:
    assert codec_family("avc1.64001f") == "h264"
    assert codec_family("mp4a.40.2, hev1.1.6.L93.B0") == "hevc"
    assert codec_family("vp09.00.10.08") == "vp9"
    assert codec_family("dvh1.05.06") == "dvh1"
    assert codec_family("mp4a.40.2,ec-3") == ""
    assert set(CODEC_EFFICIENCY) >= {"h264", "hevc", "vp9", "av1"}


def test_vbr_sizes_have_the_calibrated_shape() -> None:
    model = VbrModel(variation=0.2)
    sizes = vbr_size_bits(np.geomspace(300e3, 6e6, 8), 4.0, 20_000, np.random.default_rng(9), model)
    np.testing.assert_allclose(sizes.mean(axis=0), np.geomspace(300e3, 6e6, 8) * 4.0, rtol=1e-12)
    logs = np.log(sizes / sizes.mean(axis=0))
    assert np.all(np.abs(logs.std(axis=0) - 0.2) < 0.01)
    adjacent = [np.corrcoef(logs[:, k], logs[:, k + 1])[0, 1] for k in range(7)]
    assert np.allclose(adjacent, 0.87, atol=0.02)
    assert np.corrcoef(logs[:, 0], logs[:, 7])[0, 1] == pytest.approx(0.87**7, abs=0.03)
    lag1 = [np.corrcoef(logs[:-1, k], logs[1:, k])[0, 1] for k in range(8)]
    assert np.allclose(lag1, -0.3, atol=0.03)


def test_vbr_title_variation_is_drawn_per_title() -> None:
    spreads = [np.log(s / s.mean(axis=0)).std() for s in
               (vbr_size_bits([1e6, 2e6], 2.0, 500, np.random.default_rng(seed)) for seed in range(40))]
    assert 0.08 < np.median(spreads) < 0.2
    assert max(spreads) / min(spreads) > 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variation": -0.1}, '"variation"'),
        ({"rung_correlation": 1.5}, '"rung_correlation"'),
        ({"segment_autocorrelation": 1.0}, '"segment_autocorrelation"'),
        ({"median_variation": 0.0}, '"median_variation"'),
    ],
)
def test_vbr_model_validates(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VbrModel(**kwargs)


def test_vbr_size_bits_validates() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match='"bitrates_bps"'):
        vbr_size_bits([0.0], 2.0, 3, rng)
    with pytest.raises(ValueError, match='"segment_count"'):
        vbr_size_bits([1e6], 2.0, 0, rng)
    with pytest.raises(ValueError, match='"segment_duration_s"'):
        vbr_size_bits([1e6], 0.0, 3, rng)


def test_rate_quality_model_shape() -> None:
    model = RateQualityModel()
    bitrates = np.geomspace(100e3, 20e6, 50)
    for height in (234, 360, 540, 720, 1080):
        curve = model.quality(bitrates, None, height)
        assert np.all(np.diff(curve) >= 0)
        assert curve.min() >= 0 and curve.max() <= model.ceiling(height) <= 100
    assert float(model.ceiling(1080)) == 100.0 and float(model.ceiling(2160)) == 100.0
    # curves cross: 360p beats 1080p at 400 kbit/s, 1080p wins at 6 Mbit/s
    assert model.quality(400e3, 640, 360) > model.quality(400e3, 1920, 1080)
    assert model.quality(6e6, 1920, 1080) > model.quality(6e6, 640, 360)
    # HEVC at b looks like H.264 at 1.6 b; a harder title needs proportionally more bits
    assert model.quality(2e6, None, 720, codec="hevc") == pytest.approx(model.quality(3.2e6, None, 720))
    assert model.quality(2e6, None, 720, complexity=2.0) == pytest.approx(model.quality(1e6, None, 720))
    with pytest.raises(ValueError, match="no efficiency for codec 'mpeg2'"):
        model.quality(1e6, None, 720, codec="mpeg2")
    with pytest.raises(ValueError, match='"bitrate_bps" must be finite and > 0'):
        model.quality(0.0, None, 720)
    with pytest.raises(ValueError, match='"shape" must be finite and > 0'):
        RateQualityModel(shape=0.0)


def test_rate_quality_model_fits_envivio() -> None:
    """The calibration (tools/fit_quality_model.py): rung means within 1.5 VMAF RMSE."""
    folder = VIDEOS / "envivio"
    if not folder.is_dir():
        pytest.skip("shared videos not present")
    vmaf = read_size_csv(folder / "chunk_sizes.csv", 4.0, quality_path=folder / "vmaf.csv").quality
    widths, heights = [320, 640, 768, 1024, 1280, 1920], [180, 360, 432, 576, 720, 1080]
    bitrates = [300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3]
    predicted = RateQualityModel().quality(
        np.array(bitrates), np.array(widths), np.array(heights), 30000 / 1001
    )
    rmse = float(np.sqrt(np.mean((predicted - vmaf[:48].mean(axis=0)) ** 2)))
    assert rmse < 1.5, rmse


def test_model_quality_per_rung() -> None:
    rungs = [Rung(500e3, 640, 360), Rung(3e6, 1280, 720, "hevc", 60.0)]
    quality = model_quality(rungs, 4)
    assert quality.shape == (4, 2)
    assert np.all(quality[0] == quality[3])
    varied = model_quality(rungs, 4, segment_complexity=[1.0, 2.0, 0.5, 1.0])
    assert varied[1, 0] < varied[0, 0] < varied[2, 0]
    with pytest.raises(ValueError, match=r"rung 0 \(h264 500k\) has no height"):
        model_quality([Rung(500e3)], 4)
    with pytest.raises(ValueError, match="rung 0 .*no efficiency for codec 'mpeg2'"):
        model_quality([Rung(500e3, 640, 360, "mpeg2")], 4)


# ------------------------------------------------------------------------- per-title ladder


def naive_upper_hull(rates: list[float], scores: list[float]) -> set[tuple[float, float]]:
    """Points (best per bitrate) up to the best that no chord between two others passes above."""
    best: dict[float, float] = {}
    for r, q in zip(rates, scores):
        best[r] = max(best.get(r, -np.inf), q)
    points = sorted(best.items())
    top = max(points, key=lambda p: (p[1], -p[0]))
    hull = set()
    for r, q in points:
        if r > top[0]:
            continue
        above = False
        for ra, qa in points:
            for rb, qb in points:
                if ra < r < rb and qa + (qb - qa) * (r - ra) / (rb - ra) >= q - 1e-9 * max(1.0, abs(q)):
                    above = True
        if not above:
            hull.add((r, q))
    return hull


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(0, 100)), min_size=1, max_size=25))
def test_upper_convex_hull_matches_a_naive_twin(points: list[tuple[int, int]]) -> None:
    rates = [float(r) for r, _ in points]
    scores = [float(q) for _, q in points]
    index = upper_convex_hull(rates, scores)
    got = {(rates[i], scores[i]) for i in index}
    assert got == naive_upper_hull(rates, scores)
    assert np.all(np.diff(np.array(rates)[index]) > 0)


def test_select_rungs() -> None:
    rates = np.geomspace(100e3, 10e6, 40)
    scores = np.linspace(10, 96, 40)
    chosen = select_rungs(rates, scores, rung_count=6)
    assert chosen[0] == 0 and chosen[-1] == 39 and len(set(chosen)) == 6
    ratios = np.diff(np.log(rates[chosen]))
    assert np.allclose(ratios, ratios.mean(), rtol=0.15)  # log-even
    stepped = select_rungs(rates, scores, quality_step=15)
    assert np.all(np.diff(scores[stepped])[:-1] >= 15)
    assert stepped[-1] == 39
    assert select_rungs(rates[:3], scores[:3], rung_count=3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="only 3 points; expected at least 4"):
        select_rungs(rates[:3], scores[:3], rung_count=4)
    with pytest.raises(ValueError, match="exactly one of rung_count and quality_step"):
        select_rungs(rates, scores)


def test_pertitle_ladder_from_the_model() -> None:
    ladder = pertitle_ladder(rung_count=7, segment_count=20, name="t")
    assert ladder.rung_count == 7
    assert ladder.name == "t"
    heights = [r.height for r in ladder.rungs]
    assert heights == sorted(heights) and heights[0] < heights[-1]
    assert ladder.quality is not None
    assert np.all(np.diff(ladder.quality[0]) > 0)
    assert 95 <= ladder.quality[0, -1] < 100  # topped at the first hull point reaching 95
    harder = pertitle_ladder(rung_count=7, title_complexity=2.0, segment_count=20)
    assert harder.bitrates_bps[-1] > ladder.bitrates_bps[-1]  # a harder title needs more bits
    stepped = pertitle_ladder(quality_step=8, segment_count=20)
    assert np.all(np.diff(stepped.quality[0])[:-1] >= 8)
    vbr = pertitle_ladder(rung_count=4, size_model="vbr", size_seed=1, segment_count=30)
    np.testing.assert_allclose(vbr.size_bits.mean(axis=0), vbr.bitrates_bps * 4.0)


def test_pertitle_ladder_from_measured_curves(tmp_path: Path) -> None:
    csv_text = ("width,height,bitrate_kbps,quality,codec\n"
                "640,360,300,40,avc1.42e01e\n640,360,800,62,h264\n640,360,2000,70,h264\n"
                "1280,720,800,55,h264\n1280,720,2000,80,h264\n1280,720,4000,88,h264\n"
                "1920,1080,2000,75,h264\n1920,1080,4000,90,h264\n1920,1080,8000,96,h264\n")
    points = read_quality_curves(write(tmp_path, "curves.csv", csv_text))
    assert points.codec[0] == "h264"
    ladder = pertitle_ladder(points, quality_step=1, max_quality=None, segment_count=10)
    assert [(r.bitrate_bps, r.height) for r in ladder.rungs] == [
        (300e3, 360), (800e3, 360), (2000e3, 720), (4000e3, 1080), (8000e3, 1080)
    ]
    np.testing.assert_array_equal(ladder.quality[0], [40, 62, 80, 90, 96])
    expected = "field 'rung_count': the hull has only 5 points; expected at least 6"
    with pytest.raises(InputError, match=expected):
        pertitle_ladder(points, rung_count=6, max_quality=None)
    with pytest.raises(InputError, match="no candidate encode between"):
        pertitle_ladder(points, rung_count=2, min_bitrate_bps=9e6, max_bitrate_bps=1e7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("width,height,bitrate_kbps\n640,360,300\n", "curves.csv:1: missing column 'quality'"),
        ("width,height,bitrate_kbps,quality\n640,360,300,101\n",
         "curves.csv:2, field 'quality': expected a quality"),
        ("width,height,bitrate_kbps,quality\n640,360,0,50\n", "curves.csv:2, field 'bitrate_kbps'"),
        ("width,height,bitrate_kbps,quality\n640.5,360,10,50\n",
         "curves.csv:2, field 'width': expected an integer"),
        ("width,height,bitrate_kbps,quality\n", "curves.csv:1: no data rows"),
    ],
)
def test_read_quality_curves_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=re.escape(expected)):
        read_quality_curves(write(tmp_path, "curves.csv", text))


# ------------------------------------------------------------------------------------- CLI


def test_cli_ladders_list_and_show(tmp_path: Path) -> None:
    from abrsim.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["ladders", "list"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[2:]] == available_ladders()
    result = runner.invoke(cli, ["ladders", "show", "hls"])
    assert result.exit_code == 0, result.output
    assert "9 rungs, 100 segments of 6 s (600 s)" in result.output
    assert "1920x1080" in result.output
    result = runner.invoke(cli, ["ladders", "show", "nosuch"])
    assert result.exit_code == 2
    assert "unknown ladder 'nosuch'" in result.output
    one = write(tmp_path, "one.toml", "segment_duration_s = 4\nsegment_count = 1\n" + RUNG.format(1000))
    result = runner.invoke(cli, ["ladders", "show", str(one)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "1 rung, 1 segment of 4 s (4 s)"


def test_cli_ladders_pertitle(tmp_path: Path) -> None:
    from abrsim.cli import cli

    out = tmp_path / "pt" / "title.toml"
    result = CliRunner().invoke(cli, ["ladders", "pertitle", "-o", str(out), "--rungs", "6",
                                      "--title-complexity", "1.3", "--duration-s", "120"])
    assert result.exit_code == 0, result.output
    ladder = load_ladder(out)
    assert (ladder.rung_count, ladder.segment_count, ladder.name) == (6, 30, "title")
    assert ladder.quality is not None
    expected = pertitle_ladder(rung_count=6, title_complexity=1.3, segment_count=30, name="title")
    assert ladder.rungs == expected.rungs
    result = CliRunner().invoke(cli, ["ladders", "pertitle", "-o", str(out)])
    assert result.exit_code == 2
    assert "give exactly one of --rungs and --quality-step" in result.output
    result = CliRunner().invoke(cli, ["ladders", "pertitle", "-o", str(out), "--rungs", "3",
                                      "--resolutions", "1280by720"])
    assert result.exit_code == 2
    assert "expected WIDTHxHEIGHT" in result.output
