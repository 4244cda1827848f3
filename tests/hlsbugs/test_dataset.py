import json

import pytest

from tests.hlsbugs.conftest import needs_gxx
from trico.cli import main
from trico.errors import TricoError
from trico.hlsbugs.dataset import GenConfig, generate, kernel_split, load_manifest
from trico.hlsbugs.detectors import make_detector
from trico.hlsbugs.evaluate import evaluate

pytestmark = needs_gxx


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "hlsbugs"
    cfg = GenConfig(
        per_type=1, doubles=2, kernels=["axpy", "gemm"], types=["OOB", "INIT", "FND", "SMA"], jobs=2
    )
    summary = generate(out, cfg, progress=False)
    return out, summary


def test_generate_writes_chrysalis_files_and_a_labeled_manifest(dataset):
    out, summary = dataset
    manifest = load_manifest(out)
    recs = manifest["variants"]
    # axpy has no initialized local, so INIT has a site in gemm only: 2 x 4 - 1 singles.
    assert summary["single"] == 7 and summary["double"] == 4 and summary["invalid"] == 0
    assert summary["per_type"]["OOB"]["validity"] == 1.0 and summary["per_type"]["FND"]["bug"] == 2
    for name in ("axpy", "gemm"):
        assert (out / name / "kernel.cpp").is_file() and (out / name / "tb.cpp").is_file()
        assert manifest["splits"][name] == kernel_split(name)
    for r in recs:
        assert r["label"] in ("bug", "equivalent")
        path = out / r["file"]
        assert path.is_file()
        if r["label"] == "bug":
            spec = json.loads(path.with_suffix(".json").read_text())
            assert spec["Error Size"] == len(r["bug_types"])
            assert [e["Error Type"] for e in spec["Error Specification"]] == r["bug_types"]
            for e, b in zip(spec["Error Specification"], r["bugs"]):
                assert e["Faulty Code"] in path.read_text()
                assert path.read_text().splitlines()[b["line"] - 1] in e["Faulty Code"]
                assert b["region"][0] <= b["line"] <= b["line_end"] <= b["region"][1]
        else:
            assert r["file"].startswith("equivalent/")
    oob = next(r for r in recs if r["bug_types"] == ["OOB"])
    assert oob["csim"]["status"] == "sanitizer" and oob["bugs"][0]["label_source"] == "execution"
    sma = next(r for r in recs if r["bug_types"] == ["SMA"])
    assert sma["csim"] is None and sma["bugs"][0]["label_source"] == "rule"


def test_generation_is_deterministic(dataset, tmp_path):
    out, _ = dataset
    cfg = GenConfig(
        per_type=1, doubles=2, kernels=["axpy", "gemm"], types=["OOB", "INIT", "FND", "SMA"], jobs=2
    )
    generate(tmp_path / "again", cfg, progress=False)
    a, b = load_manifest(out)["variants"], load_manifest(tmp_path / "again")["variants"]
    assert [(r["id"], r["bugs"][0]["line"], r["label"]) for r in a] == [
        (r["id"], r["bugs"][0]["line"], r["label"]) for r in b
    ]


def test_existing_output_is_not_overwritten_without_force(dataset):
    out, _ = dataset
    with pytest.raises(TricoError, match="--force"):
        generate(out, GenConfig(per_type=1, kernels=["axpy"], types=["SMA"]), progress=False)


def test_lint_and_sanitizer_scores(dataset):
    out, _ = dataset
    lint = evaluate(out, make_detector("lint"), "all", progress=False)
    assert lint["per_type"]["FND"]["recall"] == 1.0 and lint["per_type"]["FND"]["localization"] == 1.0
    assert lint["per_type"]["SMA"]["typed_recall"] == 1.0
    assert lint["false_positive_rate_clean"] == 0.0
    san = evaluate(out, make_detector("sanitizer"), "all", progress=False)
    assert san["per_type"]["OOB"]["recall"] == 1.0 and san["per_type"]["OOB"]["typed_recall"] == 1.0
    assert san["per_type"]["FND"]["recall"] == 0.0  # pragmas are invisible to C-simulation
    assert san["false_positive_rate_clean"] == 0.0


def test_cli_bad_inputs(tmp_path, capsys, dataset):
    out, _ = dataset
    assert main(["hlsbugs", "generate", "--out", str(tmp_path / "x"), "--types", "OOB,NOPE"]) == 2
    assert "unknown bug type 'NOPE'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["hlsbugs", "generate", "--out", str(tmp_path / "y"), "--kernels", "nope"]) == 2
    assert main(["hlsbugs", "evaluate", "--dataset", str(tmp_path), "--detector", "lint"]) == 2
    assert "not a trico hlsbugs dataset" in capsys.readouterr().err
    assert main(["hlsbugs", "evaluate", "--dataset", str(out), "--detector", "oracle9"]) == 2
    assert main(["hlsbugs", "evaluate", "--dataset", str(out), "--detector", "llm"]) == 2
    assert "--base-url" in capsys.readouterr().err
    bad = tmp_path / "suite" / "k"
    bad.mkdir(parents=True)
    (bad / "kernel.cpp").write_text("void k(float a[4]) {}\n")
    assert (
        main(["hlsbugs", "generate", "--out", str(tmp_path / "z"), "--kernels-dir", str(tmp_path / "suite")])
        == 2
    )
    assert "no test bench" in capsys.readouterr().err
    (bad / "tb.cpp").write_text("int main() {}\n")
    (bad / "golden.txt").write_text("# a\n0\n")
    (bad / "kernel.cpp").write_text("void k(float a[4]) {\n  a[0] = ;\n}\n")
    assert (
        main(["hlsbugs", "generate", "--out", str(tmp_path / "z"), "--kernels-dir", str(tmp_path / "suite")])
        == 2
    )
    assert "parse error at line 2" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()
