"""trico's small graph IR for one decoder-layer decode step: tensors (flat vectors) and stage nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trico.errors import TricoError


@dataclass
class TensorInfo:
    """A value flowing between stages: a flat vector of `size` elements (batch 1, one token)."""

    name: str
    size: int
    absmax: float = 0.0
    """Largest magnitude seen during calibration (0 until calibrated)."""
    rms: float = 0.0
    """Root mean square seen during calibration."""
    typical: float = 0.0
    """Median magnitude seen during calibration (robust to the few huge outlier channels)."""
    ctype: str = "float"
    """C++ type of the on-chip buffer (set by the precision pass)."""
    stream: str = "pipo"
    """How the dataflow pass connects producer and consumer: 'fifo' or 'pipo' (ping-pong buffer)."""
    depth: int = 2
    """FIFO depth (elements) or PIPO buffer count, set by the dataflow pass."""
    partition: int = 1
    """Cyclic ARRAY_PARTITION factor, so an unrolled consumer reads that many elements per cycle."""


@dataclass
class LinearWeights:
    """One projection's weights in the layout the C++ library reads (see trico/hls/lib/trico_weights.h)."""

    fmt: str
    """'float', 'int8', 'uint4' or 'tern2'."""
    n: int
    k: int
    group: int
    """Quantization group along K (K for per-channel or float)."""
    symmetric: bool = True
    codes: np.ndarray | None = None
    """Packed codes, uint8 (None for float)."""
    dense: np.ndarray | None = None
    """fp32 [N, K] weights (float format only)."""
    scales: np.ndarray | None = None
    """fp32 [N, K / group]."""
    mins: np.ndarray | None = None
    """fp32 [N, K / group] (asymmetric only)."""
    absmax: float = 0.0
    """Largest |W| (dequantized), for the precision of float weights."""
    rms: float = 0.0
    """Root mean square of W (dequantized)."""
    typical: float = 0.0
    """Median |W| (dequantized)."""

    def stub(self) -> LinearWeights:
        """The same description without the arrays (for estimation and design-space exploration)."""
        return LinearWeights(
            self.fmt,
            self.n,
            self.k,
            self.group,
            self.symmetric,
            absmax=self.absmax,
            rms=self.rms,
            typical=self.typical,
        )

    @property
    def code_bits(self) -> float:
        """Bits one weight occupies in external memory."""
        return {"float": 32.0, "int8": 8.0, "uint4": 4.0, "tern2": 2.0}[self.fmt]


@dataclass
class Node:
    """One stage: an op from OPS reading `inputs` and writing `output`."""

    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """Constants of the stage: 'weight' (LinearWeights or fp32 vector for norms)."""

    @property
    def outputs(self) -> list[str]:
        """Every tensor the node writes (a fork writes two)."""
        return [self.output, *([self.attrs["second"]] if "second" in self.attrs else [])]


OPS: dict[str, str] = {
    "rmsnorm": "RMSNorm over the vector with a learned scale",
    "linear": "matrix-vector product with (possibly packed) weights",
    "linear_add": "matrix-vector product with a residual add fused into its output",
    "rope": "rotary position embedding (rotate-half)",
    "attention": "GQA attention of one decode step over the KV cache",
    "add": "element-wise sum",
    "mul": "element-wise product",
    "silu": "SiLU activation",
    "silu_gate": "silu(gate) * up, fused",
    "alias": "layout-only view (reshape/transpose) of a vector",
    "fork": "copy a vector for two consumers of a dataflow region",
}
"""Every op the IR knows, with what it means."""


@dataclass
class Graph:
    """A decode-step graph: named inputs (x, cos, sin), nodes in topological order, one output."""

    inputs: list[str]
    output: str
    nodes: list[Node]
    tensors: dict[str, TensorInfo]
    meta: dict[str, Any] = field(default_factory=dict)
    """Model-level facts: dim, n_heads, n_kv_heads, head_dim, hidden_dim, eps, max_ctx, passes applied."""

    def producer(self, tensor: str) -> Node | None:
        """The node writing a tensor (None for graph inputs)."""
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor: str) -> list[Node]:
        """Nodes reading a tensor, in order."""
        return [n for n in self.nodes if tensor in n.inputs]

    def replace_uses(self, old: str, new: str) -> None:
        """Point every reader of tensor `old` (and the graph output) at `new`."""
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
        if self.output == old:
            self.output = new

    def node(self, name: str) -> Node:
        """Look a node up by name."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise TricoError(f"graph has no node {name!r}")

    def validate(self) -> None:
        """Every op is known and every input is defined before it is read."""
        defined = set(self.inputs)
        for n in self.nodes:
            if n.op not in OPS:
                raise TricoError(f"node {n.name}: op {n.op!r} is not an IR op ({', '.join(OPS)})")
            missing = [t for t in n.inputs if t not in defined]
            if missing:
                raise TricoError(f"node {n.name} reads {missing} before they are produced")
            defined.update(n.outputs)
        if self.output not in defined:
            raise TricoError(f"graph output {self.output!r} is never produced")

    def summary(self) -> str:
        """One line per node: name = op(inputs) : type."""
        lines = []
        for n in self.nodes:
            t = self.tensors[n.output]
            lines.append(f"{n.output} = {n.op}({', '.join(n.inputs)}) : {t.ctype}[{t.size}]")
        return "\n".join(lines)
