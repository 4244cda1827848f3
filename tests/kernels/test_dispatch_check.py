"""benchmarks/dispatch_check.py (the interpreter on CPU, the kernels on a GPU): it runs, reports, and refuses bad options."""

import json

import pytest

from benchmarks import dispatch_check
from tests.kernels.test_qlinear import DEV


def test_dispatch_check_runs_every_case_and_writes_json(tmp_path):
    out = tmp_path / "check.json"
    argv = ["--device", DEV, "--shapes", "48x128", "--rows", "1,5", "--formats", "int8,tern2"]
    assert dispatch_check.main(argv + ["--repeats", "1", "--force-split", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["format"], r["rows"]) for r in rows] == [("int8", 1), ("int8", 5), ("tern2", 1), ("tern2", 5)]
    assert all(r["max_rel_err"] < 1e-2 for r in rows)
    assert DEV == "cuda" or all(r["kernel"] == "qmm" for r in rows)  # the CPU path
    assert all(r["forced_split"][5] == 2 and r["forced_split_max_rel_err"] < 1e-2 for r in rows)
    # tern2 at one row is the f16x2 GEMV's, which writes the SiLU gate itself; int8's word GEMV does not
    assert [("gate_max_rel_err" in r) for r in rows] == [False, False, True, False]
    assert rows[2]["gate_max_rel_err"] < 2e-2  # the script's --gate-tol


def test_dispatch_check_fails_on_a_tolerance_nothing_meets():
    argv = ["--device", DEV, "--shapes", "48x128", "--rows", "1", "--formats", "int8", "--repeats", "1"]
    assert dispatch_check.main(argv + ["--tol", "-1"]) == 1  # (the GPU path can be exact)


@pytest.mark.parametrize("bad", [["--formats", "int9"], ["--shapes", "48by128"]])
def test_dispatch_check_rejects_bad_options(bad, capsys):
    with pytest.raises(SystemExit) as e:
        dispatch_check.main(["--device", "cpu", *bad])
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
