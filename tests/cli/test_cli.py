"""The CLI end to end: the Paris answer, and one-line errors with exit status 2 for bad input."""

import subprocess
import sys

import pytest

from tests.helpers import needs_smollm2
from trico.cli import main
from trico.io.loader import default_gguf_path


def _run_main(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@needs_smollm2
def test_generate_answers_paris_from_a_fresh_process():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trico",
            "generate",
            "--prompt",
            "What is the capital of France?",
            "--max-new-tokens",
            "24",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--model", "/no/such/model", "--prompt", "hi"], "no such file"),
        (["eval", "--model", "/no/such/model"], "no such file"),
        (["generate", "--prompt", "hi", "--temperature", "-1"], "temperature"),
        (["generate", "--prompt", "hi", "--device", "tpu9"], "unknown device"),
        (["eval", "--windows", "100000"], "room for"),
        (["eval", "--file", "/no/such/text.txt"], "no such text file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, _, err = _run_main(capsys, argv)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("trico: error")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in err


def test_not_a_model_file(capsys, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x00" * 64)
    code, _, err = _run_main(capsys, ["generate", "--model", str(junk), "--prompt", "hi", "--device", "cpu"])
    assert code == 2 and "not a readable GGUF" in err


@needs_smollm2
def test_truncated_gguf_and_too_long_prompt(capsys, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_gguf_path().read_bytes()[:5_000_000])
    code, _, err = _run_main(capsys, ["generate", "--model", str(cut), "--prompt", "hi", "--device", "cpu"])
    assert code == 2 and "cut.gguf" in err and "Traceback" not in err
    code, _, err = _run_main(
        capsys, ["generate", "--prompt", "word " * 300, "--max-context", "128", "--device", "cpu", "--raw"]
    )
    assert code == 2 and "longer than the context" in err


def test_help_teaches():
    out = subprocess.run(
        [sys.executable, "-m", "trico", "generate", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "examples:" in out.stdout and "--top-p" in out.stdout


@needs_smollm2
def test_chat_keeps_the_conversation_over_stdin():
    script = "What is the capital of France?\nAnd what country is that city in?\n/exit\n"
    out = subprocess.run(
        [sys.executable, "-m", "trico", "chat", "--device", "cpu", "--max-new-tokens", "24"],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    replies = [line for line in out.stdout.split("bot> ") if line.strip()]
    assert len(replies) == 2 and "Paris" in replies[0]


def test_bench_refuses_gpu_sized_models_on_the_cpu(capsys):
    code, _, err = _run_main(capsys, ["bench", "--models", "llama-2-7b", "--device", "cpu"])
    assert code == 2 and "GPU benchmark" in err


def test_bench_refuses_a_bad_format_before_measuring_anything(capsys, monkeypatch, tmp_path):
    from trico.engine import benchmark

    monkeypatch.setattr(benchmark, "copy_bandwidth", lambda device: pytest.fail("measured before the check"))
    out = tmp_path / "r.json"
    argv = ["bench", "--models", "tiny", "--formats", "bf16,int9", "--device", "cpu", "--out", str(out)]
    code, _, err = _run_main(capsys, argv)
    assert code == 2 and "unknown benchmark format 'int9'" in err and not out.exists()


def test_quantize_calibration_default_matches_the_library():
    from trico.cli import build_parser
    from trico.quant.calibration import DEFAULT_N_SEQS

    args = build_parser().parse_args(["quantize", "--model", "m", "--scheme", "int8", "--out", "o"])
    assert args.calib_n == DEFAULT_N_SEQS
