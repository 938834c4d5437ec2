"""One model id on several deployments: local engines and upstream APIs behind one name.

A pool is itself a backend (the same interface), so nothing above the registry knows a model
is pooled. A request that is not a chat goes to the least-loaded healthy deployment
(requests outstanding divided by weight; ties go to the one picked least recently, so even
sequential traffic spreads evenly). A deployment that fails before anything was sent to the client (cannot
connect, 5xx, 429, a crashed or overloaded local engine) is ejected for a cooldown that
doubles with each consecutive failure, and the request goes to the next deployment; a
background probe returns an ejected deployment as soon as it answers again. When every
deployment has failed, the model's ``fallbacks`` (other model ids) are tried in order.

A chat goes to the deployment its route key hashes to (its tenant and ``prompt_cache_key``,
else its first message: prefix_routes.py) on a ring of the deployments' names, whose engine
holds its prefix from the turns before: every gateway replica computes the same one, with no
shared state. Past a bound on its requests in flight (1.25 × the mean, rounded up), or
unhealthy, the chat goes on to the next deployment of the ring (ring.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from .. import errors
from ..errors import OpenAIError
from ..json.types import Json
from .base import Answer, Backend, Capability, ModelCard, ModelKind, Relayed, Serving, StreamedBody, failover, tenant
from .capabilities import (
    CHAT, COMPLETION, EMBEDDING, FORWARDING, MANAGED, MODERATION, PROMPT_TOKENS, SPEECH, TRANSCRIPTION,
    ChatBackend, Forwarding, ManagedModels,
)
from .pool_answers import started, tracked
from .prefix_routes import route_key
from .ring import Ring
from .upstream.retry_after import retry_after

log = logging.getLogger(__name__)

# The operations a model's fallbacks answer when every deployment failed.
POOLED_OPERATIONS = ("chat_completion", "chat_completion_objects", "completion", "embedding")
CHATS = ("chat_completion", "chat_completion_objects")


@dataclass(eq=False)
class Deployment:
    """One place a pooled model runs, and what the pool knows of its health and load."""

    name: str
    backend: Backend
    weight: float = 1.0
    outstanding: int = 0
    requests: int = 0
    failures: int = 0  # consecutive
    ejections: int = 0
    ejected_until: float = 0.0
    last_picked: int = 0
    last_error: str | None = None

    def healthy(self, now: float) -> bool:
        return now >= self.ejected_until

    def load(self) -> float:
        return self.outstanding / self.weight

    def status(self, now: float) -> Json:
        return {
            "name": self.name,
            "healthy": self.healthy(now),
            "outstanding": self.outstanding,
            "requests": self.requests,
            "ejections": self.ejections,
            "weight": self.weight,
            "cooldown_seconds": round(max(0.0, self.ejected_until - now), 3),
            "last_error": self.last_error,
        }


@dataclass
class PoolPolicy:
    """How failures are treated (settings ``pool_*``)."""

    cooldown: float = 5.0
    cooldown_max: float = 120.0
    probe_interval: float = 2.0


def fails_over(status: int) -> bool:
    """Whether an answer with this status means "try another deployment": the deployment
    could not serve (5xx) or is saturated (429). A client's mistake (other 4xx) would be the
    same anywhere, so it is answered as it is."""
    return status >= 500 or status == 429


class ModelPool:
    """The deployments of one model id (see the module's docstring). It serves what any of
    them serves (``model_kind``), each operation answered by the deployments that serve it."""

    name = "pool"

    def __init__(
        self,
        model_id: str,
        deployments: list[Deployment],
        policy: PoolPolicy,
        fallbacks: Sequence[str] = (),
        resolve: Callable[[str, Capability[Any]], Any] | None = None,
    ) -> None:
        """``resolve``: a fallback model's backend for a capability, or its refusal
        (``ModelRegistry.serving``)."""
        self.model_id = model_id
        self.deployments = deployments
        self.policy = policy
        self.fallbacks = list(fallbacks)
        self._resolve = resolve
        self._picks = 0
        # By the deployments' configured names, so every replica builds the same ring.
        self._ring = Ring([d.name for d in deployments], [d.weight for d in deployments])
        self._prober: asyncio.Task | None = None

    # --- lifecycle: the deployments' backends are the registry's, started by it ------------

    async def start(self) -> None:
        if len(self.deployments) > 1:
            self._prober = asyncio.create_task(self._probe_ejected(), name=f"pool {self.model_id}")

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()

    def readiness(self) -> tuple[bool, str]:
        return True, ""

    # --- models ---------------------------------------------------------------------------

    def claims(self, model_id: str) -> bool:
        return model_id == self.model_id

    def claims_exactly(self, model_id: str) -> bool:
        return model_id == self.model_id

    def configured_ids(self) -> list[str]:
        return [self.model_id]

    def canonical_id(self, model_id: str) -> str:
        return self.model_id

    def model_kind(self, model_id: str) -> ModelKind:
        """What its deployments serve, together; what its first one says the model is."""
        kinds = [d.backend.model_kind(self.model_id) for d in self.deployments]
        return ModelKind(kinds[0].what, frozenset().union(*(kind.capabilities for kind in kinds)))

    def _serving(self, capability: Capability[Any]) -> list[Deployment]:
        return [d for d in self.deployments if capability in d.backend.model_kind(self.model_id).capabilities]

    def models(self) -> list[ModelCard]:
        for deployment in self.deployments:
            for card in deployment.backend.models():
                if card.id == self.model_id:
                    return [card]
        return [ModelCard(self.model_id, "llm-backend:pool", 0)]

    async def refresh_models(self) -> None:
        return None

    async def retrieve_model(self, model_id: str) -> Json | Relayed:
        return await self._call(None, "retrieve_model", model_id, None)

    async def probe(self) -> bool:
        return any(d.healthy(time.monotonic()) for d in self.deployments)

    # --- operations -----------------------------------------------------------------------

    def serving(self, operation_id: str | None) -> Serving:
        """Forwarded (verbatim, to a deployment that can take it) when any deployment would
        forward it; else here when any deployment answers it here, whichever is picked
        then: every field is checked as if a local engine answered."""
        ways = {d.backend.serving(operation_id) for d in self.deployments}
        for way in (Serving.FORWARDED, Serving.HERE):
            if way in ways:
                return way
        return Serving.RELAYED

    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        return await self._call(PROMPT_TOKENS, "prompt_tokens", model_id, request)

    def _chats(self) -> list[ChatBackend]:
        return [cast(ChatBackend, d.backend) for d in self._serving(CHAT)]

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        for chat in self._chats():  # whichever answers must honour it
            await chat.check_reasoning_effort(model_id, effort)

    def context_length(self, model_id: str) -> int | None:
        """The smallest of the deployments' (a request must fit whichever answers it)."""
        known = [n for chat in self._chats() if (n := chat.context_length(model_id)) is not None]
        return min(known) if known else None

    def sampling_defaults(self, model_id: str) -> Json:
        """The deployments' defaults when they agree; the one that answers is picked later."""
        each = [chat.sampling_defaults(model_id) for chat in self._chats()]
        return each[0] if all(defaults == each[0] for defaults in each) else {}

    async def chat_completion(self, model_id: str, request: Json) -> Any:
        return await self._call(CHAT, "chat_completion", model_id, request)

    async def chat_completion_objects(self, model_id: str, request: Json) -> Any:
        return await self._call(CHAT, "chat_completion_objects", model_id, request)

    async def completion(self, model_id: str, request: Json) -> Any:
        return await self._call(COMPLETION, "completion", model_id, request)

    async def transcription(self, model_id: str, request: Json) -> Any:
        return await self._call(TRANSCRIPTION, "transcription", model_id, request)

    async def speech(self, model_id: str, request: Json) -> Any:
        return await self._call(SPEECH, "speech", model_id, request)

    async def embedding(self, model_id: str, request: Json) -> Any:
        return await self._call(EMBEDDING, "embedding", model_id, request)

    async def moderation(self, model_id: str, request: Json) -> Any:
        return await self._call(MODERATION, "moderation", model_id, request)

    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | StreamedBody | None) -> Relayed:
        return await self._call(FORWARDING, "forward", self.model_id, None, (method, path, query, headers, content))

    # --- model management: each deployment's own ------------------------------------------

    def loaded_models(self) -> list[str]:
        return []

    def statuses(self) -> list[Json]:
        now = time.monotonic()
        healthy = any(d.healthy(now) for d in self.deployments)
        return [
            {
                "id": self.model_id,
                "object": "model",
                "owned_by": "llm-backend:pool",
                "state": "ready" if healthy else "error",
                "load": "eager",
                "aliases": [],
                "personas": [],
                "error": None if healthy else "every deployment is cooling down",
                "fallbacks": self.fallbacks,
                "deployments": [d.status(now) for d in self.deployments],
            }
        ]

    async def load(self, model_id: str) -> Json:
        return await self._managed().load(model_id)

    async def unload(self, model_id: str) -> Json:
        return await self._managed().unload(model_id)

    def _managed(self) -> ManagedModels:
        """The deployment whose model is loaded here (the registry asks only a pool that has one)."""
        return cast(ManagedModels, self._serving(MANAGED)[0].backend)

    # --- routing --------------------------------------------------------------------------

    def _pick(self, tried: set[Deployment], key: bytes, capability: Capability[Any] | None) -> Deployment | None:
        """The deployment to ask next, of those that serve ``capability`` (any, for None)."""
        now = time.monotonic()
        serving = self.deployments if capability is None else self._serving(capability)
        candidates = [d for d in serving if d not in tried and d.healthy(now)]
        if not candidates:
            return None
        if key:  # a chat: to the deployment holding its prefix, within the bound (ring.py)
            usable = [d in candidates for d in self.deployments]
            picked = self._ring.pick(key, [d.outstanding for d in self.deployments], usable)
            # None only when no deployment is usable: there are candidates.
            least = self.deployments[picked] if picked is not None else min(candidates, key=lambda d: (d.load(), d.last_picked))
        else:
            least = min(candidates, key=lambda d: (d.load(), d.last_picked))
        self._picks += 1
        least.last_picked = self._picks
        return least

    def _eject(self, deployment: Deployment, reason: str, wait: float | None = None) -> None:
        deployment.failures += 1
        deployment.ejections += 1
        cooldown = self.policy.cooldown * 2 ** (deployment.failures - 1)
        cooldown = min(self.policy.cooldown_max, max(cooldown, wait or 0.0))
        deployment.ejected_until = time.monotonic() + cooldown
        deployment.last_error = reason
        log.warning("model %s: deployment %s ejected for %.1f s (%s)", self.model_id, deployment.name, cooldown, reason)

    async def _call(
        self, capability: Capability[Any] | None, operation: str, model_id: str, request: Json | None, forward_args: tuple = ()
    ) -> Any:
        key = route_key(request, tenant.get()) if operation in CHATS else b""
        tried: set[Deployment] = set()
        last: OpenAIError | Relayed | None = None
        while (deployment := self._pick(tried, key, capability)) is not None:
            tried.add(deployment)
            deployment.outstanding += 1
            deployment.requests += 1
            token = failover.set(True)
            answer: Answer
            try:
                if operation == "forward":
                    answer = await cast(Forwarding, deployment.backend).forward(*forward_args)
                elif operation == "retrieve_model":
                    answer = await deployment.backend.retrieve_model(model_id)
                else:
                    answer = await started(await getattr(deployment.backend, operation)(model_id, request))
            except OpenAIError as exc:
                deployment.outstanding -= 1
                if not fails_over(exc.status):
                    raise
                self._eject(deployment, exc.code or exc.type)
                last = exc
                continue
            except BaseException:
                deployment.outstanding -= 1
                raise
            finally:
                failover.reset(token)
            if isinstance(answer, Relayed) and fails_over(answer.status):
                deployment.outstanding -= 1
                wait = retry_after({name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers})
                self._eject(deployment, f"status {answer.status}", wait)
                if last is not None and isinstance(last, Relayed) and last.close is not None:
                    await last.close()
                last = answer
                continue
            deployment.failures = 0
            return tracked(answer, deployment)
        return await self._exhausted(capability, operation, request, last)

    async def _exhausted(
        self, capability: Capability[Any] | None, operation: str, request: Json | None, last: OpenAIError | Relayed | None
    ) -> Any:
        """Every deployment failed or is cooling down: the fallbacks, else the last failure."""
        if operation in POOLED_OPERATIONS and self._resolve is not None and capability is not None and request is not None:
            for fallback in self.fallbacks:
                try:
                    backend = self._resolve(fallback, capability)  # a fallback that does not serve it: its refusal
                    answer = await getattr(backend, operation)(fallback, {**request, "model": fallback})
                    answer = await started(answer)
                except OpenAIError as exc:
                    if not fails_over(exc.status):
                        raise
                    continue
                if isinstance(answer, Relayed) and fails_over(answer.status):
                    if answer.close is not None:
                        await answer.close()
                    continue
                if isinstance(last, Relayed) and last.close is not None:
                    await last.close()
                return answer
        if isinstance(last, Relayed):
            return last
        if last is not None:
            raise last
        raise errors.no_deployment(self.model_id)

    async def _probe_ejected(self) -> None:
        """Bring ejected deployments back as soon as they answer again."""
        while True:
            await asyncio.sleep(self.policy.probe_interval)
            now = time.monotonic()
            for deployment in self.deployments:
                if deployment.healthy(now) or deployment.failures == 0:
                    continue
                try:
                    alive = await deployment.backend.probe()
                except Exception:  # a probe must never end the loop
                    alive = False
                if alive:
                    deployment.ejected_until = 0.0
                    deployment.failures = 0
                    log.info("model %s: deployment %s is back", self.model_id, deployment.name)
