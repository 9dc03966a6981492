from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import (
    Ladder,
    Rung,
    available_ladders,
    load_ladder,
    read_ladder_toml,
    read_sabre_movie,
    read_size_csv,
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
        ("c.csv", CSV_OK, None, "give segment_duration_s"),
        ("a.toml", TOML_OK, 4.0, "CSV size tables only"),
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
        ({"segment_duration_s": 0.0}, '"segment_duration_s" must be finite and > 0, got 0.0'),
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


@pytest.mark.parametrize("bitrate_bps", [0.0, -1.0, np.nan, np.inf])
def test_rung_validation(bitrate_bps: float) -> None:
    with pytest.raises(ValueError, match='"bitrate_bps" must be finite and > 0'):
        Rung(bitrate_bps)


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
