"""The Responses and Conversations APIs, served here as a translation over ``chat_completion``
(docs/RESPONSES.md): for local models, and for an upstream's with ``responses: local``.

- ``request.py``: a Responses request as a chat request: what is honoured, accepted, refused;
  ``items.py``: input items normalised as they are stored and listed, and as chat messages.
- ``service.py``: one turn: history (walked back by ``previous_response_id``), the backend
  call, storing, in that order; ``stored.py``: stored responses' reads for the controller
  (retrieve, replay, cancel, delete, input items).
- ``objects.py``: the Response object; ``events.py``: chat chunks as the streaming protocol;
  ``streamed_text.py``: a message's and a reasoning item's events as the model writes them.
- ``background.py``: background responses (queued at once, an asyncio task that outlives the
  request, polled, cancelled; the start-up sweep); ``memory.py``: a WebSocket connection's
  last ``store: false`` response.
- ``compaction.py`` (``/v1/responses/compact``) and ``summary.py`` (the compaction item, also
  a Response's answer to a ``compaction_trigger``), ``warmup.py`` (the WebSocket mode's
  ``generate: false``), ``made.py`` (the events of a response made whole, those two's),
  ``context_window.py`` (``truncation``,
  ``context_management``), ``reasoning.py`` (reasoning items, their ``encrypted_content``
  sealed and opened, bound to the project).
- tools: ``file_search.py`` (the vector stores searched, then the answer), ``client_tools.py``
  (namespace, custom, shell, local_shell and apply_patch tools as functions, and their call
  items), ``cloud_tools.py`` (the hosted tools only OpenAI's cloud runs: dropped and named in a
  header, or refused), ``tool_regex.py`` (a custom tool's regex as a pattern the engine
  compiles); the ``mcp`` tool is ``serving/mcp/``'s.
"""
