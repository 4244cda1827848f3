"""LLM-to-accelerator compiler: trico's Llama decoder layer -> HLS C++ dataflow accelerator.

Pipeline (one concern per module):
  frontend  torch.fx trace of one decode step (attention over the KV cache as one leaf) -> ir
  passes    named, ordered flow: fold layout ops, fuse silu-gate and residual adds, per-tensor
            precision (float or ap_fixed<W,I> from calibration), forks, unroll/partition, streams
  emitter   small calls into the hand-written C++ library in lib/ (Vitis-HLS pragmas), testbench,
            weight memory images; the top level is a layer engine looping over layers
  csim      g++ against the ap_int/ap_fixed headers shipped in the hls4ml package
  estimator cycles and resources per stage on parts from data/parts.json (estimates, not synthesis)
  dse       unroll x precision x weight format, budget pruning, Pareto front; report writes md/json/png

Entry point: `trico.hls.design.compile(module, example_inputs, precision, part) -> Design`.
"""
