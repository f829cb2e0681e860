#!/usr/bin/env bash
# Every GPU check in one pass, for a device machine lent for a few minutes: install the wheels
# benchmarks/gpu_wheels.sh put in .whl/, run the GPU tests (tests/gpu, marked gpu), then the
# figures only a GPU gives: probe fits on the GPU, pretraining MFU, and the knowledge
# experiment at more people than the CPU default. Each stage has its own time limit, so the
# pass ends inside one 10-minute call, and its log lands in $OUT (what comes back) even when a
# stage runs out of time (the limits add up to about 9 minutes).
#   here:   benchmarks/gpu_wheels.sh
#   there:  run(command="benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
#   CPU dry run of the plumbing (here, where the wheels' Python differs):
#     DEVICE=cpu QUICK=1 WHEELS=0 benchmarks/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$PWD/gpu-out}"
device="${DEVICE:-cuda}"
quick="${QUICK:-0}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [[ "${WHEELS:-1}" == "1" ]] && compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  # the working tree first: the wheel's copy of this project only supplies its entry points
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [[ "$device" == "cpu" ]]; then
  export WORKBENCH_TEST_DEVICE=cpu
fi
{ nvidia-smi || echo "no nvidia-smi"; python3 -c 'import torch; print(torch.__version__,
  torch.cuda.is_available())'
  # the versions the carried wheels meet (datasets wants pyarrow >= 24, huggingface-hub >= 1.31)
  python3 -m pip list 2>/dev/null | grep -i -E \
    "^(torch|transformer|pyarrow|huggingface|fsspec|datasets|numpy|safetensors|tokenizers|scikit)"
  python3 -c 'import transformer_lens, datasets; print("imports ok")'
} > "$out/device.txt" 2>&1 || true

stage() {  # stage NAME SECONDS COMMAND...: run under a time limit, log to $out/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s): $*"
  local start=$SECONDS rc=0
  timeout "$limit" "$@" > "$out/$name.log" 2>&1 || rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  tail -n 30 "$out/$name.log"
}

if [[ "$quick" == "1" ]]; then
  probe_args=(--examples 400 --collect-examples 128 --rounds 1 --fit-rounds 1)
  probe_lm_args=("${probe_args[@]}")
  lm_steps=5
  mfu_args=(--steps 3 --micro-batch 2)
  knowledge_args=(--people 16 --steps 5 --finetune-steps 2 --probe-steps 2
                  --series-checkpoints 1)
else
  probe_args=(--examples 10000 --d-model 512 --threads 16 --rounds 2 --fit-rounds 1)
  probe_lm_args=(--threads 16 --rounds 2 --fit-rounds 1)
  lm_steps=300
  mfu_args=(--steps 200)
  # the CPU default's 2-layer, 128-wide model reads the attributes off the name at chance at
  # 1,000 people (docs: issue 14's note); a wider, deeper model is the experiment worth the GPU
  knowledge_args=(--people 1000 --steps 2400 --series-checkpoints 2
                  --model '{"n_layers": 4, "d_model": 256, "n_heads": 8, "d_mlp": 1024}')
fi
stage gpu-tests 120 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -p no:dash
stage probes-speed 75 python3 benchmarks/probes_speed.py --device "$device" "${probe_args[@]}"
# the same on a trained model (its residual stream is far less isotropic than random weights')
stage probes-speed-lm 90 python3 benchmarks/probes_speed.py --pretrain "$lm_steps" \
  --device "$device" "${probe_lm_args[@]}"
stage mfu 100 python3 benchmarks/pretrain_mfu.py "${mfu_args[@]}"
stage knowledge 170 python3 benchmarks/knowledge_reference.py --jobs 3 "${knowledge_args[@]}" \
  --json-out "$out/knowledge.json"
