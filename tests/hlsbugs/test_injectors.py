import pytest

from tests.hlsbugs.conftest import needs_gxx
from trico.errors import TricoError
from trico.hlsbugs.cparse import build_design, parse_tree
from trico.hlsbugs.csim import run_variant
from trico.hlsbugs.injectors import INJECTORS, Edit, Mutation, apply, sites
from trico.hlsbugs.lint import lint
from trico.hlsbugs.suite import KERNELS_DIR
from trico.hlsbugs.taxonomy import BUG_TYPES, PRAGMA


def test_one_injector_per_bug_type():
    assert set(INJECTORS) == set(BUG_TYPES) and len(BUG_TYPES) == 18


def test_every_type_has_sites_in_several_kernels(suite):
    kernels_with = dict.fromkeys(BUG_TYPES, 0)
    for k in suite.values():
        d = build_design(k.source, k.name)
        for code in BUG_TYPES:
            kernels_with[code] += bool(sites(d, code))
    assert min(kernels_with.values()) >= 3, kernels_with


def test_unknown_bug_type_is_rejected(suite):
    d = build_design(suite["axpy"].source, "axpy")
    with pytest.raises(TricoError, match="unknown bug type 'XYZ'"):
        sites(d, "XYZ")


def test_apply_reports_lines_in_the_faulty_file():
    src = "int a;\nint b;\nint c;\n"
    ins = Mutation("ZERO", (Edit(0, 0, "// new\n"),), "insert")
    rep = Mutation("ZERO", (Edit(18, 19, "cc"),), "replace")
    out, (p1, p2) = apply(src, [rep, ins])
    assert out == "// new\nint a;\nint b;\nint cc;\n"
    assert (p2.line, p2.faulty_code) == (1, "// new")
    assert (p1.line, p1.original_code, p1.faulty_code) == (4, "int c;", "int cc;")
    with pytest.raises(ValueError, match="overlap"):
        apply(src, [rep, Mutation("OOB", (Edit(17, 19, "x"),), "clash")])


def test_injected_sources_parse_and_pragma_bugs_are_found_by_the_lint(suite):
    for name in ("gemm", "axpy", "qdot", "relu_bias"):
        k = suite[name]
        d = build_design(k.source, name)
        for code in BUG_TYPES:
            for m in sites(d, code)[:2]:
                faulty, (p,) = apply(k.source, [m])
                parse_tree(faulty, name)
                assert faulty != k.source
                if code in PRAGMA:
                    hits = [f for f in lint(faulty, name) if f.bug_type == code]
                    assert any(p.line <= f.line <= p.line_end for f in hits), (name, code, p.faulty_code)


@needs_gxx
@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("OOB", "sanitizer", None),
        ("INF", "timeout", None),
        ("SHFT", "sanitizer", "ubsan:shift"),
        ("INIT", "mismatch", None),
    ],
)
def test_functional_bugs_show_in_csim(suite, code, status, kind):
    k = suite["qdot"] if code == "SHFT" else suite["gemm"]
    d = build_design(k.source, k.name)
    m = sites(d, code)[0]
    faulty, _ = apply(k.source, [m])

    def line_of(edit):
        return k.source.count("\n", 0, edit.start) + 1

    r = run_variant(faulty, k.testbench, k.golden, KERNELS_DIR)
    assert r.status == status, r.detail
    if kind:
        assert r.kind == kind
    if status in ("timeout", "sanitizer"):
        # The stuck or faulting line lies inside the mutated loop nest.
        assert r.lines and r.lines[0] >= line_of(m.edits[0])
