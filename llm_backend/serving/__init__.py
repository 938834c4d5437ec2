"""API semantics that span backends (rank 2): what operations mean beyond one backend call
(storing, assembling streams, list shapes, who owns an upstream's objects), and the families
of operations served here. Controllers call it; it reaches backends through
``ModelRegistry.serving`` and stores through ``Database.run``; the layers above are known here
only by the Protocols of ``services.py``.

- ``services.py``: ``Services``, what serving code works with (settings, registry, database,
  metrics, retrieval), built once by ``app/assembly.py`` and frozen.
- ``chat_completions.py``: stored chat completions: what to keep, a stream assembled as it
  passes (local chunks or relayed bytes), their reads and message lists.
- ``conversations.py``, ``files.py``: Conversations and their items; the Files store as the
  operations use it. Each a store call in the worker thread and the 404, so that no
  controller reaches the database (``tests/unit/test_storage_convention.py``).
- ``metadata.py``, ``lists.py``, ``relayed.py``: OpenAI's ``metadata`` limits; the list
  envelope and ``limit``; an upstream's relayed bytes read as objects while they pass on
  unchanged.
- ``ownership.py``, ``claims.py``, ``request_ids.py``, ``form_fields.py``: objects an upstream
  keeps belong to the key that made them through us: the ids a forwarded request names
  checked, those its answer shows recorded (``claims``: read whole, or as parsed past a
  million values), lists filtered and paged; every body read as a stream whatever its size
  or type (JSON by ijson, a form's text fields without its files).
- ``readiness.py``: what ``/ready`` checks: models, database, the rate limits' storage.
- ``audio.py``, ``audio_input.py``, ``audio_languages.py``: the Audio operations' rules and
  answers over an audio backend; ``input_audio`` in chat, transcribed; Whisper's languages as
  ``verbose_json`` names them (docs/AUDIO.md).
- ``vector_stores.py``, ``retrieval.py``: the vector store operations' rules and objects
  (checked before anything is stored); the app's embedder (loaded on first use), searcher
  and indexer, shared with ``file_search`` (docs/RETRIEVAL.md).
- ``expiry.py``: files and vector stores past their ``expires_after`` swept (safe with
  several replicas).
- ``uploads.py``: the Uploads API: parts streamed to disk, completed (order, md5, byte count)
  into a File.
- ``usage.py``, ``usage_families.py``: OpenAI's usage operations over ``storage/usage.py``;
  one row per usage family (its usage result, its price's line items, its spend hold): a new
  family is one row.
- ``metering/``: money as it happens, for every answer whatever serves it: the price table,
  what a request can cost at most, the spend meter (hard limits held, alerts fired).
- ``batch_lines.py``: what the batch runner asks of a line, for every kind of batch
  (``Lines``, answered by ``http/batch_lines.py``; ``Refused``: how a refused batch ends).

Families of operations, a package each (its modules in its docstring):

- ``responses/``: Responses and Conversations as a translation over ``chat_completion``
  (docs/RESPONSES.md);
- ``batches/``: the Batch API on the Files store, and its runner (docs/BATCHES.md);
- ``admin/``: the control plane, OpenAI's Admin API (docs/ADMIN.md);
- ``realtime/``: Realtime sessions, voice and transcription (docs/REALTIME.md);
- ``mcp/``: the ``mcp`` tool for Responses and Realtime, over ``llm_backend/mcp/``.
"""
