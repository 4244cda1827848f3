"""trico.engine.benchmark: a grid it cannot measure is refused, in one line, before anything is timed."""

from pathlib import Path

import pytest
import torch

from tests.helpers import run_benchmark_script
from trico.engine import benchmark
from trico.engine.benchmark import check_grid
from trico.errors import TricoError

GOOD = dict(models=["tiny"], formats=["bf16", "int4-g32"], batches=[1, 4], prompt=16, new_tokens=8)


def _check(**changes) -> None:
    grid = dict(GOOD, contexts=None, prefill=32) | changes
    check_grid(**grid)


def test_a_grid_that_fits_passes():
    _check()
    _check(contexts=[16, 4000])  # one context beyond tiny's 4096 positions is skipped, not refused
    _check(models=["llama-2-7b", "llama-3-8b"], formats=["int4-g128", "int3-g128", "tern1.6", "w8a8"])


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(batches=[1, 0]), "must be >= 1"),
        (dict(batches=[]), "at least one"),
        (dict(contexts=[0]), "must be >= 1"),
        (dict(new_tokens=0), "must be >= 1"),
        (dict(prefill=-1), "--prefill must be >= 0"),
        (dict(prompt=5000), "tiny holds 4096 positions: context 5000 \\+ 8 new tokens"),
        (dict(contexts=[4090, 5000]), "context 4090 \\+ 8 new tokens does not fit"),
        (dict(prefill=5000), "--prefill 5000 does not fit"),
        (dict(formats=["bf16", "int9"]), "unknown benchmark format 'int9'"),
        (dict(models=["llama-9"]), "unknown model preset"),
        (dict(formats=["int4-g128"]), "tiny cannot take int4-g128: group size 128 does not divide"),
        (dict(models=["smollm2-135m"], formats=["int4-g128"]), "in_features=576"),
    ],
)
def test_a_grid_it_cannot_measure_is_refused(changes, message):
    with pytest.raises(TricoError, match=message):
        _check(**changes)


def _run_on_cpu(out: Path, **changes) -> list[dict]:
    """`benchmark.run` of the GOOD grid with these changes, on the CPU, no prefill, no baseline."""
    grid = dict(GOOD, contexts=None, prefill=0, baseline=False, device=torch.device("cpu"), out=out)
    return benchmark.run(**grid | changes)


def test_run_refuses_before_measuring_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(benchmark, "copy_bandwidth", lambda device: pytest.fail("measured before the check"))
    out = tmp_path / "r.json"
    with pytest.raises(TricoError, match="cannot take"):
        _run_on_cpu(out, formats=["bf16", "int4-g128"])
    assert not out.exists()


def test_a_run_where_nothing_ran_says_so_and_writes_nothing(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(benchmark, "bench_decode", broken)
    out = tmp_path / "r.json"
    lines = []
    with pytest.raises(TricoError, match="no configuration of the grid could run"):
        _run_on_cpu(out, formats=["bf16"], batches=[1], log=lines.append)
    assert any("FAILED tiny bf16 batch 1" in line and "kernel exploded" in line for line in lines)
    assert not out.exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--batches", "0"],
        ["--models", "tiny", "--formats", "int4-g128"],
        ["--prompt", "9000"],
        ["--device", "tpu"],
    ],
)
def test_decode_script_refuses_bad_options_in_one_line(bad, tmp_path):
    out = tmp_path / "r.json"
    argv = ["--models", "tiny", "--formats", "bf16", "--device", "cpu", "--no-baseline", "--out", str(out)]
    run = run_benchmark_script("decode.py", *argv, *bad)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith("decode: error: ")
    assert "Traceback" not in run.stderr and not out.exists()
