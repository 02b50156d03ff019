#!/usr/bin/env bash
# The engine's checks on a GPU (issue 21, part 6), in order of what matters, each one's output kept in OUT:
# 1. the same-rows contract per dtype (scripts/check_same_rows.py);
# 2. the bench at the default decoding slots (128 on CUDA), with the bf16-vs-fp32 soft-label deviation;
# 3. the backend's and the augmenter's tests, run on the GPU (the backend takes cuda when there is one);
# 4. the bench at 64 slots, to judge the default against.
# The bench runs 128 rows once (its figures print only at its end) against bare `generate` at batch 128.
# Each step has its own time limit, so a slow one leaves the others their time. Sized after a first run on an
# H100 that did not finish in 10 minutes: there one decoding slot took about a second a row.
#
#     scripts/gpu_checks.sh ../shared/data [OUT]
set -u
data=${1:?usage: scripts/gpu_checks.sh DATA_DIR [OUT]}
out=${2:-.}
python3 -c "import torch; assert torch.cuda.is_available(), 'no GPU here: these are the GPU checks'" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/machine.log"
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'datasets', datasets.__version__)" | tee -a "$out/machine.log"

bench() {  # slots, deviation?, time limit
    timeout "$3" python3 scripts/bench_augment.py --data_dir "$data" --rows 128 --max_new_tokens 32 --repeats 1 \
        --slots "$1" --bare_batch_sizes 128 --debiased false --soft_label_deviation "$2" 2>&1 \
        | grep -v "/s\]\|s/row\]\|s/ examples\]" | tee "$out/bench_slots$1.log"
}

timeout 100 python3 scripts/check_same_rows.py --data_dir "$data" --rows 16 2>&1 \
    | grep -v "/s\]\|s/row\]\|s/ examples\]" | tee "$out/same_rows.log"
bench 128 true 120
GPT3MIX_DATA_DIR=$data timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_transformers_backend.py \
    tests/test_augmenter.py --durations 8 2>&1 | tee "$out/pytest.log"
bench 64 false 90
