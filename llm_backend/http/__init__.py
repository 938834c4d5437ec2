"""The HTTP layer (rank 3): ASGI middleware, the edge's rules, keys and limits, request bodies,
the WebSocket endpoints, forwarding to upstream APIs, rendering answers and errors, metrics
and traces. Below it nothing knows about HTTP. In the order a request meets them
(``app/chain.py`` puts them in Connexion's positions):

- ``starting.py``: what uvicorn serves first: listening within half a second, ``/health``
  answered (``/ready`` 503, the rest wait) while the app is built in a thread and its
  lifespan runs.
- ``middleware.py``: ``RequestContext`` (HTTP requests and WebSocket handshakes: the request
  id, the access log, one ``Exchange`` each), ``RecordOperation`` (the operationId for the
  metrics), ``BodyLimit`` (413; JSON bodies ``max_body_bytes``, an upload its path's limit,
  ``Family.body_limits``; a chunked body read here, bounded), ``CancelOnDisconnect`` (client
  gone: work cancelled).
- ``refused_logins.py``: refused admin logins into the audit log (``login.failed``), bounded
  per minute in budgets of their own.
- ``edge.py``: who may reach the service from a browser, one rule for HTTP and WebSocket: a
  foreign ``Host`` (loopback names, addresses, ``allowed_hosts``: DNS rebinding when keyless)
  or another site's ``Origin`` on a write or a handshake (same origin, ``cors_origins``) is
  refused 403 (docs/SECURITY.md).
- ``body_deadline.py``: a body arrives within ``body_timeout`` plus a second per
  ``body_min_rate`` bytes (slowloris: 408); ``socket_deadline.py``: the same for each
  WebSocket message, in uvicorn's protocol (closed 1008), which ``socket_denial.py`` mends: a
  handshake refused with an HTTP answer (a wrong key's 401) is no error in the log.
- ``security.py``: Connexion's bearer scheme answered by the ``Authenticator`` (``auth/``); an
  ``x-admin`` scheme (the OpenAI document's ``AdminApiKeyAuth``) needs an admin key (403).
  Nothing of a body is read before the key is known good.
- ``key_limits.py``: per-key requests and tokens per minute and tokens per day, answered as
  OpenAI answers them; counted by ``limits`` (memory, Redis) or ``storage/rate_counters.py``
  (PostgreSQL); a limits storage that is down refuses limited keys (503: fail closed).
- ``body.py``: a body read whole (the limit, the fast lane, validation) or spooled to a file
  (forwarding, chunked bodies), each replayed to the next app; a JSON body parsed by
  ``json/text.py`` (64 levels, ``max_body_values``; above 256 KiB scanned, parsed and checked
  in a thread). A multipart body is read by its own validator (``spec/forms.py``).
- ``fast_lane.py``: the short way to the controller for operations whose whole input is a
  JSON body: the same key, limits, body check and controller, without the rest of
  Connexion's pipeline (0.3-0.4 ms of CPU less per request).
- ``forwarding.py``: requests answered by an upstream verbatim, by three rules:
  ``UnservedOperations`` (no controller), ``routed_by_model`` (a body naming an upstream
  model whose backend does not serve the operation), ``found_here_or_upstream`` (an object
  not stored here); a tenant's request checked and its answer's objects recorded
  (``serving/ownership.py``). ``forwarded_usage.py``: what a forwarded operation counts (its
  model admitted against the project's limits; its images, spoken characters into the usage).
- ``project_limits.py``: a request's model resolved (``ModelRegistry.canonical``), then its
  project's per-model rate limits and spend hold (``serving/metering/meter.py``), counted by
  every replica in the database, all windows or none; for every lane that learns a model.
- ``batch_lines.py``: a batch line answered as the request it stands for: admitted as a
  request of the key that made the batch (still let in, its project active, the hard spend
  limits), then the fast lane's body check and controller, at low priority.
- ``context.py``: what serving code may ask about the request: services, caller, scope.
- ``rendering.py``, ``sse.py``: answers as responses (a JSON object; server-sent events framed
  byte for byte as OpenAI's; an upstream's relayed bytes) and ``error_response``, the one
  error renderer; ``problems.py``: Connexion's problems and Starlette's exceptions as the
  catalogue's errors, the error handlers.
- ``socket_endpoint.py``, ``socket_frames.py``: what both WebSocket endpoints share: one path's
  sockets taken (one no endpoint took: 404 ``unknown_url``, as over HTTP), the receive loop, a
  client event read within its values' bound, beside the loop when large (an 8 MB frame cost
  ``json.loads`` 1.7 s holding the GIL).
- ``responses_socket.py``: the Responses WebSocket mode (``/v1/responses``): the key checked at
  the handshake, each ``response.create`` checked by the spec and answered as a stream by
  ``serving/responses/``, each an ``Exchange``; lanes by ``stream_id``, bounded queues.
- ``realtime_socket.py``: the Realtime API (``/v1/realtime``): sessions per key and per client
  secret bounded, ``?model=`` a conversation, ``?intent=transcription`` a transcription;
  events checked by their schemas, mistakes as ``error`` events; each request of a session
  through its ``Gate`` (docs/REALTIME.md).
- ``metrics.py``, ``collectors.py``: Prometheus: what each request shows
  (``RequestObservation``), the one place an answer's tokens are learnt (then spent by the
  limits, recorded by the usage); scrape-time figures of engines, workers, upstreams and the
  database pool.
- ``tracing.py``, ``traced.py``, ``trace_export.py``: OpenTelemetry, imported only when
  ``OTEL_*`` ask: a span per request (GenAI conventions) in the client's W3C trace, its
  ``traceparent`` sent to upstreams, the engine's queue and work as child spans; the SDK in a
  thread of its own, OTLP/HTTP (docs/OPERATIONS.md).
- ``pages.py``: ``/docs`` (Swagger UI, local assets), ``/playground`` (``playground/``),
  ``/admin`` (``admin_page/``), and the script both pages load (``page_common/``).
"""
