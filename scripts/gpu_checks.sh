#!/usr/bin/env bash
# The engine's checks on a GPU machine (issue 21), each one's output kept in OUT. STEPS (comma-separated, in the
# order given; default: all, in this order of what matters):
#   same_rows  the same-rows contract per dtype on the GPU (scripts/check_same_rows.py);
#   bench      the bench at the default decoding slots (128 on CUDA), with the bf16-vs-fp32 soft-label deviation;
#   tests      the backend's and the augmenter's tests, on the GPU (the backend takes cuda when there is one);
#   bench64    the bench at 64 slots, to judge the default against;
#   cpu_bench  the bench on the host CPU, CUDA hidden: an H100 lent here had an Intel Xeon with AMX beside it,
#              where `auto` is bf16 natively (the AMX figures issue 21 asks for);
#   cpu_tests  the same tests on that CPU, CUDA hidden (bf16 under `auto`, as an AMX machine runs the suite).
# The bench runs 128 rows once (its figures print only at its end) against bare `generate` at batch 128 (32 on
# the CPU). Each step has its own time limit, so a slow one leaves the others their time, and a step stopped at
# its limit says so in its log. Sized after a first run on an H100 that did not finish in 10 minutes: there one
# decoding slot took about a second a row. The limits add up to about 13 minutes: where one command may run 10,
# run the steps in two calls. The default order puts what matters first, so a run cut short keeps it.
#
#     scripts/gpu_checks.sh ../shared/data [OUT] [STEPS]
set -u
data=${1:?usage: scripts/gpu_checks.sh DATA_DIR [OUT] [STEPS]}
out=${2:-.}
mkdir -p "$out"
steps=${3:-same_rows,bench,tests,bench64,cpu_bench,cpu_tests}
python3 -c "import torch; assert torch.cuda.is_available(), 'no GPU here: these are the GPU checks'" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/machine.log"
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'datasets', datasets.__version__)" | tee -a "$out/machine.log"

quiet() { grep -v "/s\]\|s/row\]\|s/ examples\]"; }  # progress bars
limited() {  # log, time limit, command...: run it, and say in the log when it was stopped at its limit
    local log=$1 limit=$2
    shift 2
    timeout -k 15 "$limit" "$@" 2>&1 | quiet | tee "$log"
    [ "${PIPESTATUS[0]}" = 124 ] && echo "STOPPED at its time limit of $limit s" | tee -a "$log"
    return 0
}
bench() {  # name, time limit, bench flags...
    local name=$1 limit=$2
    shift 2
    limited "$out/$name.log" "$limit" python3 scripts/bench_augment.py --data_dir "$data" --rows 128 \
        --max_new_tokens 32 --repeats 1 --debiased false "$@"
}
tests() {  # name, time limit
    GPT3MIX_DATA_DIR=$data limited "$out/$1.log" "$2" python3 -m pytest -q -p no:cacheprovider \
        tests/test_transformers_backend.py tests/test_augmenter.py --durations 8
}

known=" same_rows bench tests bench64 cpu_bench cpu_tests "
for step in ${steps//,/ }; do  # every step name checked before the first one runs
    [[ $known == *" $step "* ]] || { echo "unknown step $step:$known" >&2; exit 2; }
done
for step in ${steps//,/ }; do
    case $step in
        same_rows) limited "$out/same_rows.log" 100 python3 scripts/check_same_rows.py --data_dir "$data" --rows 16 ;;
        bench) bench bench_slots128 120 --slots 128 --bare_batch_sizes 128 --soft_label_deviation true ;;
        tests) tests tests_gpu 120 ;;
        bench64) bench bench_slots64 90 --slots 64 --bare_batch_sizes 128 --soft_label_deviation false ;;
        cpu_bench) CUDA_VISIBLE_DEVICES= bench bench_cpu 150 --rows 32 --bare_batch_sizes 32 \
                       --soft_label_deviation true ;;
        cpu_tests) CUDA_VISIBLE_DEVICES= tests tests_cpu 180 ;;
    esac
done
