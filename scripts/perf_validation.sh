#!/usr/bin/env bash
# Held-out measurements for the performance model (docs/perf-model.md), run once on the GPU machine:
#   OUT=/some/dir bash scripts/perf_validation.sh
# Shapes, batches and contexts differ from the fitting set (Llama-2-7B, batches 1/4/16/64, prompt 128):
# Llama-3-8B (GQA) and Llama-2-13B at context 2K, Llama-3-8B at 8K, and a bf16 batch sweep for the
# decode compute-bound crossover. Each part is its own process and time limit, so a slow part cannot
# take the others' results with it; the parts are merged into $OUT/perf-validation-h100.json.
set -uo pipefail
export PYTHONUNBUFFERED=1
O=${OUT:?set OUT}
B="python benchmarks/decode.py --no-baseline --repeats 3 --new-tokens 32 --prompt 128"
ALL=bf16,int8,int4-g128,int3-g128,tern2,tern1.6
timeout 150 $B --models llama-3-8b --formats $ALL --batches 1,16 --contexts 2048 --prefill 2048 --out "$O/v-l3-2k.json"
timeout 140 $B --models llama-2-13b --formats $ALL --batches 1,8 --contexts 2048 --prefill 2048 --out "$O/v-l2-13b-2k.json"
timeout 100 $B --models llama-3-8b --formats bf16,int8,int4-g128,tern1.6 --batches 1,4 --contexts 8000 --prefill 8000 --out "$O/v-l3-8k.json"
timeout 60 $B --models llama-3-8b --formats bf16 --batches 32,128,256,512 --contexts 128 --prefill 0 --out "$O/v-l3-xover.json"
python - "$O" <<'PY'
import glob, json, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/v-*.json")):
    rows += json.load(open(f))
json.dump(rows, open(sys.argv[1] + "/perf-validation-h100.json", "w"), indent=1)
print(f"merged {len(rows)} results")
PY
