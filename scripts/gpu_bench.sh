#!/usr/bin/env bash
# Search-step benchmark on one CUDA GPU: MIDAS (patch grid 2) and DARTS supernets at paper size
# (DARTS space C=16, 8 cells; NB201 C=16, N=5) at batch 64 and 96, fp32 and bf16 autocast.
# Writes the table, with the GPU's name and this command, into BENCHMARKS.md between the
# <!-- bench:gpu --> markers, and every timed step into bench_gpu.json. About 5 minutes on an H100-class GPU.
#
#   scripts/gpu_bench.sh                      # all of the above
#   scripts/gpu_bench.sh --patch-grid 2,4     # extra arguments go to `midas bench`
set -euo pipefail
cd "$(dirname "$0")/.."
MIDAS=${MIDAS:-midas}
$MIDAS bench --device "${DEVICE:-cuda}" --space darts,nb201 --methods midas,darts --patch-grid 2 \
  --batch-size 64,96 --amp none,bf16 --warmup 3 --repeats 10 \
  --json "${BENCH_JSON:-bench_gpu.json}" --markdown BENCHMARKS.md --section gpu "$@"
