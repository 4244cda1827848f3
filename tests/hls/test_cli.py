"""`trico hls ...`: the sub-commands exist next to `hls lint`, and bad input is a one-line error."""

from __future__ import annotations

import pytest

from trico.cli import build_parser, main


def test_hls_group_has_compile_csim_dse() -> None:
    parser = build_parser()
    hls = parser._subparsers._group_actions[0].choices["hls"]
    sub = next(a for a in hls._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"compile", "csim", "dse"} <= set(sub.choices)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["hls", "dse", "--part", "virtex-9", "--out", "X"], "unknown FPGA part"),
        (["hls", "compile", "--part", "nope", "--out", "X"], "unknown FPGA part"),
    ],
)
def test_bad_input_exits_2(argv: list[str], message: str, capsys, tmp_path) -> None:  # noqa: ANN001
    argv = [str(tmp_path / "out") if a == "X" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_csim_of_a_non_design_dir(capsys, tmp_path) -> None:  # noqa: ANN001
    assert main(["hls", "csim", str(tmp_path)]) == 2
    assert "not an emitted HLS design" in capsys.readouterr().err
