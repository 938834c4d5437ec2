"""Backends (rank 1): what answers a model's requests, behind interfaces that say what each
serves. Nothing here knows HTTP; controllers and serving code reach a backend only through
the registry.

- ``base.py``: what every backend is (``Backend``: routing by ``claims``, its models and what
  each is, ``model_kind``; admin statuses), and ``Serving``, the one predicate of how an
  operation is answered for its models: ``HERE``, ``RELAYED`` or ``FORWARDED``.
- ``capabilities.py``: a ``Protocol`` per kind of operation (``CHAT``, ``COMPLETION``,
  ``EMBEDDING``, ``TRANSCRIPTION``, ``SPEECH``, ``MODERATION``, ``FORWARDING``, ``MANAGED``...):
  a backend implements only its own; ``ModelRegistry.serving(model_id, capability)`` returns
  the backend typed by it, or the one refusal (404 ``model_not_found``, 400
  ``model_not_supported``).
- ``registry.py``: model id to backend: local ids and aliases, then upstream ids and
  patterns, then the catch-all upstream; the model an id names (``canonical``: what limits
  and prices key on); whether a request is served here (``served_here``).
- ``pool.py``, ``pool_answers.py``: one model id on several deployments (local engines,
  upstreams): chats by their route key on the ring, other requests least-loaded; failover
  before anything is sent (a local stream's first chunk awaited), cooldowns, fallbacks
  (docs/SCALING.md).
- ``ring.py``: consistent hashing with bounded loads: a route key's engine on a ring of the
  engines' names (blake2b), the same on every replica with no shared state; an engine past
  1.25 times the mean in flight passes the request on; one leaving or joining moves only its
  keys. ``prefix_routes.py``: a chat's route key, from the request alone: its tenant and
  ``prompt_cache_key``, else its first message (the prefix cache).
- ``fair_line.py``: the lines in front of shared engines (a local model's, the audio
  engines'): tenants served in turn; a full line makes room for a tenant holding less of it.
- ``first_use.py``: the common half of backends whose models load on first use in the API
  process (the embedder, the moderation classifier): fixed ids, no lifecycle.
- ``presets.py``, ``lifecycle.py``, ``events.py``: what a public model id means (persona,
  defaults); loading and unloading one model (unloaded when idle past its ``keep_alive``);
  status events for the admin stream.

Packages: ``llama/`` (local GGUF models, in worker processes), ``upstream/``
(OpenAI-compatible APIs, relayed), ``audio/`` (local speech to text and text to speech),
``embedding/`` (the local embedding model, shared by ``/v1/embeddings``, file search and
moderation). Other backends live with what they serve: ``moderation/model.py``, a family's
``backend.py`` (``families/messages/backend.py``: an Anthropic upstream).
"""
