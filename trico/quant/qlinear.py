"""QLinear: a drop-in replacement for nn.Linear that holds packed quantized weights.

Formats (the shared weight-format contract, W is [N, K] = [out_features, in_features]):
- "int8": qweight int8 [N, K], W = q * s;
- "uint2/3/4/8": packed codes u; symmetric W = s * (u - 2^(B-1)); asymmetric W = s * u + m;
- "tern2" / "tern1.6": ternary t = u - 1, W = s * t, packed 4 per byte or 5 per byte (base 3);
- "w8a8": int8 weights of W * smooth (per output channel) and int8 per-token activations of x / smooth.
Scales (and mins) are fp16 [N, K / group_size]; group_size == K is per output channel and
group_size == 0 means one scale for the whole tensor ([1, 1], ternary only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trico.errors import TricoError
from trico.quant.packing import layout

FORMATS = ("int8", "uint2", "uint3", "uint4", "uint8", "tern2", "tern1.6", "w8a8")
_UINT_BITS = {"uint2": 2, "uint3": 3, "uint4": 4, "uint8": 8}
_TERNARY = ("tern2", "tern1.6")
_SIGNED = ("int8", "w8a8")


def n_groups(in_features: int, group_size: int) -> int:
    """Number of scale columns per row (1 for per-tensor and per-channel)."""
    return 1 if group_size in (0, in_features) else in_features // group_size


def qweight_shape(fmt: str, out_features: int, in_features: int) -> tuple[int, int]:
    """Shape of the packed qweight buffer of a format."""
    if fmt in _SIGNED:
        return out_features, in_features
    return out_features, layout(fmt).row_bytes(in_features)


class QLinear(nn.Module):
    """A linear layer y = x @ W^T whose W is stored quantized and packed (no bias: Llama has none)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        fmt: str,
        group_size: int,
        symmetric: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise TricoError(f"unknown QLinear format {fmt!r}; known: {', '.join(FORMATS)}")
        if group_size < 0 or (group_size and in_features % group_size):
            raise TricoError(
                f"group size {group_size} does not divide in_features={in_features} (format {fmt})"
            )
        if group_size == 0 and fmt not in _TERNARY:
            raise TricoError(f"per-tensor scales (group size 0) are for ternary formats only, not {fmt}")
        if fmt not in _SIGNED and in_features % layout(fmt).k_multiple:
            raise TricoError(
                f"format {fmt} needs in_features to be a multiple of {layout(fmt).k_multiple}, got {in_features}"
            )
        if not symmetric and fmt not in _UINT_BITS:
            raise TricoError(f"format {fmt} is symmetric only")
        self.in_features, self.out_features = in_features, out_features
        self.fmt, self.group_size, self.symmetric = fmt, group_size, symmetric
        qdtype = torch.int8 if fmt in _SIGNED else torch.uint8
        rows = 1 if group_size == 0 else out_features
        sshape = (rows, n_groups(in_features, group_size))
        self.register_buffer(
            "qweight", torch.zeros(qweight_shape(fmt, out_features, in_features), dtype=qdtype, device=device)
        )
        self.register_buffer("scales", torch.zeros(sshape, dtype=torch.float16, device=device))
        mins = None if symmetric else torch.zeros(sshape, dtype=torch.float16, device=device)
        self.register_buffer("mins", mins)
        smooth = torch.ones(in_features, dtype=torch.float16, device=device) if fmt == "w8a8" else None
        self.register_buffer("smooth", smooth)
        self._dense: torch.Tensor | None = None

    @classmethod
    def from_codes(
        cls,
        codes: torch.Tensor,
        scales: torch.Tensor,
        fmt: str,
        group_size: int,
        mins: torch.Tensor | None = None,
        smooth: torch.Tensor | None = None,
    ) -> QLinear:
        """Build from unpacked codes [N, K] (signed int8 for int8/w8a8, unsigned otherwise) and fp16 scales."""
        n, k = codes.shape
        m = cls(k, n, fmt, group_size, symmetric=mins is None, device=codes.device)
        if fmt in _SIGNED:
            m.qweight.copy_(codes.to(torch.int8))
        else:
            m.qweight.copy_(layout(fmt).pack(codes))
        m.scales.copy_(scales.reshape(m.scales.shape))
        if mins is not None:
            m.mins.copy_(mins.reshape(m.mins.shape))
        if smooth is not None:
            m.smooth.copy_(smooth)
        return m

    @property
    def bits(self) -> float:
        """Bits of one stored code (1.6 for base-3 ternary)."""
        if self.fmt in _SIGNED:
            return 8.0
        if self.fmt == "tern1.6":
            return 1.6
        return float(layout(self.fmt).code_bits)

    def codes(self) -> torch.Tensor:
        """Unpacked codes [N, K]: int8 for int8/w8a8, unsigned uint8 otherwise."""
        if self.fmt in _SIGNED:
            return self.qweight
        return layout(self.fmt).unpack(self.qweight, self.in_features)

    def _expand(self, t: torch.Tensor) -> torch.Tensor:
        if t.shape[1] == 1:
            return t.float()  # broadcasts over K (and over N for per-tensor)
        return t.float().repeat_interleave(self.group_size, dim=1)

    def dequantize(self) -> torch.Tensor:
        """The stored weight in fp32 [N, K] exactly per the format's formula (for w8a8: W * smooth)."""
        c = self.codes().float()
        if self.fmt in _UINT_BITS and self.symmetric:
            c = c - float(1 << (_UINT_BITS[self.fmt] - 1))
        elif self.fmt in _TERNARY:
            c = c - 1.0
        w = c * self._expand(self.scales)
        if self.mins is not None:
            w = w + self._expand(self.mins)
        return w.expand(self.out_features, self.in_features)

    def effective_weight(self) -> torch.Tensor:
        """The weight the layer applies to its unsmoothed input, fp32 [N, K] (differs from dequantize for w8a8)."""
        w = self.dequantize()
        if self.smooth is not None:
            w = w / self.smooth.float()
        return w

    def nbytes(self) -> int:
        """Bytes of every stored buffer (packed weights, scales, mins, smoothing vector)."""
        return sum(b.numel() * b.element_size() for b in self.buffers())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = x @ W^T: the Triton kernel on CUDA when available, the plain-torch reference otherwise."""
        if x.is_cuda:
            try:
                from trico.kernels.dispatch import qlinear_forward
            except ImportError:
                pass
            else:
                return qlinear_forward(self, x)
        return self.reference_forward(x)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain-torch forward: dequantize (cached) and matmul in fp32, one rounding to x's dtype at the end.

        The GPU kernels scale integer codes in fp32 and round only the output; a weight rounded to
        bf16 first is a different number (2^-9 relative), and that difference alone was enough to
        flip SmolLM2's greedy argmax against the Triton path. w8a8 also quantizes activations per token.
        """
        if self.fmt == "w8a8":
            return self._w8a8_forward(x)
        return F.linear(x.float(), self._dense_weight()).to(x.dtype)

    def _dense_weight(self) -> torch.Tensor:
        # Unpacking every call would dominate CPU evaluation; the cache is dropped on any move/load.
        if self._dense is None or self._dense.device != self.qweight.device:
            self._dense = self.dequantize().contiguous()
        return self._dense

    def _w8a8_forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.float() / self.smooth.float()
        sx = (xs.abs().amax(-1, keepdim=True) / 127.0).clamp_min(1e-8)
        xq = torch.round(xs / sx).clamp_(-127, 127)
        acc = F.linear(xq, self._dense_weight_codes())
        return (acc * sx * self.scales.float().view(-1)).to(x.dtype)

    def _dense_weight_codes(self) -> torch.Tensor:
        if self._dense is None or self._dense.device != self.qweight.device:
            self._dense = self.qweight.float()
        return self._dense

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module signature
        # model.to(bf16) must not touch the packed format (fp16 scales are part of the contract):
        # only the device of the buffers follows the move.
        self._dense = None
        probe = fn(torch.zeros(1, dtype=torch.float16, device=self.qweight.device))
        for name, buf in self._buffers.items():
            if buf is not None:
                self._buffers[name] = buf.to(probe.device)
        return self

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self._dense = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        """Shown by print(model)."""
        kind = "sym" if self.symmetric else "asym"
        return (
            f"in={self.in_features}, out={self.out_features}, fmt={self.fmt}, group={self.group_size}, {kind}"
        )
