"""The default scenario's results, pinned: any change in behaviour shows up here.

After an intended change, regenerate the file and review the diff:

    abrsim run --format json | python tests/test_golden.py > tests/golden/default_run.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

GOLDEN = Path(__file__).with_name("golden") / "default_run.json"
VOLATILE = ("abrsim_version",)


def strip(rows):
    """Drop the volatile fields; ``params`` as an object (JSON output nests it; older files hold its text)."""
    return [{k: json.loads(v) if k == "params" and isinstance(v, str) else v for k, v in row.items()
             if k not in VOLATILE} for row in rows]


def test_default_scenario_matches_golden():
    from abrsim.cli import cli

    result = CliRunner().invoke(cli, ["run", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    got = strip(json.loads(result.output))
    expected = strip(json.loads(GOLDEN.read_text()))
    assert [(r["trace"], r["policy"]) for r in got] == [(r["trace"], r["policy"]) for r in expected]
    for row, want in zip(got, expected):
        assert set(row) == set(want)
        for key, value in want.items():
            if isinstance(value, float) and not math.isnan(value):
                assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (row["trace"], key)
            else:
                assert row[key] == value, (row["trace"], key)


if __name__ == "__main__":
    json.dump(strip(json.load(sys.stdin)), sys.stdout, indent=1)
    sys.stdout.write("\n")
