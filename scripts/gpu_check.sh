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
#   tuned    the sweep's fastest ECBSR setting through the bench, compile column included
#   ncu      Nsight Compute on one fused ECBSR launch (what bounds it)
# Not in `all`: tuned, engine, pipeline, e2e (issue 4), panes (issue 5), train-bg/train-wait
# (issue 3); see below. One device session has 15 minutes in all, starts included (about 40 s
# each). What session 23 ran, three calls of 3-4 minutes (carry .whl: PyAV, 35 MiB):
#   OUT=/tmp/g BUDGET=315 SWEEP_MODELS=ecbsr-m4c16-x2 E2E_SR_FRAMES=10 \
#     E2E_ARGS="--models ecbsr-m4c16-x2 --sizes 1920x1080 --e2e-frames 120" \
#     bash scripts/gpu_check.sh tests sweep tuned e2e bench panes ncu pipeline
# then tar /tmp/g into $OUT (more than 8 files). Next session, the same with
# NCU_ARGS="--tuning /tmp/g/tuning.json": the sweep now holds the line-buffer ("stream") and
# wavefront ("wave") ECBSR kernels, and the bench's "autotuned ms" column is the engine's choice.
# GPU training needs runs/pack as well (~52 MiB): a call of its own, carry runs/pack [runs/gpu],
# timeout_s 560:
#   BUDGET=540 bash scripts/gpu_check.sh train-bg tests engine train-wait bench panes sweep ncu
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

TRAIN_PIDS=()
run_steps=("$@")
[[ ${#run_steps[@]} -eq 0 || ${run_steps[0]} == all ]] && run_steps=(tests bench compile sweep ncu)
for s in "${run_steps[@]}"; do
    case $s in
        tests) step tests 240 python3 -m pytest -q -rs -p no:cacheprovider tests/test_kernels.py ;;
        bench) step bench 150 python3 -m vidsr.kernels.bench --no-compile ;;
        sweep) step sweep 100 python3 -m vidsr.kernels.bench --sweep --iters 20 \
                   --models ${SWEEP_MODELS:-ecbsr-m4c16-x2 esr-tm-k7c16-x2} --json "$OUT/sweep.json" ;;
        # The sweep's fastest ECBSR setting through the full bench (compile column included),
        # for ecbsr-m4c16-x2 and the same setting on ecbsr-m4c8-x2; run after `sweep`.
        tuned)
            python3 - "$OUT/sweep.json" "$OUT/tuning.json" <<'PY' 2>&1 | tee -a "$OUT/summary.txt"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r.get("error") is None
        and r["model"].startswith("ecbsr")]
best = min(rows, key=lambda r: r["ms"])
keys = {k: v for k, v in best.items() if k not in ("model", "ms", "max_abs_diff_vs_default")}
json.dump({m: keys for m in ("ecbsr-m4c16-x2", "ecbsr-m4c8-x2")}, open(sys.argv[2], "w"))
print("tuned: fastest ECBSR setting", keys, f"{best['ms']:.3f} ms")
PY
            step tuned 150 python3 -m vidsr.kernels.bench --tuning "$OUT/tuning.json" \
                --models ecbsr-m4c16-x2 ecbsr-m4c8-x2 ;;
        compile) step compile 300 python3 -m vidsr.kernels.bench ;;
        # NCU_ARGS: more bench arguments, e.g. --tuning "$OUT/tuning.json" after `sweep tuned`
        # to profile the sweep's fastest ECBSR setting (any of the three kernel forms)
        ncu) step ncu 90 env VIDSR_KERNEL_AUTOTUNE=0 ncu --kernel-name regex:_plainsr \
                 --launch-skip 3 --launch-count 1 \
                 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
                 --section LaunchStats python3 -m vidsr.kernels.bench --no-compile --iters 2 \
                 --models ecbsr-m4c16-x2 ${NCU_ARGS:-} ;;
        # Engine/pipeline checks (issue 4): `pipeline` and `e2e` need PyAV, carried as wheels
        # (../shared/tools/device-wheels.sh av==18.1.0, then carry .whl). Run them in their own
        # call: bash scripts/gpu_check.sh engine pipeline e2e
        engine) step engine 150 python3 -m pytest -q -rs -p no:cacheprovider -m gpu \
                    tests/test_engine_gpu.py ;;
        pipeline) step pipeline 150 python3 -m pytest -q -rs -p no:cacheprovider -m gpu \
                      tests/test_pipeline_gpu.py ;;
        e2e) step e2e 240 python3 -m vidsr bench --device cuda --frames ${E2E_SR_FRAMES:-20} \
                 ${E2E_ARGS:-} ;;
        # Issue 5: four GUI panes at 720p -> 1440p without Qt (PyQt6 is too big to carry).
        panes) step panes 120 python3 -c "from vidsr.engine.panes import panes_bench, format_panes
print(format_panes(panes_bench(size=(1280, 720), frames=60, device='cuda')))" ;;
        # Issue 3: ECBSR training on the GPU, resumable across sessions. `train-bg` starts one
        # `vidsr train` per recipe in TRAIN_RECIPES (default recipes/gpu/*.toml) in the
        # background, all on the one GPU, each stopping with a checkpoint after TRAIN_S seconds
        # (default 300); steps listed after it run meanwhile (correctness tests: their timings
        # mean nothing under the training load). `train-wait` waits for them and packs every
        # run folder (last.ckpt, best.safetensors, log.jsonl, the log) into $OUT/train.tgz;
        # put the benchmarks after it. Carry runs/pack (python scripts/pack_train_data.py
        # --exact-lr: the training planes of all scales, LR unrounded as the recipes/gpu ask,
        # plus Set5/Set14, ~52 MiB) and, from the second session
        # on, runs/gpu (train.tgz unpacked): a run folder holding last.ckpt is resumed.
        train-bg)
            mkdir -p runs/gpu
            for r in ${TRAIN_RECIPES:-recipes/gpu/*.toml}; do
                name=$(basename "$r" .toml); dir=runs/gpu/$name
                args=(--recipe "$r")
                [[ -f $dir/last.ckpt ]] && args+=(--resume "$dir/last.ckpt")
                log "train $name: start (${TRAIN_S:-300}s) ${args[*]}"
                python3 -m vidsr train "${args[@]}" --data "${TRAIN_DATA:-runs/pack/train.pack.npz}" \
                    --val runs/pack/val/Set5 runs/pack/val/Set14 --out "$dir" --device "${TRAIN_DEVICE:-cuda}" \
                    --no-progress --time-limit "${TRAIN_S:-300}" >>"runs/gpu/$name.log" 2>&1 &
                TRAIN_PIDS+=($!)
            done ;;
        train-wait)
            for pid in "${TRAIN_PIDS[@]}"; do wait "$pid"; log "train pid $pid: exit $?"; done
            for f in runs/gpu/*.log; do log "$(basename "$f"): $(grep -E 'step [0-9]+:' "$f" \
                | tail -n 1 | cut -c1-160)"; done
            tar -czf "$OUT/train.tgz" --exclude='*.lock' runs/gpu && log "train.tgz: $(du -h \
                "$OUT/train.tgz" | cut -f1)" ;;
        *) log "unknown step $s (all|tests|bench|compile|sweep|tuned|ncu|engine|pipeline|e2e|panes|train-bg|train-wait)" ;;
    esac
done
log "done in $(( $(date +%s) - START ))s; files in $OUT"
