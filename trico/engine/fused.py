"""CUDA fast path of the Llama block: the same math as trico.models.llama, through Triton kernels.

`fuse_model_(model)` swaps every DecoderLayer for a FusedDecoderLayer that keeps the same child
modules (so parameter names, QLinear dispatch and state dicts are unchanged) and, on CUDA tensors,
runs RMSNorm with the residual add fused, the Q/K/V and gate/up projections as one wide
projection each (fewer, larger GEMVs), RoPE in one kernel on the projections' own layout, the
SiLU gate in one kernel and the block's last residual add inside the down projection's kernel;
on CPU tensors it calls the original layer code, so results there are the reference ones. A
decode step over a bf16/fp16 static cache rotates q and k and writes k and v into the cache in
one kernel, then runs the flash-decoding kernel and its merge (with ONE_LAUNCH_ATTENTION, all of
that is one `rope_decode_attention` launch instead); other caches keep their own `attend`. In
that decode step RMSNorm and the SiLU gate are handed to the projections that consume them (the
QKV and gate/up projections get the residual stream, the down projection the gate/up output, the o
projection adds the residual): where the projection's kernel takes the op (one row,
`dispatch.PROLOGUE_BITS`, `trico/kernels/prologue.py`) it applies it as it loads x, elsewhere the
dispatcher runs the op's own kernel first (all of it off with `fused_prologues(False)`). Where the
gate/up projection's kernel can (`dispatch.gate_fits`: the f16x2 GEMV) it writes silu(gate) * up
itself, pairing gate and up rows in its tiles, so the gate needs no launch. Under `int8_activations()`
the kernels that produce a projection's input (RMSNorm, SiLU gate, attention) stay separate and
also write it quantized for the int8-activation GEMV. A 16-bit lm_head becomes FusedHead: fp32
logits from the tensor-core GEMM; the final RMSNorm before it becomes FusedNorm: one kernel, where
the torch module launches six at batch 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trico.models.llama import DecoderLayer, RMSNorm, Transformer


def _concat_rows(mods: list[nn.Module]) -> nn.Module | None:
    """One projection computing the given ones side by side (outputs concatenated), or None.

    The originals keep their parameter names but their weights become views into the fused
    buffers, so no weight memory is duplicated and state dicts are unchanged.
    """
    if all(type(m) is nn.Linear for m in mods):
        w = torch.cat([m.weight.detach() for m in mods])
        fused = nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
        fused.weight = nn.Parameter(w, requires_grad=False)
        row = 0
        for m in mods:
            m.weight.data = w[row : row + m.out_features]
            row += m.out_features
        return fused
    from trico.quant.qlinear import QLinear

    first = mods[0]
    if not all(isinstance(m, QLinear) for m in mods):
        return None
    # w8a8 divides x by a smoothing vector per projection: one fused GEMM needs them all equal (SmoothQuant
    # smooths the projections that share an input together, so Q/K/V and gate/up agree).
    if first.fmt == "w8a8" and not all(torch.equal(m.smooth, first.smooth) for m in mods):
        return None
    if any(
        (m.fmt, m.group_size, m.symmetric, m.in_features)
        != (first.fmt, first.group_size, first.symmetric, first.in_features)
        for m in mods
    ):
        return None
    n = sum(m.out_features for m in mods)
    fused = QLinear(first.in_features, n, first.fmt, first.group_size, first.symmetric, device="meta")
    fused.group_size = first.group_size or first.in_features  # per-tensor scales become per-row below

    def cat(name: str, share: bool) -> torch.Tensor | None:
        parts = [getattr(m, name) for m in mods]
        if parts[0] is None:
            return None
        parts = [p.expand(m.out_features, p.shape[1]) if p.shape[0] == 1 else p for p, m in zip(parts, mods)]
        out = torch.cat(parts)
        if share and all(getattr(m, name).shape[0] == m.out_features for m in mods):
            row = 0
            for m in mods:
                m._buffers[name] = out[row : row + m.out_features]
                row += m.out_features
        return out

    fused._buffers["qweight"] = cat("qweight", True)
    fused._buffers["scales"] = cat("scales", True)
    fused._buffers["mins"] = cat("mins", True)
    if first.smooth is not None:
        fused._buffers["smooth"] = first.smooth
    return fused


def _a8_input(mod: nn.Module | None, x: torch.Tensor):  # noqa: ANN202 - QuantizedX | None
    """Buffers for x quantized by its producer if `mod` will take it through the int8-activation GEMV."""
    from trico.kernels.dispatch import a8_input

    return None if mod is None else a8_input(mod, x)


def _project(
    mod: nn.Module,
    x: torch.Tensor,
    residual: torch.Tensor | None = None,
    quantized=None,  # noqa: ANN001 - trico.kernels.gemv_a8.QuantizedX from _a8_input
    prologue=None,  # noqa: ANN001 - trico.kernels.prologue.Prologue
) -> torch.Tensor:
    """A projection (+ residual, added inside the kernel where one runs); fused-path callers only.

    Dense bf16/fp16 weights go through the kernel dispatcher (Triton skinny GEMM or cuBLAS). With a
    `prologue` (RMSNorm or the SiLU gate) x is that op's raw input and the projection's kernel
    applies it as it loads x where it can.
    """
    from trico.kernels.dispatch import dense_forward, qlinear_forward

    if type(mod) is nn.Linear and mod.bias is None:
        return dense_forward(mod.weight, x, residual, prologue=prologue)
    from trico.quant.qlinear import QLinear

    if isinstance(mod, QLinear):
        return qlinear_forward(mod, x, residual, quantized, prologue=prologue)
    y = mod(x if prologue is None else prologue.apply(x))
    return y if residual is None else residual + y


ONE_LAUNCH_ATTENTION = False
"""Run a decode step's RoPE, cache store and attention as one `rope_decode_attention` launch.

Off by default: alone it is faster (H200, per layer at batch 1: 7.3 -> 5.4 us), but in the
CUDA-graph step with programmatic dependent launch its grid is scheduled while the long QKV
projection still runs, and (our reading) its waiting programs hold SM slots that projection
needs. Llama-2-7B on the H200, one run (benchmarks/results/experiments/): batch 16 INT4 2595
tok/s with it vs 3224 with the three-kernel path (3189 with it and PDL off, printed, not kept);
batch-1 int8-activation formats came out 2-3% below that day's three-kernel profile; batch 1 with
the f16x2 GEMV, same run (commit ce511bf): int4-g128 1959 vs 1846 us a step, tern2 1694 vs 1639.
"""


def _single_token_cache(cache: object, x: torch.Tensor, head_dim: int) -> bool:
    """Whether this step can rotate and store k/v in one kernel and attend with the flash-decoding one."""
    from trico.engine.kv_cache import StaticKVCache

    return (
        type(cache) is StaticKVCache
        and x.shape[1] == 1
        and cache.k.dtype == x.dtype
        and x.dtype in (torch.bfloat16, torch.float16)
        and head_dim in (32, 64, 128, 256)
    )


class FusedDecoderLayer(nn.Module):
    """A DecoderLayer whose CUDA forward uses fused kernels; CPU forward is the original one."""

    def __init__(self, layer: DecoderLayer) -> None:
        super().__init__()
        self.input_layernorm = layer.input_layernorm
        self.self_attn = layer.self_attn
        self.post_attention_layernorm = layer.post_attention_layernorm
        self.mlp = layer.mlp
        self._fused: tuple[tuple[int, ...], nn.Module | None, nn.Module | None] | None = None

    def drop_fused(self) -> None:
        """Forget the fused projections (rebuilt on the next CUDA forward)."""
        object.__setattr__(self, "_fused", None)

    def _projections(self) -> tuple[nn.Module | None, nn.Module | None]:
        """Fused QKV and gate/up projections, rebuilt whenever the layer's linears are swapped."""
        a, m = self.self_attn, self.mlp
        key = tuple(id(x) for x in (a.q_proj, a.k_proj, a.v_proj, m.gate_proj, m.up_proj))
        if self._fused is None or self._fused[0] != key:
            with torch.no_grad():
                qkv = _concat_rows([a.q_proj, a.k_proj, a.v_proj])
                gu = _concat_rows([m.gate_proj, m.up_proj])
            # Plain attributes, not submodules: the state dict keeps the original names only.
            object.__setattr__(self, "_fused", (key, qkv, gu))
        return self._fused[1], self._fused[2]

    def forward(self, x, cos, sin, input_pos, cache):  # noqa: ANN001 - DecoderLayer.forward's signature
        """One block over hidden states x [B, T, dim]."""
        from trico.kernels import a8_enabled, fused_path, prologues_allowed

        if not fused_path(x):
            return DecoderLayer.forward(self, x, cos, sin, input_pos, cache)
        from trico.kernels.activation import silu_mul, silu_mul_packed
        from trico.kernels.dispatch import gate_fits, gated_forward
        from trico.kernels.prologue import SILU_GATE, norm_prologue
        from trico.kernels.rmsnorm import rmsnorm

        attn, mlp = self.self_attn, self.mlp
        qkv_proj, gu_proj = self._projections()
        b, t, _ = x.shape
        hd, nq, nkv = attn.head_dim, attn.n_heads, attn.n_kv_heads
        # With int8 activations each projection's x is quantized by the kernel that produces it.
        xq = _a8_input(qkv_proj, x)
        decode = qkv_proj is not None and _single_token_cache(cache, x, hd)
        # A decode step hands RMSNorm and the SiLU gate to the projections that consume them (with
        # int8 activations those ops stay separate: they write x's int8 codes for the GEMV).
        prologues = decode and gu_proj is not None and prologues_allowed() and not a8_enabled()
        if prologues:
            xn = None
        else:
            xn, _ = rmsnorm(
                x.contiguous(), self.input_layernorm.weight, self.input_layernorm.eps, quantized_out=xq
            )
        oq = None
        if decode:
            kc, vc = cache.k[attn.layer_idx], cache.v[attn.layer_idx]
            if prologues:
                qkv = _project(qkv_proj, x.contiguous(), prologue=norm_prologue(self.input_layernorm))
            else:
                qkv = _project(qkv_proj, xn, quantized=xq)
            oq = _a8_input(attn.o_proj, x)
            if ONE_LAUNCH_ATTENTION:
                from trico.kernels.decode_attention import rope_decode_attention

                o = rope_decode_attention(qkv, cos, sin, kc, vc, input_pos, nq, nkv, quantized_out=oq)
            else:
                # Rotate q, k and write k, v into the cache in one kernel, then flash-decoding.
                from trico.kernels.decode_attention import decode_attention
                from trico.kernels.rope import rope_qkv_store

                q = rope_qkv_store(qkv, cos, sin, kc, vc, input_pos, nq, nkv)
                o = decode_attention(q, kc, vc, input_pos, quantized_out=oq)
            o = o.view(b, t, nq * hd)
        else:
            o = self._attention(xn, cos, sin, input_pos, cache, qkv_proj, xq)
        if prologues:
            h = _project(attn.o_proj, o, residual=x.contiguous(), quantized=oq)
            norm = norm_prologue(self.post_attention_layernorm)
            if gate_fits(gu_proj, h):  # the gate/up kernel writes silu(gate) * up itself
                return _project(mlp.down_proj, gated_forward(gu_proj, h, prologue=norm), residual=h)
            gu = _project(gu_proj, h, prologue=norm)
            return _project(mlp.down_proj, gu, residual=h, prologue=SILU_GATE)
        o = _project(attn.o_proj, o, quantized=oq)
        hq = _a8_input(gu_proj, x)
        hn, h = rmsnorm(
            o.contiguous(),
            self.post_attention_layernorm.weight,
            self.post_attention_layernorm.eps,
            residual=x.contiguous(),
            quantized_out=hq,
        )
        if gu_proj is not None:
            aq = _a8_input(mlp.down_proj, x)
            act = silu_mul_packed(_project(gu_proj, hn, quantized=hq), quantized_out=aq)
        else:
            aq = None
            act = silu_mul(_project(mlp.gate_proj, hn), _project(mlp.up_proj, hn))
        # The residual add happens in the down projection's kernel.
        return _project(mlp.down_proj, act, residual=h, quantized=aq)

    def _attention(self, xn, cos, sin, input_pos, cache, qkv_proj, xq=None):  # noqa: ANN001, ANN202
        """Attention of a chunk of tokens (prefill, or a cache the one-kernel decode path does not take)."""
        from trico.kernels.rope import rope

        attn = self.self_attn
        b, t, _ = xn.shape
        hd, nq, nkv = attn.head_dim, attn.n_heads, attn.n_kv_heads
        if qkv_proj is not None:
            qkv = _project(qkv_proj, xn, quantized=xq)
            # q's and k's heads sit side by side in each token's row: one RoPE launch rotates both (an eager
            # prompt pays ~50 us of host time a launch on the H200 machine)
            qk = rope(qkv[..., : (nq + nkv) * hd].view(b, t, nq + nkv, hd), cos, sin)
            q, k = qk[:, :, :nq], qk[:, :, nq:]
            v = qkv[..., (nq + nkv) * hd :].view(b, t, nkv, hd)
        else:
            q_, k_, v = _project(attn.q_proj, xn), _project(attn.k_proj, xn), _project(attn.v_proj, xn)
            q = rope(q_.view(b, t, nq, hd), cos, sin)
            k = rope(k_.view(b, t, nkv, hd), cos, sin)
            v = v.view(b, t, nkv, hd)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if cache is None:
            o = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=attn.n_heads != attn.n_kv_heads
            )
        else:
            o = cache.attend(attn.layer_idx, q, k, v, input_pos)
        return o.transpose(1, 2).reshape(b, t, nq * hd)


class FusedHead(nn.Module):
    """The output projection with fp32 logits from one pass over the 16-bit weight (see llama.head_logits).

    It registers the same Parameter as the nn.Linear it replaces, so the state dict key
    (`lm_head.weight`) and a tie to the embedding table are unchanged.
    """

    def __init__(self, head: nn.Linear) -> None:
        super().__init__()
        self.weight = head.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """fp32 logits [..., vocab]: the tensor-core GEMM with an unrounded fp32 output on the fused path."""
        from trico.kernels import fused_path
        from trico.kernels.dispatch import dense_forward

        if fused_path(h) and h.dtype == self.weight.dtype and h.dtype != torch.float32:
            return dense_forward(self.weight, h, out_dtype=torch.float32)
        return F.linear(h.float(), self.weight.float())


class FusedNorm(nn.Module):
    """An RMSNorm run by the Triton kernel on the fused path (the same rounding as the module), with the module's own Parameter."""

    def __init__(self, norm: RMSNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize the last dimension and scale it: one kernel on the fused path, RMSNorm's torch ops elsewhere."""
        from trico.kernels import fused_path

        if fused_path(x) and x.dtype in (torch.bfloat16, torch.float16) and self.weight.dtype == x.dtype:
            from trico.kernels.rmsnorm import rmsnorm

            return rmsnorm(x.contiguous(), self.weight, self.eps)[0]
        return RMSNorm.forward(self, x)


def fuse_model_(model: Transformer) -> Transformer:
    """Swap the decoder layers for FusedDecoderLayer, the final norm for FusedNorm and a 16-bit head for
    FusedHead, in place (idempotent)."""
    layers = model.model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, DecoderLayer):
            layers[i] = FusedDecoderLayer(layer)
    if type(model.model.norm) is RMSNorm:
        model.model.norm = FusedNorm(model.model.norm)
    head = model.lm_head
    if type(head) is nn.Linear and head.bias is None and head.weight.dtype in (torch.bfloat16, torch.float16):
        model.lm_head = FusedHead(head)
    return model
