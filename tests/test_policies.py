"""The open core: compiled policies registered by users, Python policies in both engines, the checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_path

from abrsim.abr import ALGORITHMS, available, check_policy, load_policy, make, register
from abrsim.abr._python import PolicyError
from abrsim.cli import cli
from abrsim.engine import des, fast
from abrsim.errors import InputError
from abrsim.ladder import load_ladder
from abrsim.model import PRESETS, PlayerModel
from abrsim.results import IDENTITY_FIELDS
from abrsim.trace import load_traces

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = f"{ROOT / 'docs' / 'examples' / 'buffer_based.py'}:BufferBased"
NUMBA_EXAMPLE = ROOT / "docs" / "examples" / "buffer_based_numba.py"
LOG_FIELDS = ("segment", "rung", "size_bits", "downloaded_bits", "abandoned", "request_s", "first_byte_s",
              "done_s", "buffer_before_s", "buffer_after_s", "stall_s", "wait_s")


def real_traces(count: int | None = None):
    traces = load_traces([shared_path("traces", "hsdpa_norway_3g")])
    return traces if count is None else traces[:count]


def same_logs(a, b) -> bool:
    return (all(np.array_equal(getattr(a, f), getattr(b, f)) for f in LOG_FIELDS)
            and (a.startup_s, a.end_s, a.rebuffer_count) == (b.startup_s, b.end_s, b.rebuffer_count))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_python_example_equals_the_builtin_kernel_in_the_fast_engine(preset):
    ladder = load_ladder("hls")
    traces = real_traces()
    model = PRESETS[preset]
    builtin = fast.run_batch(traces, ladder, "bb", model)
    python = fast.run_batch(traces, ladder, load_policy(EXAMPLE), model)
    assert np.array_equal(builtin.rungs, python.rungs)
    assert np.array_equal(builtin.log, python.log)
    assert np.array_equal(builtin.session, python.session)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_python_example_equals_the_builtin_kernel_in_the_discrete_event_engine(preset):
    ladder = load_ladder("hls")
    model = PRESETS[preset]
    policy = load_policy(EXAMPLE)
    for trace in real_traces(12):
        expected = fast.run_session(trace, ladder, "bb", model)
        assert same_logs(des.run_session(trace, ladder, policy, model), expected)
        assert same_logs(des.run_session(trace, ladder, "bb", model), expected)


def test_a_compiled_user_policy_equals_the_builtin_and_compiles_its_own_loop():
    policy = load_policy(f"{NUMBA_EXAMPLE}:bb_numba")  # the file registers it when imported
    assert policy.name == "bb_numba" and "bb_numba" in available()
    ladder = load_ladder("hls")
    traces = real_traces(40)
    for preset in ("abrsim", "pensieve"):
        builtin = fast.run_batch(traces, ladder, "bb", PRESETS[preset])
        user = fast.run_batch(traces, ladder, "bb_numba", PRESETS[preset])
        assert np.array_equal(builtin.log, user.log) and np.array_equal(builtin.rungs, user.rungs)
    loops = ALGORITHMS["bb_numba"].loops()
    assert loops is ALGORITHMS["bb_numba"].loops()  # specialised once per process
    assert loops["run_batch"] is not ALGORITHMS["bb"].loops()["run_batch"]
    assert "bb_numba" in loops["run_batch"].py_func.__qualname__


def test_a_run_compiles_only_the_policy_it_uses(tmp_path):
    # In a fresh process with an empty numba cache: run BOLA, then see which kernels got compiled.
    script = textwrap.dedent("""
        import json
        from abrsim.abr import _dashjs, _kernels
        from abrsim.engine.fast import run_batch
        from abrsim.ladder import load_ladder
        from abrsim.trace import load_traces
        from abrsim._data import data_dir
        run_batch(load_traces([data_dir("traces")]), load_ladder("hls"), "bola")
        def compiled(kernel):  # called from Python, or (its copy, see abrsim._jit.Kernel) from run_batch
            copy = getattr(kernel, "_compiled", None)
            return bool(kernel.signatures or (copy is not None and copy.signatures))
        used = {name: compiled(getattr(_kernels, name))
                for name in ("bola_choose", "mpc_choose", "bolae_choose", "throughput_choose")}
        used["dashjs_choose"] = compiled(_dashjs.dashjs_choose)
        print(json.dumps(used))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env=env)
    used = json.loads(result.stdout.strip().splitlines()[-1])
    assert used == {"bola_choose": True, "mpc_choose": False, "bolae_choose": False,
                    "throughput_choose": False, "dashjs_choose": False}


def test_register_refuses_what_is_not_a_compiled_policy():
    with pytest.raises(InputError, match="numba function"):
        register("plain_python", choose=lambda *args: (0, 0.0))
    with pytest.raises(InputError, match="lower-case name"):
        register("Bad Name", choose=ALGORITHMS["bb"].choose)
    with pytest.raises(InputError, match="already registered"):
        register("bola", choose=ALGORITHMS["bb"].choose)


def test_policies_of_installed_packages_register_through_entry_points(monkeypatch):
    import abrsim.abr as abr

    class Point:
        name = "demo"
        value = "demo_package:register"

        @staticmethod
        def load():
            def registers():
                register("bb_plugin", choose=ALGORITHMS["bb"].choose, params=ALGORITHMS["bb"].params,
                         replace=True)
            return registers

    monkeypatch.setattr(abr, "_PLUGINS_LOADED", False)
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [Point] if group == "abrsim.policies"
                        else [])
    assert "bb_plugin" in available()
    assert make("bb_plugin", cushion_s=12.0).params["cushion_s"] == 12.0


def test_a_broken_entry_point_is_one_clear_error(monkeypatch):
    import abrsim.abr as abr

    class Point:
        name = "broken"
        value = "no_such_package:register"

        @staticmethod
        def load():
            raise ModuleNotFoundError("No module named 'no_such_package'")

    monkeypatch.setattr(abr, "_PLUGINS_LOADED", False)
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [Point])
    with pytest.raises(InputError, match="entry point broken = no_such_package:register"):
        available()
    monkeypatch.setattr(abr, "_PLUGINS_LOADED", True)


BAD_POLICIES = textwrap.dedent("""
    class Broken:
        def choose(self, obs):
            return 1 / 0

    class Far:
        def choose(self, obs):
            return 99

    class Wrong:
        def choose(self, obs):
            return "high"

    class NoChoose:
        def pick(self, obs):
            return 0

    class Mutates:
        def choose(self, obs):
            obs.size_bits[0, 0] = 1.0
            return 0

    class Random:
        def choose(self, obs):
            import random
            return random.randrange(2)

    class BadPause:
        def choose(self, obs):
            return 0, -1.0

    class BadReset:
        def reset(self, ladder, model, rng):
            raise RuntimeError("no ladder for me")

        def choose(self, obs):
            return 0

    class Quits:
        def choose(self, obs):
            raise SystemExit(0)

    class Yes:
        def choose(self, obs):
            return True

    class PausesTrue:
        def choose(self, obs):
            return 0, True

    class JustExits:
        def choose(self, obs):
            raise SystemExit
""")


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(BAD_POLICIES)
    (tmp_path / "syntax.py").write_text("class A:\n    def choose(self, obs)\n        return 0\n")
    (tmp_path / "raises.py").write_text("import no_such_module_here\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    return path


@pytest.mark.parametrize(("name", "expected"), [
    ("Broken", r"bad.py:4: Broken.choose raised ZeroDivisionError"),
    ("Far", r"bad.py: Far.choose returned rung 99 for segment 1, expected 0 to 8"),
    ("Wrong", r"Wrong.choose returned 'high' \(str\)"),
    ("NoChoose", r"bad.py:14: class NoChoose has no choose\(obs\) method"),
    ("Mutates", r"bad.py:20: Mutates.choose raised ValueError: .*read-only"),
    ("BadPause", r"BadPause.choose returned a pause of -1.0"),
    ("BadReset", r"bad.py:34: BadReset.reset raised RuntimeError: no ladder for me"),
    ("Missing", r"no class 'Missing'; the file defines: BadPause, BadReset, Broken"),
    ("Quits", r"bad.py:\d+: Quits.choose raised SystemExit: 0"),  # not a quiet exit 0
    ("Yes", r"Yes.choose returned True \(bool\) for segment 1, expected a rung"),
    ("PausesTrue", r"PausesTrue.choose returned a pause of True, expected a finite number of seconds"),
    ("JustExits", r"bad.py:\d+: JustExits.choose raised SystemExit$"),
])
def test_a_bad_policy_is_one_line_exit_2_and_no_results(bad_file, name, expected):
    result = CliRunner().invoke(cli, ["run", "--policy", f"{bad_file}:{name}", "--format", "csv"])
    assert result.exit_code == 2
    assert result.stdout == ""  # no partial results
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert __import__("re").search(expected, lines[0]), lines[0]


def test_files_that_do_not_import_name_their_line(bad_file):
    for file, expected in (("syntax.py", "syntax.py:2: syntax error"),
                           ("raises.py", "raises.py:1: importing it raised ModuleNotFoundError"),
                           ("exits.py", "exits.py:2: importing it raised SystemExit")):
        with pytest.raises(PolicyError, match=expected):
            load_policy(f"{bad_file.parent / file}:A")
    for reference, expected in (("nofile.py:A", "no such file"), ("bad.txt:A", "expected a .py file"),
                                ("bad.py", "expected FILE.py:ClassName")):
        with pytest.raises(PolicyError, match=expected):
            load_policy(reference)


def test_policies_check_tells_what_is_wrong_with_the_traceback(bad_file):
    ok = CliRunner().invoke(cli, ["policies", "check", EXAMPLE])
    assert ok.exit_code == 0
    assert "ok: deterministic" in ok.stdout
    broken = CliRunner().invoke(cli, ["policies", "check", f"{bad_file}:Broken"])
    assert broken.exit_code == 2
    assert "Traceback" in broken.stderr and "return 1 / 0" in broken.stderr
    assert "bad.py:4: Broken.choose raised ZeroDivisionError" in broken.stderr.strip().splitlines()[-1]
    with pytest.raises(PolicyError, match="not deterministic"):
        check_policy(f"{bad_file}:Random")
    quits = CliRunner().invoke(cli, ["policies", "check", f"{bad_file}:Quits"])
    assert quits.exit_code == 2
    assert "Quits.choose raised SystemExit" in quits.stderr.strip().splitlines()[-1]


def test_a_python_policy_sees_what_real_algorithms_need(tmp_path):
    seen: list[dict] = []

    class Recorder:
        name = "recorder"

        def reset(self, ladder, model, rng):
            self.downloads = 0

        def choose(self, obs):
            seen.append({"segment": obs.segment_index, "segments": obs.segments, "buffer_s": obs.buffer_s,
                         "last_rung": obs.last_rung, "throughput_bps": obs.throughput_bps,
                         "latency_s": obs.latency_s, "time_s": obs.time_s, "rebuffer_s": obs.rebuffer_s,
                         "download_s": obs.download_s, "download_size_bits": obs.download_size_bits,
                         "download_latency_s": obs.download_latency_s, "downloads": self.downloads,
                         "next": obs.next_sizes_bits(3).copy(), "bitrates": obs.bitrates_bps.copy()})
            return min(obs.segment_index % 3, len(obs.bitrates_bps) - 1)

        def on_download(self, obs, abandoned):
            self.downloads += 1

    from abrsim.abr import PythonPolicy

    ladder = load_ladder("hls")
    trace = load_traces([ROOT / "traces"])[0]
    log = fast.run_session(trace, ladder, PythonPolicy(Recorder), PlayerModel())
    assert [s["segment"] for s in seen] == list(range(1, ladder.segment_count))  # segment 0: first_rung
    for decision in seen:
        index = decision["segment"]
        assert decision["segments"] == ladder.segment_count
        assert decision["downloads"] == index  # on_download ran after each earlier download
        assert np.array_equal(decision["next"], ladder.size_bits[index:index + 3])
        assert np.array_equal(decision["bitrates"], ladder.bitrates_bps)
        assert decision["time_s"] == log.request_s[index]  # after any full-buffer wait; no pause
        assert decision["rebuffer_s"] == pytest.approx(log.stall_s[:index].sum())
        assert decision["download_s"] == pytest.approx(log.done_s[index - 1] - log.request_s[index - 1])
        assert decision["download_size_bits"] == log.size_bits[index - 1]
        assert decision["latency_s"] > 0.0 and decision["throughput_bps"] > 0.0


def test_a_python_policy_can_abandon_like_the_compiled_rule():
    # The throughput rule's abandonment, restated in Python on top of the built-in decisions.
    class Impatient:
        name = "impatient"

        def choose(self, obs):
            return len(obs.bitrates_bps) - 1

        def abandon(self, obs):
            if obs.download_rung > 0 and obs.download_s > 2 * obs.segment_duration_s:
                return 0
            return None

    from abrsim.abr import PythonPolicy

    ladder = load_ladder("hls")
    traces = real_traces(10)
    model = PlayerModel(abandonment=True)  # the abandoned download's retry is at the rung it asked for
    batch = fast.run_batch(traces, ladder, PythonPolicy(Impatient), model)
    abandoned = batch.log[:, fast.kernel.COL_ABANDONED] != 0
    assert abandoned.any()
    assert np.all(batch.rungs[np.flatnonzero(abandoned) + 1] == 0)  # the retry is at rung 0 ...
    assert np.all(batch.rungs[abandoned] == ladder.rung_count - 1)  # ... of a top-rung download
    # and the DES makes the same sessions
    for index, trace in enumerate(traces[:3]):
        assert same_logs(des.run_session(trace, ladder, PythonPolicy(Impatient), model),
                         batch.session_log(index))


def test_a_policy_that_abandons_every_download_is_an_error_not_a_hang():
    from abrsim.abr import PythonPolicy

    class Hopeless:
        def choose(self, obs):
            return 0

        def abandon(self, obs):
            return 0  # even the lowest rung, so the retry is abandoned too, forever

    with pytest.raises(InputError, match="abandon every download"):
        fast.run_batch(real_traces(1), load_ladder("hls"), PythonPolicy(Hopeless),
                       PlayerModel(abandonment=True))


def test_python_policies_in_scenarios_and_sweep_specs(tmp_path):
    from abrsim.scenario import load_scenario
    from abrsim.sweep import load_spec, plan_sweep, run_chunk

    (tmp_path / "bb.py").write_text((ROOT / "docs" / "examples" / "buffer_based.py").read_text())
    (tmp_path / "scenario.toml").write_text(textwrap.dedent("""
        name = "mine"
        ladder = "hls"
        [traces.mobile]
        builtin = "3g_high"
        [[players]]
        policy = "bb.py:BufferBased"
        count = 2
        access_trace = "mobile"
        [[players]]
        abr = "bb"
        count = 2
        access_trace = "mobile"
    """))
    scenario = load_scenario(tmp_path / "scenario.toml")
    run = des.simulate(scenario, seed=1)
    rows = run.rows()
    by_policy = {row["policy"]: row for row in rows}
    assert {"bb_python", "bb"} <= set(by_policy)
    (tmp_path / "spec.toml").write_text(textwrap.dedent(f"""
        name = "mine"
        ladders = ["hls"]
        algorithms = ["bb", {{policy = "bb.py:BufferBased"}}]
        [[traces]]
        path = "{ROOT / 'traces'}"
    """))
    spec = load_spec(tmp_path / "spec.toml")
    plan = plan_sweep(spec)
    rows = {chunk.algorithm: run_chunk(chunk, plan.groups[chunk.group]) for chunk in plan.chunks}
    metrics = slice(len(IDENTITY_FIELDS), None)
    builtin = np.array([r[metrics] for r in rows["bb"]], dtype=float)
    python = np.array([r[metrics] for r in rows["bb_python"]], dtype=float)
    assert np.array_equal(builtin, python, equal_nan=True)


def test_a_compiled_policy_that_chooses_outside_the_ladder_is_an_error_in_both_engines():
    from numba import njit

    @njit(cache=False)
    def choose(params, state, obs, bitrates_bps, size_bits):
        return bitrates_bps.shape[0], 0.0  # one past the top rung

    register("off_the_ladder", choose=choose, replace=True)
    ladder = load_ladder("hls")
    trace = load_traces([ROOT / "traces"])[0]
    with pytest.raises(InputError, match="chose a rung outside 0 to 8"):
        fast.run_batch([trace], ladder, "off_the_ladder")
    with pytest.raises(InputError, match="chose rung 9, expected 0 to 8"):
        des.run_session(trace, ladder, "off_the_ladder")


def test_the_documented_commands_run_and_print_what_the_page_shows(monkeypatch):
    """Every `abrsim ...` line of docs/policies.md that names the repository's examples runs, and
    prints each line the page shows after it (``...`` stands for lines left out)."""
    import shlex

    monkeypatch.chdir(ROOT)
    lines = (ROOT / "docs" / "policies.md").read_text().splitlines()
    shown = []
    for number, line in enumerate(lines):
        if line.startswith("$ abrsim ") and "docs/examples/" in line:
            end = lines.index("```", number)
            shown.append((line[len("$ abrsim "):], [text for text in lines[number + 1:end] if text != "..."]))
    assert len(shown) >= 3
    for command, expected in shown:
        result = CliRunner().invoke(cli, shlex.split(command))
        assert result.exit_code == 0, (command, result.output)
        printed = [text.rstrip() for text in result.output.splitlines()]
        assert [text for text in expected if text.rstrip() not in printed] == [], command


def test_a_policy_cannot_change_the_ladder_it_is_given(tmp_path):
    (tmp_path / "vandal.py").write_text(textwrap.dedent("""
        class Vandal:
            def reset(self, ladder, model, rng):
                ladder.size_bits[:, 0] *= 2.0

            def choose(self, obs):
                return 0
    """))
    with pytest.raises(PolicyError, match=r"vandal.py:4: Vandal.reset raised ValueError: .*read-only"):
        check_policy(f"{tmp_path / 'vandal.py'}:Vandal")
