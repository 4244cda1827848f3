"""A small HLS design model over a tree-sitter C++ parse tree: constants, ports, loops, pragmas, accesses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from trico.errors import TricoError

LOOP_TYPES = ("for_statement", "while_statement", "do_statement")


@lru_cache(maxsize=1)
def _parser():
    try:
        import tree_sitter
        import tree_sitter_cpp
    except ImportError as exc:  # the hls extra is optional for the rest of trico
        raise TricoError(
            "trico.hlsbugs needs tree-sitter and tree-sitter-cpp: pip install 'trico[hls]'"
        ) from exc
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_cpp.language()))


def walk(node) -> Iterator:
    """Yield `node` and all its descendants in source order."""
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(cur.children))


def text(node) -> str:
    """The source text of a node."""
    return node.text.decode()


def line_of(node) -> int:
    """1-based line of a node's first character."""
    return node.start_point[0] + 1


def first_syntax_error(root):
    """The first ERROR or MISSING node under `root`, or None."""
    for node in walk(root):
        if node.type == "ERROR" or node.is_missing:
            return node
    return None


def parse_tree(source: str, name: str = "<source>"):
    """Parse C++ source; a syntax error is a TricoError naming the line."""
    tree = _parser().parse(source.encode())
    bad = first_syntax_error(tree.root_node)
    if bad is not None:
        raise TricoError(f"{name}: C++ parse error at line {line_of(bad)}: {text(bad)[:60]!r}")
    return tree


_INT_RE = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")


def int_literal(s: str) -> int | None:
    """Value of an integer literal (decimal or hex, with u/l suffixes), else None."""
    m = _INT_RE.match(s.strip())
    return int(m.group(1), 0) if m else None


Affine = dict[str, int]  # variable -> coefficient; "" holds the constant term


def affine(node, consts: dict[str, int]) -> Affine | None:
    """Linearize an integer expression over identifiers; None when it is not affine."""
    t = node.type
    if t == "number_literal":
        v = int_literal(text(node))
        return None if v is None else {"": v}
    if t == "identifier":
        name = text(node)
        return {"": consts[name]} if name in consts else {name: 1}
    if t == "parenthesized_expression":
        inner = [c for c in node.named_children]
        return affine(inner[0], consts) if len(inner) == 1 else None
    if t == "unary_expression" and text(node.child_by_field_name("operator")) in "-+":
        a = affine(node.child_by_field_name("argument"), consts)
        sign = -1 if text(node.child_by_field_name("operator")) == "-" else 1
        return None if a is None else {k: sign * v for k, v in a.items()}
    if t == "cast_expression":
        return affine(node.child_by_field_name("value"), consts)
    if t == "binary_expression":
        op = text(node.child_by_field_name("operator"))
        a = affine(node.child_by_field_name("left"), consts)
        b = affine(node.child_by_field_name("right"), consts)
        if a is None or b is None:
            return None
        if op in "+-":
            sign = 1 if op == "+" else -1
            out = dict(a)
            for k, v in b.items():
                out[k] = out.get(k, 0) + sign * v
            return {k: v for k, v in out.items() if v or k == ""}
        if op == "*":
            if set(a) == {""}:
                a, b = b, a
            if set(b) != {""}:
                return None
            return {k: v * b[""] for k, v in a.items()}
        if op in ("/", "<<", ">>", "%", "&", "|", "^") and set(a) == {""} and set(b) == {""}:
            x, y = a[""], b[""]
            try:
                val = {
                    "/": lambda: int(x / y),
                    "%": lambda: x % y,
                    "<<": lambda: x << y,
                    ">>": lambda: x >> y,
                    "&": lambda: x & y,
                    "|": lambda: x | y,
                    "^": lambda: x ^ y,
                }[op]()
            except (ZeroDivisionError, ValueError):
                return None
            return {"": val}
    return None


def const_value(node, consts: dict[str, int]) -> int | None:
    """Value of a constant integer expression, else None."""
    a = affine(node, consts)
    return a[""] if a is not None and set(a) == {""} else None


@dataclass
class Pragma:
    """One `#pragma HLS ...` line."""

    node: object
    line: int
    directive: str
    opts: dict[str, str]
    words: list[str]
    scope: object  # the compound_statement holding it
    loop: Loop | None  # the loop whose body holds it, None at function level

    def get(self, key: str, default: str | None = None) -> str | None:
        """Option value (keys are case-insensitive)."""
        return self.opts.get(key.lower(), default)

    @property
    def mode(self) -> str | None:
        """INTERFACE mode: `mode=X` or the first bare word."""
        if self.get("mode"):
            return self.get("mode").lower()
        return self.words[0].lower() if self.words else None


@dataclass
class Loop:
    """A loop with its induction variable and trip count when they are simple."""

    node: object
    line: int
    var: str | None
    trip: int | None
    bound: int | None
    parent: Loop | None
    body: object | None
    pragmas: list[Pragma] = field(default_factory=list)

    def pragma(self, directive: str) -> Pragma | None:
        """This loop's first pragma of a directive."""
        return next((p for p in self.pragmas if p.directive == directive), None)

    def ancestors(self) -> list[Loop]:
        """Enclosing loops, innermost first."""
        out, cur = [], self.parent
        while cur is not None:
            out.append(cur)
            cur = cur.parent
        return out


@dataclass
class Array:
    """An array variable: a port (parameter) or a local buffer."""

    name: str
    elem: str
    dims: list[int | None]
    is_port: bool
    line: int


@dataclass
class Access:
    """One subscripted use of an array."""

    node: object
    array: str
    indices: list[object]
    write: bool
    read: bool
    loops: list[Loop]  # enclosing loops, outermost first
    line: int


@dataclass
class Design:
    """The parsed kernel: everything the injectors and the lint look at."""

    source: str
    name: str
    tree: object
    consts: dict[str, int]
    top: object
    ports: dict[str, Array | str]  # array ports as Array, scalar ports as their type text
    arrays: dict[str, Array]
    loops: list[Loop]
    pragmas: list[Pragma]
    accesses: list[Access]

    @property
    def root(self):
        """The translation unit node."""
        return self.tree.root_node

    def loop_of(self, node) -> Loop | None:
        """The innermost loop whose node encloses `node`."""
        cur = node.parent
        while cur is not None:
            for lp in self.loops:
                if lp.node == cur:
                    return lp
            cur = cur.parent
        return None

    def interface(self, port: str) -> Pragma | None:
        """The INTERFACE pragma naming `port`."""
        return next(
            (p for p in self.pragmas if p.directive == "INTERFACE" and p.get("port") == port),
            None,
        )

    def in_top(self, node) -> bool:
        """Whether `node` lies in the top function's body."""
        body = self.top.child_by_field_name("body")
        return body.start_byte <= node.start_byte and node.end_byte <= body.end_byte


def _parse_pragma(arg: str) -> tuple[str, dict[str, str], list[str]] | None:
    toks = arg.split()
    if len(toks) < 2 or toks[0].upper() != "HLS":
        return None
    opts, words = {}, []
    for tok in toks[2:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            opts[k.lower()] = v
        else:
            words.append(tok)
    return toks[1].upper(), opts, words


def _define_consts(root) -> dict[str, int]:
    consts: dict[str, int] = {}
    for node in root.children:
        if node.type == "preproc_def" and node.child_by_field_name("value") is not None:
            value = text(node.child_by_field_name("value")).strip()
            sub = _parser().parse(f"int __x = {value};".encode()).root_node
            decl = next((n for n in walk(sub) if n.type == "init_declarator"), None)
            if decl is not None:
                v = const_value(decl.child_by_field_name("value"), consts)
                if v is not None:
                    consts[text(node.child_by_field_name("name"))] = v
        elif node.type == "declaration" and "const" in text(node).split("=")[0].split():
            for decl in node.children_by_field_name("declarator"):
                if (
                    decl.type == "init_declarator"
                    and decl.child_by_field_name("declarator").type == "identifier"
                ):
                    v = const_value(decl.child_by_field_name("value"), consts)
                    if v is not None:
                        consts[text(decl.child_by_field_name("declarator"))] = v
    return consts


def _array_dims(decl, consts) -> tuple[str, list[int | None]]:
    dims = []
    while decl.type == "array_declarator":
        size = decl.child_by_field_name("size")
        dims.append(const_value(size, consts) if size is not None else None)
        decl = decl.child_by_field_name("declarator")
    return text(decl), list(reversed(dims))


def _decl_name(decl) -> str:
    while decl.child_by_field_name("declarator") is not None:
        decl = decl.child_by_field_name("declarator")
    return text(decl)


def _loop_info(node, consts) -> tuple[str | None, int | None, int | None]:
    """(induction variable, trip count, bound) for `for (v = a; v OP b; v++/--/+=c)`."""
    if node.type != "for_statement":
        return None, None, None
    init = node.child_by_field_name("initializer")
    cond = node.child_by_field_name("condition")
    upd = node.child_by_field_name("update")
    if init is None or cond is None or upd is None:
        return None, None, None
    decl = init.child_by_field_name("declarator") if init.type == "declaration" else init
    if decl is None or decl.type not in ("init_declarator", "assignment_expression"):
        return None, None, None
    var_node = decl.child_by_field_name("declarator") or decl.child_by_field_name("left")
    start_node = decl.child_by_field_name("value") or decl.child_by_field_name("right")
    var = text(var_node)
    start = const_value(start_node, consts)
    if cond.type != "binary_expression" or text(cond.child_by_field_name("left")) != var:
        return var, None, None
    op = text(cond.child_by_field_name("operator"))
    bound = const_value(cond.child_by_field_name("right"), consts)
    step = None
    if upd.type == "update_expression":
        step = 1 if "++" in text(upd) else -1
    elif upd.type == "assignment_expression" and text(upd.child_by_field_name("operator")) in ("+=", "-="):
        c = const_value(upd.child_by_field_name("right"), consts)
        if c:
            step = c if text(upd.child_by_field_name("operator")) == "+=" else -c
    if start is None or bound is None or not step:
        return var, None, bound
    span = {"<": bound - start, "<=": bound - start + 1, ">": start - bound, ">=": start - bound + 1}.get(op)
    if span is None or (op in "<<=" and step < 0) or (op in ">>=" and step > 0):
        return var, None, bound
    return var, max(0, -(-span // abs(step))), bound


def build_design(source: str, name: str) -> Design:
    """Parse a kernel and build its design model; the top function is `name` (else the last one)."""
    tree = parse_tree(source, name)
    root = tree.root_node
    consts = _define_consts(root)
    funcs = [n for n in root.children if n.type == "function_definition"]
    if not funcs:
        raise TricoError(f"{name}: no function definition found")
    top = next((f for f in funcs if _decl_name(f.child_by_field_name("declarator")) == name), funcs[-1])

    ports: dict[str, Array | str] = {}
    arrays: dict[str, Array] = {}
    params = top.child_by_field_name("declarator").child_by_field_name("parameters")
    for p in params.named_children:
        if p.type != "parameter_declaration":
            continue
        decl = p.child_by_field_name("declarator")
        elem = text(p.child_by_field_name("type"))
        if decl is not None and decl.type in ("array_declarator", "pointer_declarator"):
            if decl.type == "pointer_declarator":
                pname, dims = _decl_name(decl), [None]
            else:
                pname, dims = _array_dims(decl, consts)
            arrays[pname] = ports[pname] = Array(pname, elem, dims, True, line_of(p))
        elif decl is not None:
            ports[_decl_name(decl)] = elem

    body = top.child_by_field_name("body")
    for node in walk(body):
        if node.type == "declaration":
            elem = text(node.child_by_field_name("type"))
            for d in node.children_by_field_name("declarator"):
                d = d.child_by_field_name("declarator") if d.type == "init_declarator" else d
                if d is not None and d.type == "array_declarator":
                    aname, dims = _array_dims(d, consts)
                    arrays[aname] = Array(aname, elem, dims, False, line_of(node))

    loops: list[Loop] = []
    loop_by_node: dict = {}
    for node in walk(body):
        if node.type in LOOP_TYPES:
            var, trip, bound = _loop_info(node, consts)
            parent = None
            cur = node.parent
            while cur is not None and parent is None:
                parent = loop_by_node.get(cur.id)
                cur = cur.parent
            lp = Loop(node, line_of(node), var, trip, bound, parent, node.child_by_field_name("body"))
            loops.append(lp)
            loop_by_node[node.id] = lp

    pragmas: list[Pragma] = []
    for node in walk(root):
        if node.type == "preproc_call" and text(node.child_by_field_name("directive")) == "#pragma":
            arg = node.child_by_field_name("argument")
            parsed = _parse_pragma(text(arg)) if arg is not None else None
            if parsed is None:
                continue
            scope = node.parent
            owner = loop_by_node.get(scope.parent.id) if scope.parent is not None else None
            pr = Pragma(node, line_of(node), parsed[0], parsed[1], parsed[2], scope, owner)
            pragmas.append(pr)
            if owner is not None:
                owner.pragmas.append(pr)

    accesses: list[Access] = []
    for node in walk(body):
        if node.type != "subscript_expression" or (
            node.parent.type == "subscript_expression" and node.parent.child_by_field_name("argument") == node
        ):
            continue
        indices, base = [], node
        while base.type == "subscript_expression":
            idx = base.child_by_field_name("indices").named_children
            indices.insert(0, idx[0] if idx else None)
            base = base.child_by_field_name("argument")
        if base.type != "identifier":
            continue
        parent = node.parent
        write = read = False
        if parent.type == "assignment_expression" and parent.child_by_field_name("left") == node:
            write = True
            read = text(parent.child_by_field_name("operator")) != "="
        elif parent.type == "update_expression":
            write = read = True
        else:
            read = True
        enclosing = []
        cur = node.parent
        while cur is not None:
            if cur.id in loop_by_node:
                enclosing.insert(0, loop_by_node[cur.id])
            cur = cur.parent
        accesses.append(Access(node, text(base), indices, write, read, enclosing, line_of(node)))

    return Design(source, name, tree, consts, top, ports, arrays, loops, pragmas, accesses)
