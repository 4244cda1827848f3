import pytest

from trico.cli import main
from trico.hlsbugs.lint import RULES, lint
from trico.hlsbugs.taxonomy import PRAGMA

HEAD = """#define N 16
void k(const float in[N], float out[N], int n) {
#pragma HLS INTERFACE mode=m_axi port=in bundle=gmem0
#pragma HLS INTERFACE mode=m_axi port=out bundle=gmem1
#pragma HLS INTERFACE mode=s_axilite port=n
  float buf[N][4];
"""

CLEAN_BODY = """#pragma HLS ARRAY_PARTITION variable=buf type=cyclic factor=4 dim=2
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
    for (int j = 0; j < 4; j++) {
#pragma HLS UNROLL
      buf[i][j] = in[i] * j;
    }
  }
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
    out[i] = buf[i][0] + buf[i][3] * n;
  }
}
"""

# One hand-written violation per pragma rule, as (bug type, replacement of a line of CLEAN).
VIOLATIONS = {
    "MLP": (
        "  for (int i = 0; i < N; i++) {\n#pragma HLS PIPELINE II=1\n    for (int j = 0; j < 4; j++) {\n#pragma HLS UNROLL\n",
        "  for (int i = 0; i < N; i++) {\n#pragma HLS PIPELINE II=1\n    for (int j = 0; j < 4; j++) {\n#pragma HLS PIPELINE II=1\n",
    ),
    "ILNU": ("#pragma HLS UNROLL\n", "#pragma HLS UNROLL factor=2\n"),
    "DFP": ("      buf[i][j] = in[i] * j;\n", "#pragma HLS DATAFLOW\n      buf[i][j] = in[i] * j;\n"),
    "FND": ("factor=4 dim=2", "factor=3 dim=2"),
    "DID": ("factor=4 dim=2", "factor=4 dim=3"),
    "APT": ("type=cyclic factor=4", "type=block factor=4"),
    "SMA": ("mode=s_axilite port=n", "mode=m_axi port=n"),
    "AMS": ("mode=m_axi port=out bundle=gmem1", "mode=ap_none port=out"),
    "IDAP": ("mode=m_axi port=in bundle=gmem0", "mode=ap_fifo port=in"),
    "RAMB": ("    out[i] = buf[i][0]", "    out[(i * 5) % N] = buf[i][0]"),
}


def test_every_pragma_type_has_a_rule():
    assert set(RULES) == set(PRAGMA)


def test_bug_free_suite_is_lint_clean(suite):
    dirty = {name: lint(k.source, name) for name, k in suite.items()}
    assert {n: f for n, f in dirty.items() if f} == {}


@pytest.mark.parametrize("code", sorted(VIOLATIONS))
def test_each_rule_fires_on_its_violation_only(code):
    clean = HEAD + CLEAN_BODY
    assert lint(clean, "k") == []
    old, new = VIOLATIONS[code]
    assert old in clean
    bad = clean.replace(old, new, 1)
    found = lint(bad, "k")
    assert {f.bug_type for f in found} == {code}, found
    changed = next(i for i, (a, b) in enumerate(zip(clean.splitlines(), bad.splitlines()), 1) if a != b)
    assert any(abs(f.line - changed) <= 1 for f in found)


def test_lint_cli_exit_codes_and_bad_input(tmp_path, capsys):
    good, bad, broken = tmp_path / "good.cpp", tmp_path / "bad.cpp", tmp_path / "broken.cpp"
    good.write_text(HEAD + CLEAN_BODY)
    bad.write_text((HEAD + CLEAN_BODY).replace("factor=4 dim=2", "factor=3 dim=2"))
    broken.write_text("void k( {\n")
    assert main(["hls", "lint", str(good), "--top", "k"]) == 0
    assert main(["hls", "lint", str(bad), "--top", "k"]) == 1
    assert "FND" in capsys.readouterr().out
    assert main(["hls", "lint", str(broken)]) == 2
    assert "parse error" in capsys.readouterr().err
    assert main(["hls", "lint", str(tmp_path / "missing.cpp")]) == 2
