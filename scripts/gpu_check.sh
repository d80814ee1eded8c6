#!/usr/bin/env bash
# The fused-kernel checks for a CUDA machine, in one go, writing everything under $OUT.
#
#   bash scripts/gpu_check.sh [all|tests|bench|compile|sweep|ncu] ...
#
# Run from the repository root (the device tool's `run` does). Steps, most important first:
#   tests    pytest tests/test_kernels.py (GPU: compiled kernels, the gpu-marked full-frame tests)
#   bench    python -m vidsr.kernels.bench --no-compile  (fused vs fp16 channels-last eager)
#   compile  the bench with the torch.compile max-autotune column (autotuning takes minutes)
#   sweep    tile settings of the ECBSR and eSR-TM kernels (pick new defaults from it)
#   ncu      Nsight Compute on one fused ECBSR launch (what bounds it)
# Not in `all`: engine, pipeline, e2e (issue 4), panes (issue 5), train (issue 3); see below.
# Output: $OUT/summary.txt (environment, one line per step) and $OUT/<step>.txt (six files; the
# bench prints each model's row as JSON as soon as it is measured, so a step cut short by its
# timeout still leaves its finished rows). `all` (the default) runs the steps inside BUDGET
# seconds (default 540; give the device call timeout_s=600): each step gets at most its own cap
# and what is left, and is skipped when under 30 s remain. Python packages the
# image lacks can travel as wheels in .whl/ (see /work/.library/device/README.md); vidsr itself
# is used from the checkout (PYTHONPATH), nothing is installed.
set -u
OUT=${OUT:-/tmp/vidsr-gpu-check}
BUDGET=${BUDGET:-540}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

log() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt"; }

# step NAME CAP COMMAND...: run with a timeout of min(CAP, time left - 10), output to $OUT/NAME.txt
step() {
    local name=$1 cap=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - START) - 10 ))
    if (( left < 30 )); then log "$name: skipped, ${left}s left"; return; fi
    local t=$(( cap < left ? cap : left ))
    log "$name: start (timeout ${t}s): $*"
    timeout "$t" "$@" >"$OUT/$name.txt" 2>&1
    log "$name: exit $? ($(tail -n 1 "$OUT/$name.txt" | cut -c1-200))"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__,
torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).multi_processor_count, 'SMs')"
    git log --oneline -1 2>/dev/null
} 2>&1 | tee -a "$OUT/summary.txt"

run_steps=("$@")
[[ ${#run_steps[@]} -eq 0 || ${run_steps[0]} == all ]] && run_steps=(tests bench compile sweep ncu)
for s in "${run_steps[@]}"; do
    case $s in
        tests) step tests 240 python3 -m pytest -q -rs -p no:cacheprovider tests/test_kernels.py ;;
        bench) step bench 150 python3 -m vidsr.kernels.bench --no-compile ;;
        sweep) step sweep 100 python3 -m vidsr.kernels.bench --sweep --iters 20 \
                   --models ecbsr-m4c16-x2 esr-tm-k7c16-x2 ;;
        compile) step compile 300 python3 -m vidsr.kernels.bench ;;
        ncu) step ncu 90 ncu --kernel-name regex:_plainsr_kernel --launch-skip 3 --launch-count 1 \
                 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
                 --section LaunchStats python3 -m vidsr.kernels.bench --no-compile --iters 2 \
                 --models ecbsr-m4c16-x2 ;;
        # Engine/pipeline checks (issue 4): `pipeline` and `e2e` need PyAV, carried as wheels
        # (../shared/tools/device-wheels.sh av==18.1.0, then carry .whl). Run them in their own
        # call: bash scripts/gpu_check.sh engine pipeline e2e
        engine) step engine 150 python3 -m pytest -q -rs -p no:cacheprovider -m gpu \
                    tests/test_engine_gpu.py ;;
        pipeline) step pipeline 150 python3 -m pytest -q -rs -p no:cacheprovider -m gpu \
                      tests/test_pipeline_gpu.py ;;
        e2e) step e2e 240 python3 -m vidsr bench --device cuda --frames 20 ;;
        # Issue 5: four GUI panes at 720p -> 1440p without Qt (PyQt6 is too big to carry).
        panes) step panes 120 python3 -c "from vidsr.engine.panes import panes_bench, format_panes
print(format_panes(panes_bench(size=(1280, 720), frames=60, device='cuda')))" ;;
        # Issue 3: ECBSR training on the GPU, resumable across sessions. Carry runs/data (the
        # packed Y planes, `vidsr train --cache runs/data`), runs/val and, after the first
        # session, the last.ckpt brought back in $OUT/train/. Arguments in TRAIN_ARGS, e.g.
        #   TRAIN_ARGS="--recipe R.toml --data runs/data/train-x2.npz" or "--resume runs/gpu/last.ckpt"
        train) step train 600 python3 -m vidsr train ${TRAIN_ARGS:-} --val runs/val/Set5 \
                   runs/val/Set14 --out runs/gpu --device cuda --no-progress \
                   --time-limit $(( BUDGET - ($(date +%s) - START) - 60 ))
               mkdir -p "$OUT/train" && cp runs/gpu/last.ckpt runs/gpu/best.safetensors \
                   runs/gpu/log.jsonl "$OUT/train/" 2>/dev/null ;;
        *) log "unknown step $s (all|tests|bench|compile|sweep|ncu|engine|pipeline|e2e|panes|train)" ;;
    esac
done
log "done in $(( $(date +%s) - START ))s; files in $OUT"
