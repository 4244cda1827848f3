"""`trico plan` / `trico calibrate` from the command line: tables, files, plots and one-line errors."""

import json

import pytest

from trico.cli import main


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_prints_table_and_writes_files(capsys, tmp_path):
    code, out, _ = _run(
        capsys,
        [
            "plan",
            "--model",
            "llama-2-7b,llama-2-70b",
            "--scheme",
            "bf16,int4-g128",
            "--hardware",
            "h100-sxm",
            "--batch",
            "1,8",
            "--prompt",
            "512",
            "--roofline",
            "--csv",
            str(tmp_path / "p.csv"),
            "--json",
            str(tmp_path / "p.json"),
        ],
    )
    assert code == 0
    assert "TPOT ms" in out and "pareto" in out
    assert "does not fit: llama-2-70b bf16" in out and "does NOT fit in 80 GB" in out
    rows = json.loads((tmp_path / "p.json").read_text())["rows"]
    assert len(rows) == 8 and any(r["pareto"] == "*" for r in rows)
    assert (tmp_path / "p.csv").read_text().count("\n") == 9


def test_plan_what_if_and_user_device(capsys, tmp_path):
    dev = {
        "name": "my-chip",
        "memory_GB": {"value": 24, "source": "spec sheet"},
        "memory_bandwidth_GBps": {"value": 500, "source": "spec sheet"},
        "peak_TFLOPs": {"bf16": {"value": 100, "source": "spec sheet"}},
        "price_per_hour_usd": {"value": 0.5, "source": "quote"},
    }
    f = tmp_path / "chip.json"
    f.write_text(json.dumps(dev))
    code, out, _ = _run(
        capsys,
        ["plan", "--hardware-file", str(f), "--scheme", "int8", "--batch", "64", "--what-if", "bw=0.5,1,4"],
    )
    assert code == 0 and "my-chip" in out and "what-if on my-chip (bw)" in out and "compute" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "--hardware", "h100-sxn"], "did you mean h100-sxm"),
        (["plan", "--batch", "-4"], "--batch: '-4' must be >= 1"),
        (["plan", "--batch", "four"], "--batch: 'four' is not a whole number"),
        (["plan", "--kv-keep", "2"], "kv_keep"),
        (["plan", "--model", "llama-9"], "unknown model preset"),
        (["plan", "--scheme", "int5-magic"], "unknown quantization scheme"),
        (["plan", "--objectives", "tpot"], "at least two"),
        (["plan", "--hardware-file", "/nonexistent.json"], "no such hardware file"),
        (["calibrate", "/nonexistent.json"], "cannot read benchmark results"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, _, err = _run(capsys, argv)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_calibrate_writes_a_fit(capsys, tmp_path):
    recs = []
    for fmt, ms in (("bf16", 7.0), ("int4-g128", 2.6)):
        for b, extra, ctx in (
            (1, 0.0, 128),
            (4, 0.2, 128),
            (16, 0.4, 128),
            (64, 1.5, 128),
            (1, 0.5, 1024),
            (16, 1.2, 1024),
        ):
            recs.append(
                {
                    "bench": "decode",
                    "model": "llama-2-7b",
                    "scheme": fmt,
                    "batch": b,
                    "prompt": 128,
                    "context": ctx,
                    "new_tokens": 64,
                    "ms_per_token": ms + extra,
                    "gpu": "NVIDIA H100 80GB HBM3",
                }
            )
    res = tmp_path / "r.json"
    res.write_text(json.dumps(recs))
    out_file = tmp_path / "fit.json"
    code, out, _ = _run(capsys, ["calibrate", str(res), "--hardware", "h100-sxm", "--out", str(out_file)])
    assert code == 0 and "fitted 12 measurements" in out
    fit = json.loads(out_file.read_text())
    assert 0 < fit["efficiency"]["bw"] <= 1.5 and fit["n_measurements"] == 12
