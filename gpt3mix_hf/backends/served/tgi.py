"""A text-generation-inference (TGI) server as a backend: the protocol only (`POST /generate` with `details`);
requests, retries, the cache and the key are `ServedBackend`'s.

Coverage note: no TGI server can run on the machines this project is tested on (a Rust router, no Docker).
This backend is tested against an in-process server that speaks TGI's protocol, with answers built from
`huggingface_hub`'s `TextGenerationOutput` types, and a real LM behind it; real-TGI coverage is by protocol
only.
"""

from __future__ import annotations

import math
import re

from transformers.utils import logging

from ...validation import check_arguments
from ..base import Completion, SamplingConfig
from .backend import ServedBackend
from .config import ServedConfig
from .errors import BadResponseError, RequestFailedError, RequestRefusedError, ServedBackendError
from .runner import gather_in_order

logger = logging.get_logger(__name__)

LABEL_SCORING_MODES = ("auto", "prefill", "top_n_tokens")
_TOP_N = re.compile(r"top_n_tokens.*?<=\s*(\d+)", re.IGNORECASE)


class TGIBackend(ServedBackend):
    """Samples from and scores with a text-generation-inference server (`POST /generate`).

    Every request is `POST /generate` with `details=True` (the JSON that `huggingface_hub`'s
    `InferenceClient.text_generation` sends), up to `config.max_concurrency` at once, each generation with its
    row's seed. Soft labels are exact where the server returns prompt log-probabilities
    (`decoder_input_details=True`; TGI >= 3 needs `--enable-prefill-logprobs`): each label continuation is sent
    after the prompt and the generated text, and the log-probabilities of its tokens in the prefill are summed.
    Otherwise the labels come from the `top_n_tokens` alternatives at the label position (capped by TGI's
    `--max-top-n-tokens`, 5 by default), with `Completion.label_mass` recording the probability they covered.

    Text is sent as one string (TGI takes no token ids): a label whose first token merges with the text before
    it is scored on the merged token. `tokenize` uses TGI's `/tokenize` where the server has it; without it,
    `tokenize` and `max_context` are None and prompts are not shortened to fit the model's context.

    Args:
        base_url (`str`): the server, e.g. `http://127.0.0.1:8080`.
        api_key (`str`, *optional*): sent as a bearer token; never logged, cached, pickled or in `identity`.
        api_key_env (`str`, *optional*): the name of the environment variable holding the key, read in each
            process that uses the backend: use this one with `Dataset.map(num_proc=...)`.
        model (`str`, *optional*): a name for provenance; default the `model_id` from the server's `/info`.
        label_scoring (`str`): `"auto"` (probe once), `"prefill"` or `"top_n_tokens"`.
        top_n_tokens (`int`): alternatives asked for in `"top_n_tokens"` mode.
        config (`ServedConfig`, *optional*): concurrency, retries, limits, request cache.

    Example:

    >>> backend = TGIBackend("http://127.0.0.1:8080", config=ServedConfig(cache_path="outputs/tgi.sqlite"))
    >>> augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), seed=0)
    >>> synthetic = augmenter.augment()
    """

    kind = "tgi"
    label_scoring_modes = LABEL_SCORING_MODES

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        model: str | None = None,
        label_scoring: str = "auto",
        top_n_tokens: int = 5,
        config: ServedConfig | None = None,
    ):
        check_arguments(TGIBackend.__init__, {"top_n_tokens": top_n_tokens})
        if not isinstance(top_n_tokens, int) or top_n_tokens < 1:
            raise ValueError(f"top_n_tokens must be an integer >= 1, got {top_n_tokens!r}.")
        super().__init__(base_url, model=model, api_key=api_key, api_key_env=api_key_env, label_scoring=label_scoring,
                         config=config)
        self.top_n_tokens = top_n_tokens

    def _settings(self) -> dict:
        return {**super()._settings(), "top_n_tokens": self.top_n_tokens}

    def _identity_extra(self) -> dict:
        return {"top_n_tokens": self.top_n_tokens}

    @classmethod
    def _settings_from_identity(cls, identity: dict) -> dict:
        return {**super()._settings_from_identity(identity), "top_n_tokens": identity.get("top_n_tokens", 5)}

    # -- the server -------------------------------------------------------------------------------------------

    async def _probe(self) -> dict:
        async with self._client() as client:
            try:
                info = await self._request(client, "GET", "/info", None, _dict_or_empty, cached=False,
                                           describe="reading /info", abort_batch=False)
            except RequestRefusedError:  # not every TGI-compatible endpoint has /info (a failing server raises)
                info = {}
            try:
                tokenizes = await self._request(client, "POST", "/tokenize", {"inputs": "a"},
                                                lambda answer: isinstance(answer, list), cached=False,
                                                describe="a /tokenize probe", abort_batch=False)
            except RequestRefusedError:
                tokenizes = False
            if self.model is None:
                if not info.get("model_id"):
                    # The identity (and the request cache's key) names the model, never the URL.
                    raise ServedBackendError(
                        f"{self.base_url} has no /info saying which model it serves: pass model=<its name>."
                    )
                self.model = info["model_id"]
            server = {"max_context": info.get("max_total_tokens") if tokenizes else None, "tokenize": tokenizes,
                      "label_scoring": self.label_scoring}
            if self.label_scoring == "auto":
                parameters = {"max_new_tokens": 1, "details": True, "decoder_input_details": True}
                answer = await self._generate_call(client, "Hello world", parameters, cached=False,
                                                   describe="a prefill probe")
                values = [token.get("logprob") for token in answer["details"].get("prefill") or []]
                if any(isinstance(value, int | float) and not math.isnan(value) for value in values):
                    server["label_scoring"] = "prefill"
                else:
                    server["label_scoring"] = "top_n_tokens"
                    logger.warning(
                        f"{self.base_url} returns no prompt log-probabilities (TGI >= 3: launch it with "
                        f"--enable-prefill-logprobs); soft labels will come from the top {self.top_n_tokens} "
                        "alternatives at the label position (approximate, see the label_mass column)."
                    )
        return server

    @property
    def max_context(self) -> int | None:
        return self._connected()["max_context"]

    def tokenize(self, text: str) -> list[int] | None:
        if not self._connected()["tokenize"]:
            return None
        memo = self._token_memo.get(text)
        if memo is not None:
            return memo

        async def run():
            async with self._client() as client:
                return await self._request(client, "POST", "/tokenize", {"inputs": text}, self._read_tokens,
                                           describe="tokenizing")

        return self._remember_tokens(text, self.runner.run(run))

    def _read_tokens(self, answer) -> list[int]:
        if not isinstance(answer, list) or not all(isinstance(t, dict) and isinstance(t.get("id"), int)
                                                   for t in answer):
            raise BadResponseError(f"{self.base_url}/tokenize answered {str(answer)[:200]}, not a list of tokens.")
        return [token["id"] for token in answer]

    def _explain_rejection(self, error: RequestFailedError, payload: dict) -> Exception:
        cap = _TOP_N.search(str(error))
        if cap is None:
            return error
        return ServedBackendError(
            f"{self.base_url} allows at most {cap.group(1)} top tokens but top_n_tokens={self.top_n_tokens}: "
            f"launch TGI with --max-top-n-tokens {self.top_n_tokens} or more, or lower top_n_tokens. "
            f"The server said: {error}"
        )

    # -- requests ---------------------------------------------------------------------------------------------

    async def _generate_call(self, client, inputs: str, parameters: dict, parse=None, *, cached: bool = True,
                             describe: str = "a TGI request"):
        """`parse(output)` (default: the output itself) for one `/generate` call, where `output` is the answer
        checked to be a TGI generation with `details`."""

        def read(answer):
            output = self._read_output(answer)
            return output if parse is None else parse(output)

        payload = {"inputs": inputs, "parameters": parameters}
        return await self._request(client, "POST", "/generate", payload, read, cached=cached, describe=describe,
                                   count_tokens=_count_tokens)

    def _read_output(self, answer) -> dict:
        if isinstance(answer, list) and len(answer) == 1:  # `POST /` answers a list of one
            answer = answer[0]
        details = answer.get("details") if isinstance(answer, dict) else None
        if (not isinstance(answer, dict) or not isinstance(answer.get("generated_text"), str)
                or not isinstance(details, dict) or not isinstance(details.get("generated_tokens"), int)):
            raise BadResponseError(
                f"{self.base_url} answered without `generated_text` and `details`: it does not speak TGI's "
                f"protocol. Got: {str(answer)[:200]}"
            )
        return answer

    # -- generation -------------------------------------------------------------------------------------------

    async def _generate_one(self, client, prompt: str, seed: int, sampling: SamplingConfig) -> Completion:
        parameters = {"max_new_tokens": sampling.max_new_tokens, "details": True, "stop": ["\n"], "seed": seed,
                      "do_sample": sampling.temperature > 0}
        if sampling.temperature > 0:  # TGI rejects temperature 0 and top_p 1: greedy is do_sample=False
            parameters["temperature"] = sampling.temperature
            if sampling.top_p < 1:
                parameters["top_p"] = sampling.top_p
        output = await self._generate_call(client, prompt, parameters, describe="a generation")
        text = output["generated_text"]
        if not text.strip():
            logger.info("The server returned an empty completion; the augmenter counts it as a failed attempt.")
        return Completion(text=text.split("\n", 1)[0], num_tokens=output["details"]["generated_tokens"])

    # -- scoring ----------------------------------------------------------------------------------------------

    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""
        if self._connected()["label_scoring"] == "top_n_tokens":
            parameters = {"max_new_tokens": 1, "details": True, "do_sample": False, "top_n_tokens": self.top_n_tokens}
            alternatives = await self._generate_call(client, prompt + context, parameters, self._read_top_tokens,
                                                     describe="label scoring (top tokens)")
            return self._top_k_scores(alternatives, continuations)
        parameters = {"max_new_tokens": 1, "details": True, "decoder_input_details": True, "do_sample": False}
        scores = await gather_in_order([
            self._generate_call(client, prompt + context + label, parameters,
                                lambda output, label=label: _label_logprob(output, label, self.base_url),
                                describe="label scoring")
            for label in continuations
        ])
        self.usage.rows_scored_exactly += 1
        return scores, 1.0

    def _read_top_tokens(self, output: dict) -> dict[str, float]:
        top = output["details"].get("top_tokens")
        if not isinstance(top, list) or not top or not isinstance(top[0], list) or not top[0]:
            raise BadResponseError(
                f"{self.base_url} answered without top_tokens (asked for top_n_tokens={self.top_n_tokens}): "
                "soft labels cannot be computed. Use label_mode='hard' or a TGI version with top_n_tokens."
            )
        alternatives = {}
        for token in top[0]:
            if not isinstance(token, dict) or not isinstance(token.get("text"), str):
                raise BadResponseError(f"{self.base_url} answered a malformed top token: {str(token)[:200]}")
            alternatives[token["text"]] = token.get("logprob")
        return alternatives


def _dict_or_empty(answer) -> dict:
    return answer if isinstance(answer, dict) else {}


def _label_logprob(output: dict, label: str, url: str) -> float:
    """The summed log-probability of the prefill tokens that spell `label` at the end of the input."""
    prefill = output["details"].get("prefill")
    if not isinstance(prefill, list):
        raise BadResponseError(f"{url} answered without a prefill list: cannot score labels exactly.")
    covered, total = "", 0.0
    for token in reversed(prefill):
        if len(covered) >= len(label):
            break
        logprob = token.get("logprob") if isinstance(token, dict) else None
        text = token.get("text") if isinstance(token, dict) else None
        if not isinstance(logprob, int | float) or math.isnan(logprob) or not isinstance(text, str):
            raise BadResponseError(
                f"{url} returned prompt tokens without log-probabilities (TGI >= 3: launch it with "
                "--enable-prefill-logprobs), or the label is the whole input: cannot score labels exactly."
            )
        covered = text + covered
        total += logprob
    if len(covered) < len(label):
        raise BadResponseError(
            f"{url} returned {len(prefill)} prompt tokens, too few to cover the label {label!r}: launch TGI "
            "with --enable-prefill-logprobs, or use label_scoring='top_n_tokens'."
        )
    if covered != label:
        logger.debug(f"The label {label!r} shares a token with the text before it ({covered!r}): approximate.")
    return total


def _count_tokens(answer) -> tuple[int, int]:
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    details = answer.get("details") if isinstance(answer, dict) else None
    if not isinstance(details, dict):
        return 0, 0
    prefill, generated = details.get("prefill"), details.get("generated_tokens")
    return (len(prefill) if isinstance(prefill, list) else 0), (generated if isinstance(generated, int) else 0)
