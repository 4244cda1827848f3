import pytest

from trico.errors import TricoError
from trico.hlsbugs.cparse import affine, build_design, parse_tree, walk

SRC = """#define N 8
const int M = N * 2;
void top(const float a[N][M], float b[M], int n) {
#pragma HLS INTERFACE mode=m_axi port=a
  float buf[M];
#pragma HLS ARRAY_PARTITION variable=buf type=cyclic factor=4 dim=1
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
    for (int j = M - 1; j >= 0; j -= 2) {
      buf[j] = a[i][j] + b[2 * j + 1];
    }
  }
}
"""


def test_design_model_reads_constants_ports_loops_and_pragmas():
    d = build_design(SRC, "top")
    assert d.consts == {"N": 8, "M": 16}
    assert d.ports["a"].dims == [8, 16] and d.ports["n"] == "int"
    assert d.arrays["buf"].dims == [16] and not d.arrays["buf"].is_port
    outer, inner = d.loops
    assert (outer.var, outer.trip) == ("i", 8)
    assert (inner.var, inner.trip) == ("j", 8) and inner.parent is outer
    assert outer.pragma("PIPELINE").get("II") == "1"
    part = next(p for p in d.pragmas if p.directive == "ARRAY_PARTITION")
    assert part.loop is None and part.get("factor") == "4"
    assert d.interface("a").mode == "m_axi"
    writes = [a for a in d.accesses if a.write]
    assert [a.array for a in writes] == ["buf"] and writes[0].loops == [outer, inner]


def test_affine_linearizes_index_expressions():
    tree = parse_tree("int x = 2 * (i + 3) - j * N + 4;")
    expr = next(n for n in walk(tree.root_node) if n.type == "init_declarator").child_by_field_name("value")
    assert affine(expr, {"N": 5}) == {"i": 2, "j": -5, "": 10}
    tree = parse_tree("int y = i * j;")
    expr = next(n for n in walk(tree.root_node) if n.type == "init_declarator").child_by_field_name("value")
    assert affine(expr, {}) is None


def test_parse_error_is_a_trico_error_with_the_line():
    with pytest.raises(TricoError, match="line 2"):
        build_design("void f() {\n  int x = ;\n}\n", "f")
