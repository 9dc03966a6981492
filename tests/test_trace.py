from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abrsim.errors import InputError, UnknownNameError
from abrsim.trace import (
    MAX_BANDWIDTH_BPS,
    OUTAGE_THRESHOLD_BPS,
    TRACE_FORMATS,
    Trace,
    interval_means_bps,
    lag1_autocorrelation,
    load_trace,
    load_traces,
    read_abrsim_csv,
    read_mahimahi,
    read_pensieve_cooked,
    read_sabre_json,
    trace_stats,
    write_abrsim_csv,
    write_mahimahi,
    write_pensieve_cooked,
    write_sabre_json,
    write_trace,
)

SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
needs_shared = pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="shared traces not present")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_input_error(
    exc: pytest.ExceptionInfo[InputError], path: Path, line: int | None, text: str
) -> None:
    """The one-line message names the file, the line (when given) and what was expected."""
    message = str(exc.value)
    assert "\n" not in message
    assert path.name in message
    assert exc.value.line == line
    if line is not None:
        assert f"{path.name}:{line}" in message
    assert text in message


# ----------------------------------------------------------------------------------- Trace


def test_trace_copies_and_freezes_arrays() -> None:
    start_s = np.array([0.0, 1.0])
    trace = Trace(start_s, [1e6, 2e6], 3.0, name="t")
    start_s[1] = 5.0
    assert trace.start_s[1] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        trace.bandwidth_bps[0] = 0.0


@pytest.mark.parametrize(
    ("start_s", "bandwidth_bps", "duration_s", "latency_s", "match"),
    [
        ([], [], 1.0, None, "at least one sample"),
        ([0.0, 1.0], [1.0], 2.0, None, "has 1 samples"),
        ([0.5], [1.0], 2.0, None, "must begin at 0"),
        ([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], 2.0, None, "sample 2 starts at 1.0"),
        ([0.0, 1.0], [1.0, -1.0], 2.0, None, "sample 1 is -1.0"),
        ([0.0, 1.0], [1.0, np.nan], 2.0, None, "sample 1 is nan"),
        ([0.0, 1.0], [1.0, 1.0], 1.0, None, '"duration_s" must be > the last sample start'),
        ([0.0], [1.0], np.inf, None, '"duration_s"'),
        ([0.0, 1.0], [0.0, 0.0], 2.0, None, "bandwidth > 0"),
        ([0.0, 1.0], [1.0, 1.0], 2.0, [0.1], '"latency_s" has 1 samples'),
        ([0.0, 1.0], [1.0, 1.0], 2.0, [0.1, -0.1], "sample 1 is -0.1"),
        ([[0.0]], [[1.0]], 2.0, None, "one-dimensional"),
    ],
)
def test_trace_validation(
    start_s: list[float],
    bandwidth_bps: list[float],
    duration_s: float,
    latency_s: list[float] | None,
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        Trace(start_s, bandwidth_bps, duration_s, latency_s)


def test_bandwidth_at_loops() -> None:
    trace = Trace([0.0, 2.0, 5.0], [1e6, 2e6, 3e6], 8.0)
    times_s = [0.0, 1.999, 2.0, 4.9, 5.0, 7.999, 8.0, 10.0, 13.5, 800.0 + 6.0, -1.0]
    assert [trace.bandwidth_at(t) for t in times_s] == [1e6, 1e6, 2e6, 2e6, 3e6, 3e6, 1e6, 2e6, 3e6, 3e6, 3e6]
    assert list(trace.sample_duration_s) == [2.0, 3.0, 3.0]
    assert trace.mean_bandwidth_bps == (2 * 1e6 + 3 * 2e6 + 3 * 3e6) / 8


# ------------------------------------------------------------------------------ abrsim CSV


def test_read_abrsim_csv_with_duration_comment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tiny.csv",
        "# source=somewhere\n\n#duration_s = 7.5\n time_s , bandwidth_mbps \n0, 1.5\n2 ,0.25\n\n5,0\n",
    )
    trace = read_abrsim_csv(path)
    assert trace.name == "tiny"
    assert list(trace.start_s) == [0.0, 2.0, 5.0]
    assert list(trace.bandwidth_bps) == [1.5e6, 0.25e6, 0.0]
    assert trace.duration_s == 7.5
    assert trace.latency_s is None


def test_read_abrsim_csv_latency_column(tmp_path: Path) -> None:
    path = write(tmp_path, "lat.csv", "# duration_s=3\ntime_s,bandwidth_mbps,latency_ms\n0,1,20\n1,2,35.5\n")
    trace = read_abrsim_csv(path)
    assert trace.latency_s is not None
    assert list(trace.latency_s) == [0.02, 0.0355]


def test_read_abrsim_csv_duration_from_index(tmp_path: Path) -> None:
    write(tmp_path, "index.csv", "group,file,n,duration_s\nx,other.csv,2,99\ny,a.csv,2,4.25\n")
    write(tmp_path, "a.csv", "time_s,bandwidth_mbps\n0,1\n2,3\n")
    write(tmp_path, "b.csv", "time_s,bandwidth_mbps\n0,1\n2,3\n")  # no row: one more interval
    write(tmp_path, "c.csv", "# duration_s=10\ntime_s,bandwidth_mbps\n0,1\n2,3\n")  # the comment wins
    assert read_abrsim_csv(tmp_path / "a.csv").duration_s == 4.25
    assert read_abrsim_csv(tmp_path / "b.csv").duration_s == 4.0
    assert read_abrsim_csv(tmp_path / "c.csv").duration_s == 10.0


def test_read_abrsim_csv_duration_from_last_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "time_s,bandwidth_mbps\n0,1\n1,2\n2.5,3\n")
    assert read_abrsim_csv(path).duration_s == 4.0


def test_read_abrsim_csv_ignores_index_without_the_columns(tmp_path: Path) -> None:
    write(tmp_path, "index.csv", "name,length\nx.csv,99\n")
    path = write(tmp_path, "x.csv", "time_s,bandwidth_mbps\n0,1\n1,2\n")
    assert read_abrsim_csv(path).duration_s == 2.0


HEADER = "time_s,bandwidth_mbps\n"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param("", 1, "found an empty file", id="empty"),
        pytest.param("# just a comment\n\n", 3, "found only comments", id="only-comments"),
        pytest.param("0,1\n1,2\n", 1, "expected the header", id="missing-header"),
        pytest.param("time_s,bandwidth_kbps\n0,1\n", 1, "found 'time_s,bandwidth_kbps'", id="wrong-header"),
        pytest.param(HEADER, 2, "found no rows after the header", id="header-only"),
        pytest.param(HEADER + "0,1\n1,2,3\n", 3, "found 3 columns; expected 2", id="too-many-columns"),
        pytest.param(HEADER + "0,1\n1\n", 3, "found 1 columns; expected 2", id="too-few-columns"),
        pytest.param(HEADER + "0,1\n1,fast\n", 3, "found 'fast'; expected a finite number", id="non-numeric"),
        pytest.param(HEADER + "0,1\n1,nan\n", 3, "found 'nan'", id="nan"),
        pytest.param(HEADER + "0,1\ninf,1\n", 3, "found 'inf'", id="inf"),
        pytest.param(HEADER + "0,1\n1,-0.5\n", 3, "found -0.5; expected >= 0", id="negative-bandwidth"),
        pytest.param(
            "time_s,bandwidth_mbps,latency_ms\n0,1,5\n1,1,-2\n",
            3,
            "found -2; expected >= 0",
            id="negative-latency",
        ),
        pytest.param(HEADER + "0,1\n2,1\n1.5,1\n", 4, "previous row's 2", id="decreasing-time"),
        pytest.param(HEADER + "0,1\n1,1\n1.0,2\n", 4, "(no zero-length samples)", id="zero-length-sample"),
        pytest.param(HEADER + "0.5,1\n1,1\n", 2, "expected 0 on the first row", id="first-time-not-zero"),
        pytest.param(HEADER + "0,1\n", 2, "found a single sample and no trace length", id="single-sample"),
        pytest.param(
            "# duration_s=1\n" + HEADER + "0,1\n1,2\n", 1, "expected a number of seconds > 1", id="short"
        ),
        pytest.param("# duration_s=long\n" + HEADER + "0,1\n1,2\n", 1, "found 'long'", id="bad-duration"),
    ],
)
def test_read_abrsim_csv_bad_input(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(InputError) as exc:
        read_abrsim_csv(path)
    assert_input_error(exc, path, line, expected)


def test_read_abrsim_csv_all_zero_bandwidth(tmp_path: Path) -> None:
    path = write(tmp_path, "zero.csv", HEADER + "0,0\n1,0.0\n")
    with pytest.raises(InputError) as exc:
        read_abrsim_csv(path)
    assert_input_error(exc, path, None, "found only zero bandwidths (2 samples)")
    assert exc.value.field == "bandwidth_mbps"


def test_read_abrsim_csv_bad_index_duration(tmp_path: Path) -> None:
    index = write(tmp_path, "index.csv", "file,duration_s\nx.csv,1\n")
    write(tmp_path, "x.csv", HEADER + "0,1\n1,2\n")
    with pytest.raises(InputError) as exc:
        read_abrsim_csv(tmp_path / "x.csv")
    assert_input_error(exc, index, 2, "the last time_s of x.csv")


def test_trace_constructor_errors_become_input_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.csv", HEADER + "0,1e400\n1,1\n")  # finite in the file, inf in bit/s
    with pytest.raises(InputError) as exc:
        read_abrsim_csv(path)
    assert exc.value.source == str(path)
    assert "huge.csv:2, field 'bandwidth_mbps': found 1E+400; expected >= 0 and at most" in str(exc.value)


@pytest.mark.parametrize(
    "reader", [read_abrsim_csv, read_pensieve_cooked, read_sabre_json, read_mahimahi, load_trace]
)
def test_missing_file(tmp_path: Path, reader: object) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(InputError, match=r"nowhere\.csv: file not found"):
        reader(path)  # type: ignore[operator]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match=r"binary\.csv: found non-UTF-8 bytes"):
        read_abrsim_csv(path)


# ------------------------------------------------------------------------ writing, round trip


def test_write_abrsim_csv_text(tmp_path: Path) -> None:
    trace = Trace([0.0, 1.5], [4792831.0, 500000.0], 3.0, latency_s=[0.02, 0.035], name="t")
    path = write_abrsim_csv(trace, tmp_path / "t.csv")
    assert path.read_text() == "# duration_s=3\ntime_s,bandwidth_mbps,latency_ms\n0,4.792831,20\n1.5,0.5,35\n"


def assert_same_trace(read: Trace, written: Trace) -> None:
    assert read.name == written.name
    assert read.start_s.tobytes() == written.start_s.tobytes()
    assert read.bandwidth_bps.tobytes() == written.bandwidth_bps.tobytes()
    assert read.duration_s == written.duration_s
    if written.latency_s is None:
        assert read.latency_s is None
    else:
        assert read.latency_s is not None
        assert read.latency_s.tobytes() == written.latency_s.tobytes()


def test_round_trip_awkward_values(tmp_path: Path) -> None:
    trace = Trace(
        [0.0, 5e-3, 0.1, 1 / 3, 1e8],
        [0.1, 1 / 3 * 1e6, 5e-324, MAX_BANDWIDTH_BPS, 123456789.123456789],
        1e8 + 0.30000000000000004,
        latency_s=[0.0, 1e-7, 1 / 7, 2.5, 1e300],
        name="awkward",
    )
    path = write_abrsim_csv(trace, tmp_path / "awkward.csv")
    assert_same_trace(read_abrsim_csv(path), trace)


finite_nonnegative = st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False)
#: Bandwidths a trace may hold: up to MAX_BANDWIDTH_BPS (1 Tbit/s).
bandwidths_bps = st.floats(min_value=0.0, max_value=MAX_BANDWIDTH_BPS)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    # times up to MAX_TRACE_DURATION_S (1e9 s)
    later_starts_s = draw(st.lists(st.floats(min_value=0.0, max_value=1e8, exclude_min=True), max_size=12))
    start_s = np.array(sorted({0.0, *later_starts_s}))
    count = start_s.size
    bandwidth_bps = np.array(draw(st.lists(bandwidths_bps, min_size=count, max_size=count)))
    some_bps = draw(st.floats(min_value=1e-300, max_value=MAX_BANDWIDTH_BPS))
    bandwidth_bps[draw(st.integers(0, count - 1))] = some_bps
    extra_s = draw(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
    duration_s = max(start_s[-1] + extra_s, np.nextafter(start_s[-1], np.inf))
    latency_s = draw(st.none() | st.lists(finite_nonnegative, min_size=count, max_size=count))
    return Trace(start_s, bandwidth_bps, duration_s, latency_s, name="random")


@settings(max_examples=200, deadline=None)
@given(trace=traces())
def test_round_trip_is_exact(tmp_path_factory: pytest.TempPathFactory, trace: Trace) -> None:
    path = write_abrsim_csv(trace, tmp_path_factory.mktemp("round_trip") / "random.csv")
    assert_same_trace(read_abrsim_csv(path), trace)


def test_readers_do_not_modify_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "keep.csv", "# duration_s=3\r\n" + HEADER + "0,1\r\n1,2\r\n")
    before = path.read_bytes(), path.stat().st_mtime_ns
    read_abrsim_csv(path)
    load_traces(tmp_path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


# ------------------------------------------------------------------------------- Pensieve


def test_read_pensieve_cooked(tmp_path: Path) -> None:
    path = write(tmp_path, "cooked", "10.0\t5.0\n11.0\t1.0\n\n13.5  2.0\n")
    trace = read_pensieve_cooked(path)
    assert trace.name == "cooked"
    assert list(trace.start_s) == [0.0, 1.0]  # row 0 only marks the start
    assert list(trace.bandwidth_bps) == [1e6, 2e6]
    assert trace.duration_s == 3.5


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param("", 1, "found 0 data line(s); expected at least 2", id="empty"),
        pytest.param("0 1\n", 2, "found 1 data line(s)", id="one-row"),
        pytest.param("0 1\n1 2 3\n", 2, "found 3 columns; expected 2", id="three-columns"),
        pytest.param("0 1\n1,2\n", 2, "found 1 columns", id="comma"),
        pytest.param("0 1\n1 x\n", 2, "found 'x'", id="non-numeric"),
        pytest.param("0 1\n1 NaN\n", 2, "found 'NaN'", id="nan"),
        pytest.param("0 1\n1 -3\n", 2, "found -3; expected >= 0", id="negative"),
        pytest.param("0 1\n2 1\n1 1\n", 3, "previous row's 2", id="decreasing"),
        pytest.param("0 1\n1 1\n1 2\n", 3, "no zero-length samples", id="zero-length"),
    ],
)
def test_read_pensieve_cooked_bad_input(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "cooked", text)
    with pytest.raises(InputError) as exc:
        read_pensieve_cooked(path)
    assert_input_error(exc, path, line, expected)


def test_read_pensieve_cooked_all_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "cooked", "0 5\n1 0\n2 0\n")  # row 0's value is dropped
    with pytest.raises(InputError) as exc:
        read_pensieve_cooked(path)
    assert_input_error(exc, path, None, "found only zero bandwidths")


# ---------------------------------------------------------------------------------- Sabre


def test_read_sabre_json(tmp_path: Path) -> None:
    periods = [
        {"duration_ms": 1500, "bandwidth_kbps": 2500.5, "latency_ms": 20, "note": "ignored"},
        {"duration_ms": 500, "bandwidth_kbps": 0, "latency_ms": 75.5},
    ]
    trace = read_sabre_json(write(tmp_path, "net.json", json.dumps(periods)))
    assert trace.name == "net"
    assert list(trace.start_s) == [0.0, 1.5]
    assert list(trace.bandwidth_bps) == [2500500.0, 0.0]
    assert trace.latency_s is not None
    assert list(trace.latency_s) == [0.02, 0.0755]
    assert trace.duration_s == 2.0


def sabre_entry(**changes: object) -> dict[str, object]:
    return {"duration_ms": 1000, "bandwidth_kbps": 100, "latency_ms": 10, **changes}


GOOD = json.dumps(sabre_entry())


@pytest.mark.parametrize(
    ("entries", "field", "expected"),
    [
        pytest.param([sabre_entry(), 3], "entry 1", "found 3; expected an object", id="not-an-object"),
        pytest.param(
            [sabre_entry(), {"duration_ms": 1}], "entry 1", "no key 'bandwidth_kbps'", id="missing-key"
        ),
        pytest.param(
            [sabre_entry(bandwidth_kbps="fast")], "entry 0 bandwidth_kbps", 'found "fast"', id="string"
        ),
        pytest.param(  # a number in a string is refused as true is, not read as a number
            [sabre_entry(duration_ms="1000")], "entry 0 duration_ms",
            'found "1000", a string; expected a number', id="number-string"
        ),
        pytest.param([sabre_entry(bandwidth_kbps=None)], "entry 0 bandwidth_kbps", "found null", id="null"),
        pytest.param([sabre_entry(bandwidth_kbps=True)], "entry 0 bandwidth_kbps", "found true", id="bool"),
        pytest.param([sabre_entry(latency_ms=math.nan)], "entry 0 latency_ms", "found NaN", id="nan"),
        pytest.param(
            [sabre_entry(), sabre_entry(bandwidth_kbps=-1)], "entry 1 bandwidth_kbps", "found -1", id="neg"
        ),
        pytest.param(
            [sabre_entry(latency_ms=-5)], "entry 0 latency_ms", "found -5; expected >= 0", id="neg-latency"
        ),
        pytest.param(
            [sabre_entry(duration_ms=0)], "entry 0 duration_ms", "no zero-length samples", id="zero-length"
        ),
        pytest.param(
            [sabre_entry(bandwidth_kbps=0)], "bandwidth_kbps", "found only zero bandwidths", id="all-zero"
        ),
    ],
)
def test_read_sabre_json_bad_entries(
    tmp_path: Path, entries: list[object], field: str, expected: str
) -> None:
    path = write(tmp_path, "net.json", json.dumps(entries))
    with pytest.raises(InputError) as exc:
        read_sabre_json(path)
    assert_input_error(exc, path, None, expected)
    assert exc.value.field == field
    assert f"field {field!r}" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param("", 1, "found invalid JSON", id="empty"),
        pytest.param(
            f"[{GOOD},\n{GOOD}\n{GOOD}]", 3, "found invalid JSON (Expecting ',' delimiter)", id="syntax"
        ),
        pytest.param("[]", 1, "found []; expected a non-empty JSON list", id="empty-list"),
        pytest.param(GOOD, 1, "expected a non-empty JSON list", id="not-a-list"),
    ],
)
def test_read_sabre_json_bad_file(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "net.json", text)
    with pytest.raises(InputError) as exc:
        read_sabre_json(path)
    assert_input_error(exc, path, line, expected)


# ------------------------------------------------------------------------------- Mahimahi


def test_read_mahimahi_bins(tmp_path: Path) -> None:
    path = write(tmp_path, "link.down", "1\n1\n50\n150\n\n250\n300\n")
    trace = read_mahimahi(path)
    assert trace.name == "link"
    assert trace.duration_s == 0.3
    assert list(trace.start_s) == [0.0, 0.1, 0.2]
    # the packet at exactly the period (300 ms) falls in the last bin
    assert trace.bandwidth_bps == pytest.approx(
        [3 * 12000 / 0.1, 1 * 12000 / 0.1, 2 * 12000 / 0.1], rel=1e-14
    )
    assert list(np.rint(trace.bandwidth_bps * trace.sample_duration_s)) == [3 * 12000, 12000, 2 * 12000]


def test_read_mahimahi_short_last_bin(tmp_path: Path) -> None:
    trace = read_mahimahi(write(tmp_path, "link", "10\n120\n250\n"), bin_ms=100)
    assert list(trace.start_s) == [0.0, 0.1, 0.2]
    assert list(trace.sample_duration_s.round(12)) == [0.1, 0.1, 0.05]
    assert trace.bandwidth_bps == pytest.approx([120000.0, 120000.0, 240000.0], rel=1e-14)


@settings(max_examples=200, deadline=None)
@given(
    timestamps_ms=st.lists(st.integers(0, 20000), min_size=1, max_size=300).filter(lambda t: max(t) > 0),
    bin_ms=st.integers(1, 1500),
)
def test_read_mahimahi_conserves_bits(
    tmp_path_factory: pytest.TempPathFactory, timestamps_ms: list[int], bin_ms: int
) -> None:
    path = tmp_path_factory.mktemp("mahimahi") / "link"
    path.write_text("".join(f"{t}\n" for t in sorted(timestamps_ms)))
    trace = read_mahimahi(path, bin_ms=bin_ms)
    bits = trace.bandwidth_bps * trace.sample_duration_s
    assert np.rint(bits).astype(np.int64).sum() == 12000 * len(timestamps_ms)  # whole packets, none lost
    assert math.fsum(bits) == pytest.approx(12000 * len(timestamps_ms), rel=1e-14)
    assert trace.duration_s == max(timestamps_ms) / 1000


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param("", 1, "found no timestamps", id="empty"),
        pytest.param("1\n2.5\n", 2, "found '2.5'; expected an integer", id="not-integer"),
        pytest.param("1\nsoon\n", 2, "found 'soon'", id="text"),
        pytest.param("1\n2 3\n", 2, "found 2 columns; expected 1", id="two-columns"),
        pytest.param("-1\n2\n", 1, "found -1; expected >= 0", id="negative"),
        pytest.param("5\n8\n3\n", 3, "expected a value at or after the previous row's 8", id="decreasing"),
        pytest.param("0\n0\n", 2, "loop period) of 0", id="zero-period"),
    ],
)
def test_read_mahimahi_bad_input(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, "link", text)
    with pytest.raises(InputError) as exc:
        read_mahimahi(path)
    assert_input_error(exc, path, line, expected)


@pytest.mark.parametrize("bin_ms", [0, -10, 2.5, True])
def test_read_mahimahi_bad_bin(tmp_path: Path, bin_ms: int) -> None:
    with pytest.raises(ValueError, match='"bin_ms" must be an integer >= 1'):
        read_mahimahi(write(tmp_path, "link", "1\n"), bin_ms=bin_ms)


# ------------------------------------------------------------------------ load_trace(s)


def test_trace_formats() -> None:
    assert TRACE_FORMATS == ("abrsim", "pensieve", "sabre", "mahimahi")


@pytest.mark.parametrize(
    ("name", "text", "bandwidth_bps"),
    [
        ("a.csv", "# duration_s=2\ntime_s,bandwidth_mbps\n0,1\n", [1e6]),
        ("a.JSON", '[{"duration_ms": 5, "bandwidth_kbps": 7, "latency_ms": 0}]', [7000.0]),
        ("a.log", "# cooked\n\n0.0 9\n1.0 3\n", [3e6]),
        ("a", "\n500\n1000\n", [12000 / 0.1] * 2),
    ],
)
def test_load_trace_detects_format(tmp_path: Path, name: str, text: str, bandwidth_bps: list[float]) -> None:
    trace = load_trace(write(tmp_path, name, text))
    assert trace.name == "a"
    assert list(trace.bandwidth_bps[trace.bandwidth_bps > 0]) == pytest.approx(bandwidth_bps, rel=1e-14)


def test_load_trace_explicit_format(tmp_path: Path) -> None:
    path = write(tmp_path, "ambiguous.txt", "0 4\n2 4\n")
    assert load_trace(path, format="pensieve").duration_s == 2.0
    with pytest.raises(InputError, match=r"ambiguous\.txt:1: found 2 columns; expected 1 \(timestamp_ms\)"):
        load_trace(write(tmp_path, "ambiguous.txt", "0 4\n"), format="mahimahi")
    with pytest.raises(UnknownNameError, match="unknown trace format 'json'; expected one of: abrsim"):
        load_trace(path, format="json")


@pytest.mark.parametrize(("text", "line"), [("", 1), ("# only\n", 2), ("1 2 3\n", 1), ("x\n", 1)])
def test_load_trace_undetectable(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "mystery", text)
    with pytest.raises(InputError) as exc:
        load_trace(path)
    assert_input_error(exc, path, line, "expected a trace in one of the formats abrsim (.csv), sabre (.json)")


def test_load_traces_folder_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "nested").mkdir()
    for name in ("b.csv", "a.csv", ".hidden.csv", "nested/c.csv"):
        write(folder, name, "time_s,bandwidth_mbps\n0,1\n1,2\n")
    write(folder, "index.csv", "file,duration_s\na.csv,5\n")
    write(folder, "README.md", "# traces\n")
    write(folder, "README", "traces\n")
    write(folder, "notes.md", "notes\n")
    write(folder, "z", "0 1\n1 1\n")
    single = write(tmp_path, "single.json", '[{"duration_ms": 5, "bandwidth_kbps": 7, "latency_ms": 0}]')
    traces = load_traces([single, folder, str(folder / "a.csv")])
    assert [t.name for t in traces] == ["single", "a", "b", "z", "a"]
    assert [t.duration_s for t in traces] == [0.005, 5.0, 2.0, 1.0, 5.0]
    assert [t.name for t in load_traces(folder)] == ["a", "b", "z"]


def test_load_traces_empty_folder(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# nothing here\n")
    with pytest.raises(InputError, match="found no trace files"):
        load_traces([tmp_path])


def test_load_traces_bad_file_names_it(tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "time_s,bandwidth_mbps\n0,1\n1,2\n")
    write(tmp_path, "b.csv", "time_s,bandwidth_mbps\n0,1\n1,-2\n")
    with pytest.raises(InputError, match=r"b\.csv:3"):
        load_traces(tmp_path)


# -------------------------------------------------------------------------- shared traces


@needs_shared
def test_shared_norway_bus_1_duration_from_index() -> None:
    trace = read_abrsim_csv(SHARED_TRACES / "hsdpa_norway_3g" / "norway_bus_1.csv")
    assert trace.name == "norway_bus_1"
    assert trace.duration_s == 154.76
    assert trace.start_s.size == 265
    assert trace.start_s[1] == 0.55
    assert trace.bandwidth_bps[0] == 4792831.0


@needs_shared
@pytest.mark.parametrize(
    "dataset", ["fcc_broadband", "hsdpa_norway_3g", "lte_belgium_4g", "lumos5g_mmwave_5g"]
)
def test_shared_dataset_matches_its_index(dataset: str) -> None:
    folder = SHARED_TRACES / dataset
    if not folder.is_dir():
        pytest.skip(f"{dataset} not present")
    with open(folder / "index.csv", encoding="utf-8") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: row["file"])
    traces = load_traces(folder)
    assert [t.name for t in traces] == [Path(row["file"]).stem for row in rows]
    for trace, row in zip(traces, rows, strict=True):
        assert trace.duration_s == float(row["duration_s"])
        assert trace.start_s.size == int(row["n_samples"])
        assert trace.mean_bandwidth_bps / 1e6 == pytest.approx(float(row["mean_mbps"]), rel=1e-4, abs=1e-6)


# ------------------------------------------------------------------- writers for other formats


def test_write_pensieve_cooked_text_and_round_trip(tmp_path: Path) -> None:
    trace = Trace([0.0, 1.5, 4.0], [4792831.0, 0.0, 500000.0], 5.25, name="p")
    path = write_pensieve_cooked(trace, tmp_path / "p")
    assert path.read_text() == "0\t4.792831\n1.5\t4.792831\n4\t0\n5.25\t0.5\n"
    assert_same_trace(read_pensieve_cooked(path), trace)


def test_write_sabre_json_text_and_round_trip(tmp_path: Path) -> None:
    trace = Trace([0.0, 1.5], [4792831.0, 500000.0], 3.0, latency_s=[0.02, 0.035], name="s")
    path = write_sabre_json(trace, tmp_path / "s.json")
    assert json.loads(path.read_text()) == [
        {"duration_ms": 1500, "bandwidth_kbps": 4792.831, "latency_ms": 20},
        {"duration_ms": 1500, "bandwidth_kbps": 500, "latency_ms": 35},
    ]
    assert_same_trace(read_sabre_json(path), trace)


def test_write_sabre_json_needs_a_latency(tmp_path: Path) -> None:
    trace = Trace([0.0, 1.0], [1e6, 2e6], 2.0, name="s")
    with pytest.raises(InputError, match="needs latency_ms on every sample"):
        write_sabre_json(trace, tmp_path / "s.json")
    read = read_sabre_json(write_sabre_json(trace, tmp_path / "s.json", latency_s=0.04))
    assert list(read.latency_s) == [0.04, 0.04]
    assert read.bandwidth_bps.tobytes() == trace.bandwidth_bps.tobytes()
    with pytest.raises(ValueError, match='"latency_s" must be finite and >= 0'):
        write_sabre_json(trace, tmp_path / "s.json", latency_s=-1.0)


@settings(max_examples=150, deadline=None)
@given(trace=traces())
def test_pensieve_and_sabre_round_trips_are_exact(
    tmp_path_factory: pytest.TempPathFactory, trace: Trace
) -> None:
    folder = tmp_path_factory.mktemp("formats")
    sabre = read_sabre_json(write_sabre_json(trace, folder / "random.json", latency_s=0.05))
    assert sabre.start_s.tobytes() == trace.start_s.tobytes()
    assert sabre.bandwidth_bps.tobytes() == trace.bandwidth_bps.tobytes()
    assert sabre.duration_s == trace.duration_s
    if trace.latency_s is not None:
        assert_same_trace(sabre, trace)
    without_latency = Trace(trace.start_s, trace.bandwidth_bps, trace.duration_s, name="random")
    cooked = read_pensieve_cooked(write_pensieve_cooked(without_latency, folder / "random"))
    assert_same_trace(cooked, without_latency)


def test_writers_refuse_to_drop_latencies(tmp_path: Path) -> None:
    trace = Trace([0.0, 1.0], [1e6, 2e6], 2.0, latency_s=[0.01, 0.02], name="t")
    for fmt in ("pensieve", "mahimahi"):
        with pytest.raises(InputError, match=f"which the {fmt} format cannot hold") as exc:
            write_trace(trace, tmp_path / "t", fmt)
        assert "t" in str(exc.value)
        write_trace(trace, tmp_path / "t", fmt, drop_latency=True)
    with pytest.raises(UnknownNameError, match="unknown trace format 'csv'"):
        write_trace(trace, tmp_path / "t", "csv")


def cumulative_bits(trace: Trace, at_s: np.ndarray) -> np.ndarray:
    edges = np.append(trace.start_s, trace.duration_s)
    bits = np.concatenate(([0.0], np.cumsum(trace.bandwidth_bps * trace.sample_duration_s)))
    return np.interp(at_s, edges, bits)


def test_write_mahimahi_text(tmp_path: Path) -> None:
    # 120 kbit/s for 0.1 s = one packet, then 0.1 s of outage, then 240 kbit/s = two packets
    trace = Trace([0.0, 0.1, 0.2], [120e3, 0.0, 240e3], 0.3, name="m")
    path = write_mahimahi(trace, tmp_path / "m")
    assert path.read_text() == "50\n225\n300\n"  # packet j at (j - 1/2) packets; the last at the period
    read = read_mahimahi(path)
    assert list(np.rint(read.bandwidth_bps * read.sample_duration_s)) == [12000, 0, 24000]


@settings(max_examples=100, deadline=None)
@given(
    levels_kbps=st.lists(st.integers(0, 20000), min_size=1, max_size=40),
    sample_ms=st.sampled_from([100, 250, 1000, 1500]),
)
def test_mahimahi_round_trip_keeps_bits_to_half_a_packet(
    tmp_path_factory: pytest.TempPathFactory, levels_kbps: list[int], sample_ms: int
) -> None:
    levels_kbps = [*levels_kbps, 500]  # the last 100 ms carry at least one packet (see below)
    count = len(levels_kbps)
    trace = Trace(np.arange(count) * sample_ms / 1000, np.array(levels_kbps) * 1e3, count * sample_ms / 1000,
                  name="m")
    folder = tmp_path_factory.mktemp("mahimahi")
    once = read_mahimahi(write_mahimahi(trace, folder / "m"))
    assert once.duration_s == trace.duration_s
    edges_s = np.append(once.start_s, once.duration_s)
    error_bits = cumulative_bits(once, edges_s) - cumulative_bits(trace, edges_s)
    assert np.max(np.abs(error_bits)) <= 6000 * (1 + 1e-9)  # at every 100 ms edge, to half a packet
    twice = read_mahimahi(write_mahimahi(once, folder / "m2"))
    np.testing.assert_array_equal(twice.start_s, once.start_s)
    np.testing.assert_array_equal(np.rint(twice.bandwidth_bps * twice.sample_duration_s),
                                  np.rint(once.bandwidth_bps * once.sample_duration_s))


def test_write_mahimahi_trace_ending_in_an_outage(tmp_path: Path) -> None:
    # the last packet moves to the loop period, so one more packet shifts to the end
    trace = Trace([0.0, 1.0], [120e3, 0.0], 2.0, name="m")
    path = write_mahimahi(trace, tmp_path / "m")
    timestamps = [int(v) for v in path.read_text().split()]
    assert len(timestamps) == 10
    assert timestamps[-1] == 2000
    assert timestamps[:-1] == [50 + 100 * k for k in range(9)]


def test_write_mahimahi_too_few_bits(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected at least one 12000-bit packet"):
        write_mahimahi(Trace([0.0], [1000.0], 1.0), tmp_path / "m")


# ------------------------------------------------------------------------------- statistics


def test_interval_means() -> None:
    trace = Trace([0.0, 0.5, 2.0], [2e6, 4e6, 0.0], 3.7)
    np.testing.assert_allclose(interval_means_bps(trace), [3e6, 4e6, 0.0])
    np.testing.assert_allclose(interval_means_bps(trace, 2.0), [3.5e6])
    assert interval_means_bps(Trace([0.0], [1e6], 0.5)).size == 0
    with pytest.raises(ValueError, match='"interval_s" must be finite and > 0'):
        interval_means_bps(trace, 0.0)


def test_trace_stats() -> None:
    trace = Trace([0.0, 10.0, 30.0, 31.0], [1e6, 3e6, 0.0, 2e6], 40.0, name="s")
    stats = trace_stats(trace)
    assert stats.name == "s"
    assert (stats.duration_s, stats.samples) == (40.0, 4)
    assert stats.mean_bps == pytest.approx((10 * 1e6 + 20 * 3e6 + 9 * 2e6) / 40)
    # time-weighted: 0 for 1 s, 1 Mbit/s for 10 s, 2 for 9 s, 3 for 20 s
    assert (stats.p10_bps, stats.p50_bps, stats.p90_bps) == (1e6, 2e6, 3e6)
    assert (stats.min_bps, stats.max_bps) == (0.0, 3e6)
    assert stats.outage_fraction == pytest.approx(1 / 40)
    assert stats.lag1_autocorrelation == pytest.approx(lag1_autocorrelation(interval_means_bps(trace)))
    assert OUTAGE_THRESHOLD_BPS == 50e3


def test_lag1_autocorrelation() -> None:
    assert lag1_autocorrelation(np.array([1.0, 2.0, 1.0, 2.0])) == pytest.approx(-0.75)
    assert math.isnan(lag1_autocorrelation(np.ones(5)))
    assert math.isnan(lag1_autocorrelation(np.array([1.0, 2.0])))


# ------------------------------------------------------------------------------------- CLI


def run_cli(*args: str):
    from click.testing import CliRunner

    from abrsim.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("fmt", ["pensieve", "sabre", "abrsim"])
def test_cli_convert_round_trip_is_exact(tmp_path: Path, fmt: str) -> None:
    trace = Trace([0.0, 0.7, 2.0], [1.5e6, 0.0, 3.25e6], 4.5, name="x")
    original = write_abrsim_csv(trace, tmp_path / "x.csv")
    middle = tmp_path / f"x.{fmt}"
    extra = ["--latency-ms", "0"] if fmt == "sabre" else []
    result = run_cli("traces", "convert", str(original), "-o", str(middle), "--to", fmt, *extra)
    assert result.exit_code == 0, result.output
    back = tmp_path / "back" / "x.csv"
    result = run_cli("traces", "convert", str(middle), "-o", str(back), "--to", "abrsim", "--from", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "sabre":  # Sabre adds the latency it must carry
        assert read_abrsim_csv(back).latency_s.tolist() == [0.0, 0.0, 0.0]
    else:
        assert back.read_bytes() == original.read_bytes()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to", "sabre"], "--latency-ms"),
        (["--to", "pensieve", "--from", "sabre"], "invalid JSON"),
        (["--to", "xml"], "Invalid value for '--to'"),
    ],
)
def test_cli_convert_errors(tmp_path: Path, args: list[str], expected: str) -> None:
    source = write_abrsim_csv(Trace([0.0], [1e6], 2.0), tmp_path / "x.csv")
    result = run_cli("traces", "convert", str(source), "-o", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_cli_stats(tmp_path: Path) -> None:
    first = write_abrsim_csv(Trace([0.0, 2.0], [1e6, 0.0], 4.0, name="a"), tmp_path / "a.csv")
    second = write_abrsim_csv(Trace([0.0], [3e6], 4.0, name="b"), tmp_path / "b.csv")
    result = run_cli("traces", "stats", str(first), str(second))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["trace", "duration_s", "samples", "mean"]
    assert lines[2].split()[:4] == ["a", "4", "2", "0.500"]
    assert "50.00" in lines[2]  # half the time in outage
    assert lines[4].startswith("all 2 (1 s means)")
    rows = json.loads(run_cli("traces", "stats", str(tmp_path), "--format", "json").output)
    assert [r["name"] for r in rows] == ["a", "b"]
    assert rows[1]["mean_bps"] == 3e6
    result = run_cli("traces", "stats", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "nope.csv" in result.output
