"""`ServedBackend`: what the OpenAI-compatible and TGI backends share. The protocol of each lives in its own
module (`openai.py`, `tgi.py`); this one holds the settings, the API key, pickling, the requests (through one
`RequestRunner` and one HTTP transport) and the order of work: one generation request per prompt, then one
label-scoring request per row that parsed."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ...validation import check_arguments
from ..base import Backend, Completion, SamplingConfig, ScoringContext
from .auth import Credentials, check_base_url
from .client import JSONHTTPClient
from .config import ServedConfig
from .errors import RequestFailedError
from .runner import RequestRunner, cache_key, gather_in_order
from .usage import UsageReport

T = TypeVar("T")


class ServedBackend(Backend):
    """The shared part of the served backends: a `RequestRunner` (bounded concurrency, retries, limits, the
    request cache), a server probed once, one request per prompt (each with its own seed, so the rows do not
    depend on the concurrency) and one label-scoring request per row that parsed.

    The API key is sent as a bearer token and never leaves the process: not in `identity`, `repr`, an error
    message, a log line or the request cache, and a pickled backend (what `Dataset.map(num_proc=...)` ships to
    its workers) carries `api_key_env`, the name of the environment variable each worker reads the key from.

    Subclasses set `kind` and `label_scoring_modes`, implement the protocol (`_probe`, `_generate_one`,
    `_score_one`) and extend `_settings` with their own constructor arguments.
    """

    kind: str
    # How the protocol can score labels; "auto" (probe the server once) comes first and is the default.
    label_scoring_modes: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        label_scoring: str = "auto",
        config: ServedConfig | None = None,
    ):
        check_arguments(ServedBackend.__init__, {"base_url": base_url, "model": model, "api_key": api_key,
                                                 "api_key_env": api_key_env, "config": config},
                        owner=type(self).__name__)
        if label_scoring not in self.label_scoring_modes:
            raise ValueError(f"label_scoring must be one of {self.label_scoring_modes}, got {label_scoring!r}.")
        if config is not None and not isinstance(config, ServedConfig):
            raise TypeError(f"config must be a ServedConfig, got {type(config).__name__}.")
        self.base_url = check_base_url(base_url)
        self.model = model
        self.label_scoring = label_scoring
        self.credentials = Credentials(api_key, api_key_env)
        self.config = config or ServedConfig()
        self.runner = RequestRunner(self.config, self.base_url, self.credentials)
        self._server: dict | None = None
        self._token_memo: dict[Any, list[int]] = {}

    # -- settings, pickling, provenance ---------------------------------------------------------------------

    @property
    def api_key_env(self) -> str | None:
        return self.credentials.api_key_env

    def _settings(self) -> dict:
        """The constructor's keyword arguments, less the key itself: what a pickled copy is rebuilt from."""
        return {"model": self.model, "api_key_env": self.api_key_env, "label_scoring": self.label_scoring,
                "config": self.config}

    def __getstate__(self):
        # Never the key itself: a copy given api_key= raises a clear error when used (see Credentials).
        return {"base_url": self.base_url, "settings": self._settings(),
                "key_left_behind": self.credentials.holds_key or self.credentials.left_behind}

    def __setstate__(self, state):
        self.__init__(state["base_url"], **state["settings"])
        self.credentials.left_behind = state["key_left_behind"]

    def __repr__(self):
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"

    def _identity_extra(self) -> dict:
        """What else, besides the model and the scoring mode, decides this backend's outputs."""
        return {}

    @property
    def identity(self) -> dict:
        server = self._connected()
        return {"backend": self.kind, "model": self.model, "label_scoring": server["label_scoring"],
                **self._identity_extra()}

    @classmethod
    def _settings_from_identity(cls, identity: dict) -> dict:
        return {"model": identity.get("model"), "label_scoring": identity.get("label_scoring", "auto")}

    @classmethod
    def from_identity(cls, identity: dict, *, base_url: str | None = None, **kwargs) -> ServedBackend:
        """The backend an `identity` (a provenance file's `backend` entry) describes, on the server at `base_url`.

        The identity records no URL (the same model served elsewhere gives the same rows) and no key: pass both.

        Args:
            identity (`dict`): what `backend.identity` returned.
            base_url (`str`): the server.
            kwargs: more constructor arguments (`api_key_env=`, `config=`).

        Example:

        >>> backend = OpenAIBackend.from_identity(config["augmenter"]["backend"], base_url="http://127.0.0.1:8000/v1",
        ...                                       api_key_env="OPENAI_API_KEY")
        """
        if not isinstance(identity, dict) or identity.get("backend") != cls.kind:
            found = identity.get("backend") if isinstance(identity, dict) else type(identity).__name__
            raise ValueError(f"{cls.__name__} rebuilds identities of backend {cls.kind!r}, got {found!r}.")
        if base_url is None:
            raise ValueError(
                f"A {cls.kind!r} identity records no URL (the same model served elsewhere gives the same rows): "
                f"pass base_url=<the server that serves {identity.get('model')!r}>."
            )
        return cls(base_url, **{**cls._settings_from_identity(identity), **kwargs})

    # -- the server -----------------------------------------------------------------------------------------

    @property
    def usage(self) -> UsageReport:
        """Requests, cache hits, tokens, failures, retries and seconds so far."""
        return self.runner.usage

    def connect(self) -> dict:
        """Connect (once): check what the server serves and settle the scoring mode. Runs on first use anyway;
        call it to fail early on a wrong URL, model name, key or server setting."""
        return dict(self._connected())

    def _connected(self) -> dict:
        if self._server is None:
            self._server = self.runner.run(self._probe)
        return self._server

    def _client(self) -> JSONHTTPClient:
        """The HTTP client for the requests of one batch (an async context manager)."""
        return JSONHTTPClient(self.base_url, self.config.timeout, self.credentials.headers())

    async def _request(
        self,
        client: JSONHTTPClient,
        method: str,
        route: str,
        payload: dict | None,
        parse: Callable[[Any], T],
        *,
        describe: str,
        cached: bool = True,
        count_tokens: Callable[[Any], tuple[int, int]] | None = None,
        abort_batch: bool = True,
    ) -> T:
        """`parse(answer)` for one request, retried as the config says; cached (once `parse` accepted it) unless
        `cached` is False (probes, whose answers describe the server of the moment)."""
        key = cache_key(self.kind, self.model, route, payload) if cached else None

        async def send():
            try:
                return await client.request(method, route, payload, describe=describe)
            except RequestFailedError as error:
                raise self._explain_rejection(error, payload or {}) from None

        return await self.runner.request(key, send, parse, count_tokens, describe, abort_batch)

    def _explain_rejection(self, error: RequestFailedError, payload: dict) -> Exception:
        """A clearer error for a rejection the user can fix with a server flag (subclasses), else `error`."""
        return error

    def _top_k_scores(self, alternatives: dict[str, float], continuations: list[str]) -> tuple[list[float], float]:
        """(label log-probabilities, label mass) from the top-k alternatives at the label position, counted in
        `usage`."""
        from ...labels import top_k_label_logprobs

        logprobs, mass, missing = top_k_label_logprobs(alternatives, continuations)
        self.usage.record_top_k(mass, missing)
        return logprobs, mass

    def _remember_tokens(self, key, ids: list[int]) -> list[int]:
        if len(self._token_memo) > 4096:  # prompts are seen once or twice: keep the memo small
            self._token_memo.clear()
        self._token_memo[key] = ids
        return ids

    # -- the protocol -------------------------------------------------------------------------------------

    @abstractmethod
    async def _probe(self) -> dict:
        """What the server serves and how labels can be scored on it (`label_scoring`, `max_context`,
        `tokenize`, ...)."""

    @abstractmethod
    async def _generate_one(self, client, prompt: str, seed: int, sampling: SamplingConfig) -> Completion:
        """One sampled line after `prompt`."""

    @abstractmethod
    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""

    # -- the Backend interface --------------------------------------------------------------------------------

    def generate(self, prompts: list[str], seeds: list[int], sampling: SamplingConfig) -> list[Completion]:
        return self.generate_and_score(prompts, seeds, sampling, lambda text: None, None)

    def generate_and_score_once(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
    ) -> list[Completion]:
        # Each row scores as soon as its generation is back. Rows to try again wait for the round's end: the
        # augmenter's next prompt may need the server's tokenizer, which cannot be asked from inside this loop.
        self._connected()

        async def row(client, prompt, seed):
            completion = await self._generate_one(client, prompt, seed, sampling)
            if continuations is not None:
                context = scoring_context(completion.text)
                if context is not None:
                    completion.label_logprobs, completion.label_mass = await self._score_one(
                        client, prompt, context, continuations
                    )
            return completion

        async def run():
            async with self._client() as client:
                rows = [row(client, p, s) for p, s in zip(prompts, seeds, strict=True)]
                return await gather_in_order(rows, self.config.progress)

        return self.runner.run(run)

    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        return [logprobs for logprobs, _ in self.score_with_mass(prompts, contexts, continuations)]

    def score_with_mass(
        self, prompts: list[str], contexts: list[str], continuations: list[str]
    ) -> list[tuple[list[float], float]]:
        if len(prompts) != len(contexts):
            raise ValueError(f"Got {len(prompts)} prompts but {len(contexts)} contexts: give one context per prompt.")
        self._connected()

        async def run():
            async with self._client() as client:
                rows = [self._score_one(client, p, c, continuations) for p, c in zip(prompts, contexts, strict=True)]
                return await gather_in_order(rows, self.config.progress)

        return [(logprobs, mass) for logprobs, mass in self.runner.run(run)]
