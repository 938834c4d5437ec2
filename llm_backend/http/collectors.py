"""Metrics read when Prometheus scrapes (http/metrics.py registers them): what the local
models, their engine workers, the upstreams and the database pool report of themselves.

Nothing here runs on a request's path. The backends know nothing of Prometheus: they keep
plain counters and the engine workers' last ``stats`` events (backends/llama/worker.py,
sent at most once a second while busy, kept by ``WorkerProcess``); a scrape turns them into
metric families. An engine worker's totals start again from zero when it restarts: they are
exposed as counters (Prometheus' ``rate`` takes a reset for what it is).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..backends.llama.backend import LlamaBackend
from ..backends.llama.local_model import LocalModel
from ..backends.registry import ModelRegistry
from ..storage import Database

# Engine worker figures: (stats field, metric name, help, counter?)
WORKER_FIGURES = (
    ("decoding", "llm_backend_engine_sequences_decoding", "Sequences the engine worker is decoding.", False),
    ("waiting", "llm_backend_engine_requests_waiting", "Requests waiting inside the engine worker for a sequence.", False),
    ("running", "llm_backend_engine_requests_running", "Requests the engine worker is decoding (prompt or answer).", False),
    ("tokens_per_second", "llm_backend_engine_tokens_per_second",
     "Tokens generated per second of decoding, over the worker's last report (about a second).", False),
    ("kv_used", "llm_backend_engine_kv_cells_used", "KV cache cells holding tokens (kept prompts included).", False),
    ("kv_size", "llm_backend_engine_kv_cells", "KV cache cells of the engine worker.", False),
    ("requests", "llm_backend_engine_requests", "Generation requests the engine worker completed.", True),
    ("prompt_tokens", "llm_backend_engine_prompt_tokens", "Prompt tokens of completed requests.", True),
    ("reused_tokens", "llm_backend_engine_prompt_tokens_reused",
     "Prompt tokens found in the KV cache (the prompt cache), not decoded again.", True),
    ("cache_hits", "llm_backend_engine_prompt_cache_hits", "Requests that found part of their prompt in the KV cache.", True),
    ("copied_tokens", "llm_backend_engine_prompt_tokens_copied",
     "Prompt tokens copied from another sequence's KV (a shared beginning computed once).", True),
    ("restored_tokens", "llm_backend_engine_prompt_tokens_restored",
     "Prompt tokens restored from the host-memory prefix cache.", True),
    ("host_cache_bytes", "llm_backend_engine_prefix_cache_bytes", "Bytes of KV saved in the host-memory prefix cache.", False),
    ("host_cache_entries", "llm_backend_engine_prefix_cache_entries", "Prefixes saved in the host-memory prefix cache.", False),
    ("disk_tokens", "llm_backend_engine_prompt_tokens_from_disk",
     "Prompt tokens restored from prefixes kept on disk (a new session, a restart, another replica).", True),
    ("disk_prefix_bytes", "llm_backend_engine_prefix_disk_bytes", "Bytes of prefixes on disk for this model (every replica's).", False),
    ("generated_tokens", "llm_backend_engine_generated_tokens", "Tokens the engine worker generated.", True),
    ("drafted_tokens", "llm_backend_engine_draft_tokens",
     "Drafted tokens (a prediction's, or the prompt's) verified in decoding steps.", True),
    ("accepted_drafts", "llm_backend_engine_draft_tokens_accepted", "Drafted tokens the answers took.", True),
    ("pool_stops", "llm_backend_engine_pool_stops",
     "Answers without max_tokens ended with length past their share of the KV pool, for want of cells.", True),
    ("decode_seconds", "llm_backend_engine_decode_seconds", "Time the engine worker spent in decoding steps.", True),
)


def kv_cells(worker) -> tuple[int, int] | None:
    """A worker's KV cells serving requests and all its cells (None while it is not up).
    Before its first report it has decoded nothing: none in use."""
    active, size = worker.stats.get("kv_active"), worker.stats.get("kv_size")
    if isinstance(active, int) and isinstance(size, int) and size > 0:
        return active, size
    pool = worker.hello.get("kv_size")  # the cells its sequences share (the engine's pool)
    if worker.ready.is_set() and isinstance(pool, int) and pool > 0:
        return 0, pool
    return None


def _local_models(models: ModelRegistry) -> Iterator[tuple[LlamaBackend, str, LocalModel]]:
    for backend in models.local:
        if isinstance(backend, LlamaBackend):
            for model_id, model in backend.local_models.items():
                yield backend, model_id, model


class EngineCollector(Collector):
    """Figures of the local models and of each of their engine workers."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("llm_backend_queue_waiting", "Requests waiting for a sequence.", labels=["model"])
        in_use = GaugeMetricFamily("llm_backend_sequences_in_use", "Sequences decoding now.", labels=["model"])
        capacity = GaugeMetricFamily(
            "llm_backend_sequences", "Sequences the model's workers can decode together.", labels=["model"]
        )
        rejected = CounterMetricFamily(
            "llm_backend_queue_rejections", "Requests refused (429) because the queue was full or too slow.", labels=["model"]
        )
        loaded = GaugeMetricFamily("llm_backend_model_loaded", "1 while the model is loaded and ready.", labels=["model"])
        loads = CounterMetricFamily("llm_backend_model_loads", "Completed loads of the model.", labels=["model"])
        restarts = CounterMetricFamily(
            "llm_backend_engine_restarts", "Engine workers restarted after a crash.", labels=["model"]
        )
        worker_restarts = CounterMetricFamily(
            "llm_backend_engine_worker_restarts", "Restarts of this engine worker after a crash.", labels=["model", "worker"]
        )
        # The autoscalers' gauges (docs/SCALING.md): each engine worker's, and the model's
        # over its workers (what a pod serving one model shows an endpoint picker).
        running = GaugeMetricFamily(
            "llm_backend_requests_running", "Requests the model's engine workers are decoding.", labels=["model"]
        )
        kv_ratio = GaugeMetricFamily(
            "llm_backend_kv_cache_usage_ratio",
            "Share of the model's KV cache cells serving requests, 0 to 1 (kept prompts left out).", labels=["model"]
        )
        worker_kv_ratio = GaugeMetricFamily(
            "llm_backend_engine_kv_cache_usage_ratio",
            "Share of the engine worker's KV cache cells serving requests, 0 to 1 (kept prompts left out).",
            labels=["model", "worker"],
        )
        figures = {
            field: (CounterMetricFamily if counter else GaugeMetricFamily)(name, text, labels=["model", "worker"])
            for field, name, text, counter in WORKER_FIGURES
        }
        for backend, model_id, model in _local_models(self.models):
            lifecycle = backend.lifecycles[model_id]
            waiting.add_metric([model_id], model.waiting())
            in_use.add_metric([model_id], model.sequences_in_use())
            capacity.add_metric([model_id], model.config.parallel * len(model.workers))
            rejected.add_metric([model_id], model.rejected)
            loaded.add_metric([model_id], 1 if lifecycle.ready and model.ready() else 0)
            loads.add_metric([model_id], lifecycle.loads)
            restarts.add_metric([model_id], model.restarts())
            running.add_metric([model_id], sum(worker.stats.get("running", 0) for worker in model.workers))
            cells = [pair for pair in map(kv_cells, model.workers) if pair is not None]
            if cells:
                kv_ratio.add_metric([model_id], min(1.0, sum(a for a, _ in cells) / sum(size for _, size in cells)))
            for index, worker in enumerate(model.workers):
                labels = [model_id, str(index)]
                worker_restarts.add_metric(labels, worker.restarts_total)
                pair = kv_cells(worker)
                if pair is not None:
                    worker_kv_ratio.add_metric(labels, min(1.0, pair[0] / pair[1]))
                for field, family in figures.items():
                    value = worker.stats.get(field)
                    if isinstance(value, (int, float)):
                        family.add_metric(labels, value)
        yield from (waiting, in_use, capacity, rejected, loaded, loads, restarts, worker_restarts, running, kv_ratio, worker_kv_ratio)
        yield from figures.values()


class UpstreamCollector(Collector):
    """Requests, retries and errors of each upstream API (backends/upstream/http_client.py)."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "llm_backend_upstream_requests", "Requests sent to the upstream (retries not counted).", labels=["upstream"]
        )
        retries = CounterMetricFamily("llm_backend_upstream_retries", "Requests sent again after a failure.", labels=["upstream"])
        failures = CounterMetricFamily(
            "llm_backend_upstream_errors",
            "Requests given up on: timeout, unreachable, compressed (an answer compressed though none was "
            "asked for, refused), or the status of the retryable answer passed on.",
            labels=["upstream", "reason"],
        )
        for upstream in self.models.upstreams:
            client = getattr(upstream, "client", None)
            if client is None:
                continue
            requests.add_metric([upstream.name], client.requests)
            retries.add_metric([upstream.name], client.retries)
            for reason, count in sorted(client.errors.items()):
                failures.add_metric([upstream.name, reason], count)
        yield from (requests, retries, failures)


class PoolCollector(Collector):
    """Each deployment of a pooled model (backends/pool.py): health, load, requests, failures."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "deployment"]
        healthy = GaugeMetricFamily(
            "llm_backend_pool_deployment_healthy", "1 while the deployment takes requests, 0 while ejected.", labels=labels
        )
        outstanding = GaugeMetricFamily(
            "llm_backend_pool_deployment_outstanding", "Requests in flight on the deployment.", labels=labels
        )
        requests = CounterMetricFamily("llm_backend_pool_deployment_requests", "Requests sent to the deployment.", labels=labels)
        ejections = CounterMetricFamily(
            "llm_backend_pool_deployment_ejections", "Times the deployment failed and was ejected.", labels=labels
        )
        for model_id, pool in self.models.pools.items():
            for status in pool.statuses()[0]["deployments"]:
                key = [model_id, status["name"]]
                healthy.add_metric(key, 1 if status["healthy"] else 0)
                outstanding.add_metric(key, status["outstanding"])
                requests.add_metric(key, status["requests"])
                ejections.add_metric(key, status["ejections"])
        yield from (healthy, outstanding, requests, ejections)


class DatabasePoolCollector(Collector):
    """The database's connection pool (SQLAlchemy's QueuePool)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        checked_out, size = self.database.pool_status()
        yield GaugeMetricFamily(
            "llm_backend_db_connections_in_use", "Database connections checked out of the pool.", value=checked_out
        )
        yield GaugeMetricFamily("llm_backend_db_pool_size", "Connections the pool keeps open.", value=size)
