"""Issue 14: a seeded sample of every reader's fuzz cases, and the regressions the fuzzers found.

The full run (10,000 cases per reader) is ``python benchmarks/fuzz.py``; this runs the same
generators on a small sample per reader: every case must be read or refused with abrsim's own
one-line error, within its time budget and memory limit, leaving its input files unchanged.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuzzing import READERS, Case, Reader, fuzz, run_case

from abrsim.cli import cli
from abrsim.errors import InputError
from abrsim.ladder import load_ladder
from abrsim.manifest import read_manifest
from abrsim.model import PlayerModel
from abrsim.scenario import load_scenario
from abrsim.sweep import load_spec
from abrsim.trace import load_trace

SAMPLE = 120  # cases per reader in CI


@pytest.mark.parametrize("reader", sorted(READERS))
def test_fuzz_sample(reader, tmp_path):
    # 20 s a case: slack for a slow or busy CI machine (the full run allows 10 s)
    report = fuzz(reader, SAMPLE, seed=14, jobs=2, workdir=tmp_path, budget_s=20.0, cli_every=20)
    assert report.cases == SAMPLE
    assert report.cli_cases > 0
    assert report.accepted > 0 and report.refused > 0  # the generators reach both sides
    shown = "\n\n".join(f"case {o.index}: {o.status}\n{o.detail}" for o in report.failures)
    assert not report.failures, shown


def test_fuzz_cases_are_reproducible(tmp_path):
    first = run_case(READERS["trace"], 3, 7, tmp_path / "a")
    again = run_case(READERS["trace"], 3, 7, tmp_path / "b")
    assert (tmp_path / "a" / "case").iterdir() and first.status == again.status
    assert [p.read_bytes() for p in sorted((tmp_path / "a" / "case").glob("trace*"))] == \
           [p.read_bytes() for p in sorted((tmp_path / "b" / "case").glob("trace*"))]


# ---------------------------------------------------------------- the driver catches each failure


def _reader(read) -> Reader:
    def generate(rng, folder: Path) -> Case:
        path = folder / "input.txt"
        path.write_text("data\n")
        return Case(path)

    return Reader("fake", generate, read, confined=True)


def _sleep(case):
    time.sleep(5)


def _modify(case):
    case.path.write_text("changed\n")


def _crash(case):
    return [][1]


def _peek(case):
    return (case.path.parent.parent / "secret.csv").read_text()


def _refuse(case):
    raise InputError("found nothing; expected something", source=case.path, line=1)


@pytest.mark.parametrize(("read", "status"), [
    (lambda case: None, "accepted"),
    (_refuse, "refused"),
    (_crash, "exception"),
    (_sleep, "hang"),
    (_modify, "modified"),
    (_peek, "leak"),
])
def test_the_driver_classifies_outcomes(tmp_path, read, status):
    assert run_case(_reader(read), 0, 0, tmp_path, budget_s=0.5).status == status


# ---------------------------------------------------------------- regressions found by the fuzzers


@pytest.mark.parametrize("text", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
def test_an_empty_hls_playlist_is_one_line(tmp_path, text):
    """Found by the manifest fuzzer: a .m3u8 holding only a BOM raised StopIteration."""
    path = tmp_path / "master.m3u8"
    path.write_bytes(text)
    with pytest.raises(InputError, match=r"master.m3u8:1: found ''; expected '#EXTM3U' first"):
        read_manifest(path)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"max_buffer_s": [30]}, "got [30]; expected a number"),
    ({"max_buffer_s": True}, "got True; expected a number"),
    ({"abandonment": 1}, "got 1; expected true or false"),
    ({"estimator": 3}, "got 3; expected a string"),
])
def test_a_model_field_of_the_wrong_kind_is_refused(fields, expected):
    """Found by the sweep fuzzer: ``max_buffer_s = [30]`` in a spec raised TypeError."""
    with pytest.raises(InputError, match=re.escape(expected)):
        PlayerModel().replace(**fields)


def test_a_sweep_model_field_of_the_wrong_kind_is_one_line(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "x"\nalgorithms = ["bola"]\n'
                    'models = [{ name = "m", fields = { max_buffer_s = [30] } }]\n'
                    '[[traces]]\nprofile = "constant"\ncount = 1\n')
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "max_buffer_s" in result.stderr and "expected a number" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("0\n5\n99999999999999999999\n", r"mm:3, field 'timestamp_ms': found 99999999999999999999; "
                                     r"expected >= 0 and at most 1e\+12 ms"),
    ("0\n5\n999999999999\n", r"mm:3, field 'timestamp_ms': bins of 100 ms up to the last timestamp: "
                             r"10,000,000,000 samples, over the limit .* ABRSIM_MAX_TRACE_SAMPLES"),
])
def test_a_sparse_or_overflowing_mahimahi_trace_is_refused_before_binning(tmp_path, text, expected):
    """Found by the trace fuzzer: a timestamp past 2**63 ms overflowed with a numpy warning, and
    one of 1e12 ms asked for ten billion bins."""
    path = tmp_path / "mm"
    path.write_text(text)
    with pytest.raises(InputError, match=expected):
        load_trace(path, "mahimahi")


def test_an_mpd_whose_namespace_has_a_space_is_one_line(tmp_path):
    """Found by the manifest fuzzer: expat without namespaces accepted it, minidom then raised."""
    path = tmp_path / "title.mpd"
    path.write_text('<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:das\th:schema" type="static"/>\n')
    with pytest.raises(InputError, match=r"title.mpd:2: malformed XML: syntax error"):
        read_manifest(path)


def test_a_sweep_over_the_session_limit_is_refused_before_spawning_seeds(tmp_path):
    """Found by the sweep fuzzer: 786,793 replications (under the limit alone, 56 million sessions
    with the rest of the spec) spent over 10 s spawning seeds before the limit refused them."""
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "x"\nreplications = 786793\nladders = ["hls", "mobile"]\n'
                    'algorithms = ["bola", "throughput"]\n[[traces]]\nprofile = "constant"\ncount = 9\n'
                    'params = { bandwidth_bps = 1e6, duration_s = 10 }\n')
    started = time.perf_counter()
    expected = (r"spec.toml: sessions in the sweep \(at least: 786,793 replications x 36 per seed, traces x "
                r"ladders x models x algorithms\): 28,324,548")
    with pytest.raises(InputError, match=expected):
        load_spec(spec)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("load", [load_scenario, load_spec])
def test_a_scenario_or_spec_over_the_input_size_limit_is_refused_unread(tmp_path, monkeypatch, load):
    """Found by the scenario fuzzer: a 100 MB scenario (an array of 5 million numbers) took over 10 s
    and 1 GB to parse; such files now meet the manifests' size limit before they are read."""
    path = tmp_path / "big.toml"
    path.write_text('name = "big"\nwatch_s = [' + "1, " * 1000 + "]\n")
    monkeypatch.setenv("ABRSIM_MAX_INPUT_BYTES", "1000")
    expected = r"big.toml: file size: 3,\d{3} bytes, over the limit .*ABRSIM_MAX_INPUT_BYTES"
    with pytest.raises(InputError, match=expected):
        load(path)


@pytest.mark.parametrize(("text", "expected"), [
    (" 1.8e308", r"t.json:1: found \"1.8E\+308\"; expected a non-empty JSON list"),
    ("[1.5]", r"t.json, field 'entry 0': found \"1.5\"; expected an object"),
    ('[{"duration_ms": 1e400, "bandwidth_kbps": 1, "latency_ms": 0}]',
     r"field 'entry 0 duration_ms': found 1E\+400; expected > 0 \(no zero-length samples\) "
     r"and at most 1e\+12"),
])
def test_a_sabre_trace_of_bare_or_endless_numbers_is_one_line(tmp_path, text, expected):
    """Found by the trace fuzzer: a JSON number where a list was expected raised TypeError (Decimal
    is not JSON serializable), and durations summing to infinity warned before the error."""
    path = tmp_path / "t.json"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=expected):
            load_trace(path)


def test_stats_of_a_trace_of_a_billion_seconds_are_refused_before_allocating(tmp_path):
    """Found by the trace fuzzer: ``traces stats`` on a 1e9 s trace asked for 7.45 GiB of 1 s means."""
    path = tmp_path / "long.csv"
    path.write_text("# duration_s=1e9\ntime_s,bandwidth_mbps\n0,1\n")
    result = CliRunner().invoke(cli, ["traces", "stats", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "abrsim: error: trace 'long': intervals of 1 s: 1,000,000,000 samples, over the limit of 20,000,000 "
        "(samples in one trace); if you mean it, set ABRSIM_MAX_TRACE_SAMPLES higher")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("m.json", '{"segment_duration_ms": 4000, "bitrates_kbps": [1' + "0" * 400 + '],'
               ' "segment_sizes_bits": [[1]]}',
     r"m.json, field 'bitrates_kbps\[0\]': expected a finite number > 0, found 10000"),
    ("s.csv", "chunk_index,kbps_100,kbps_200\n0,1e308,1e308\n",
     r"s.csv, field 'kbps_100': found a size of 1e\+308 bytes at chunk 0; expected at most 2.25e\+307"),
])
def test_a_ladder_of_numbers_past_the_float_range_is_one_line(tmp_path, name, text, expected):
    """Found by the ladder fuzzer: an integer of 400 digits raised OverflowError, and a size of
    1e308 bytes warned of an overflow before the error (which named segment_duration_s)."""
    path = tmp_path / name
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=expected):
            load_ladder(path, 4.0 if name.endswith(".csv") else None)


MPD_HEAD = '<?xml version="1.0"?>\n<MPD type="static" mediaPresentationDuration="PT20S"><Period>'
MPD_VIDEO = ('<AdaptationSet contentType="video"><SegmentTemplate timescale="1000" duration="2000"/>'
             '<Representation id="a" bandwidth="400000"/></AdaptationSet></Period></MPD>\n')


@pytest.mark.parametrize(("text", "options", "expected"), [
    (MPD_HEAD + MPD_VIDEO.replace('<SegmentTemplate timescale="1000" duration="2000"/>', ""),
     {"segment_duration_s": 1e-9},
     r"t.mpd, field 'duration_s': segments in the title \(duration / segment duration\): "
     r"20,000,000,000 segments, over the limit .*ABRSIM_MAX_SEGMENTS"),
    (MPD_HEAD.replace("1.0", '1.0" encoding="UTFinf') + MPD_VIDEO, {},
     r"t.mpd:1: malformed XML: unknown encoding: UTFinf; expected UTF-8"),
    (MPD_HEAD + MPD_VIDEO.replace('duration="2000"', f'duration="{10**400}"'), {},
     r"t.mpd:2, field 'SegmentTemplate': attribute duration='1000.*'; "
     r"expected an integer of at most 2\*\*53"),
])
def test_an_mpd_that_overflows_is_one_line(tmp_path, text, options, expected):
    """Found by the manifest fuzzer: a title of 600 s in segments of 1 ns asked for 8.7 TiB of sizes,
    an unknown XML encoding raised LookupError, and a duration of 10**400 OverflowError."""
    path = tmp_path / "t.mpd"
    path.write_text(text)
    with pytest.raises(InputError, match=expected):
        read_manifest(path, **options)


@pytest.mark.parametrize(("variant", "expected"), [
    ("BANDWIDTH=inf",
     r"m.m3u8:2, field 'BANDWIDTH': found BANDWIDTH=inf; expected a number of bit/s"),
    (f"BANDWIDTH=1000,AVERAGE-BANDWIDTH={10**400}",
     r"m.m3u8:2, field 'AVERAGE-BANDWIDTH': found AVERAGE-BANDWIDTH=1000.*; "
     r"expected bit/s > 0 and at most 2\*\*53"),
])
def test_an_hls_bandwidth_past_the_float_range_is_one_line(tmp_path, variant, expected):
    """Found by the manifest fuzzer: OverflowError from m3u8 (inf) and from float() (an integer of
    400 digits)."""
    path = tmp_path / "m.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-STREAM-INF:{variant},RESOLUTION=640x360\nv.m3u8\n")
    with pytest.raises(InputError, match=expected):
        read_manifest(path, segment_duration_s=4.0)


@pytest.mark.parametrize("uri", ["v\x00.m3u8", "x" * 300 + ".m3u8"])
def test_an_hls_variant_that_cannot_name_a_file_is_a_note(tmp_path, uri):
    """Found by the manifest fuzzer: a NUL byte in a variant URI raised ValueError."""
    path = tmp_path / "m.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x360\n{uri}\n")
    result = read_manifest(path, segment_duration_s=4.0)
    assert any("not a usable file name" in note for note in result.notes), result.notes


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("spec.toml", 'name = "x"\n[[traces]]\npath = "' + "x" * 300 + '"\n', r"field 'traces\[0\].path'"),
    ("scenario.toml", 'name = "x"\n[traces.t]\npath = "' + "x" * 300 + '"\n', r"field 'traces.t.path'"),
    ("scenario.toml", 'name = "x"\n[traces.t]\nbuiltin = "a\\u0000b"\n',
     r"field 'traces.t.builtin': found a NUL character"),
    ("ladder.toml", 'segment_duration_s = 2.0\nsizes = "' + "x" * 300 + '"\n', r"field 'sizes'"),
])
def test_a_path_that_cannot_name_a_file_is_one_line(tmp_path, name, text, expected):
    """Found by the sweep fuzzer: a trace path of 300 characters raised OSError (File name too long)."""
    path = tmp_path / name
    path.write_text(text)
    load = {"spec.toml": load_spec, "scenario.toml": load_scenario, "ladder.toml": load_ladder}[name]
    with pytest.raises(InputError, match=expected):
        load(path)


def test_a_scenario_number_past_the_float_range_is_one_line(tmp_path):
    """Found by the scenario fuzzer: an integer of 400 digits where a duration goes raised OverflowError."""
    path = tmp_path / "s.toml"
    path.write_text(f'name = "x"\n[setup]\ndns_s = {10**400}\n')
    with pytest.raises(InputError, match=r"s.toml, field 'setup.dns_s'"):
        load_scenario(path)
