#!/usr/bin/env bash
# The performance model's GPU measurements (docs/perf-model.md), taken in ONE run on the H100 machine so the
# fitting and the held-out set come from the same engine build:
#   OUT=/some/dir bash scripts/perf_validation.sh
# Fitting set ($OUT/perf-fit-h100.json): Llama-2-7B, every format, batches 1/16/64, contexts 128/1024,
# prefill 2048. Held-out set ($OUT/perf-validation-h100.json): Llama-3-8B (GQA) and Llama-2-13B at context
# 2K with other batches (4, 8), Llama-3-8B at 8K (decode and prefill), and a bf16 batch sweep up to 512 for
# the decode compute-bound crossover. Each part runs in its own process under its own time limit, so one
# slow part cannot take the others' results with it.
set -uo pipefail
export PYTHONUNBUFFERED=1
O=${OUT:?set OUT}
B="python benchmarks/decode.py --no-baseline --repeats 3 --new-tokens 32 --prompt 128"
ALL=bf16,int8,int4-g128,int3-g128,tern2,tern1.6
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
timeout 150 $B --models llama-2-7b --formats $ALL --batches 1,16,64 --contexts 128,1024 --prefill 2048 --out "$O/f-l2-7b.json"
timeout 100 $B --models llama-3-8b --formats $ALL --batches 1,4 --contexts 2048 --prefill 2048 --out "$O/v-l3-2k.json"
timeout 100 $B --models llama-2-13b --formats $ALL --batches 1,8 --contexts 2048 --prefill 2048 --out "$O/v-l2-13b-2k.json"
timeout 70 $B --models llama-3-8b --formats bf16,int8,int4-g128,tern1.6 --batches 1,4 --contexts 8000 --prefill 8000 --out "$O/v-l3-8k.json"
timeout 45 $B --models llama-3-8b --formats bf16 --batches 32,128,256,512 --contexts 128 --prefill 0 --out "$O/v-l3-xover.json"
python - "$O" <<'PY'
import glob, json, sys
o = sys.argv[1]
for prefix, name in (("f-", "perf-fit-h100.json"), ("v-", "perf-validation-h100.json")):
    rows = []
    for f in sorted(glob.glob(f"{o}/{prefix}*.json")):
        rows += json.load(open(f))
    json.dump(rows, open(f"{o}/{name}", "w"), indent=1)
    print(f"{name}: {len(rows)} results")
PY
