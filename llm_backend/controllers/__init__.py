"""Controllers (rank 4), one module per tag of the OpenAPI documents, one function per
operationId in snake_case: the tag ``Chat`` and ``createChatCompletion`` live at
``controllers/chat.py::create_chat_completion``; the validated ``body`` and the parameters
arrive by name. A tag a family names is served by that family's controller instead
(``Family.controllers``: ``families/messages/controller.py``). An operation with no function
anywhere is forwarded to the default upstream, or answers 404 ``unknown_url``
(``spec/adapter.py``).

Thin: parameters, one serving call, rendering (under 120 lines a module). None reaches the
database (``tests/unit/test_storage_convention.py``): a function in ``serving/`` makes the
store call and raises the 404.

- OpenAI's tags: ``chat.py``, ``completions.py``, ``embeddings.py``, ``audio.py``,
  ``moderations.py``, ``models.py`` (Anthropic's model list too, to an ``anthropic-version``
  header), ``responses.py``, ``conversations.py``, ``files.py``, ``uploads.py``,
  ``vector_stores.py``, ``batch.py``, ``realtime.py`` (client secrets; the sessions are
  WebSockets: ``http/realtime_socket.py``);
- the control plane's (docs/ADMIN.md): ``projects.py``, ``audit_logs.py``, ``usage.py``,
  ``spend_alerts.py``, ``data_retention.py``, ``hosted_tools.py``; the tags of people
  (``users.py``, ``groups.py``, ``roles.py``, ``invites.py``, ``certificates.py``...) answer
  an honest 404: this service has none;
- ``untagged.py``: the operations OpenAI's document leaves untagged;
- the extensions' tags (``openapi/extensions.yaml``): ``model_management.py`` (models loaded
  and unloaded at runtime, admin keys), ``system.py`` (probes), ``metrics.py`` (Prometheus).
"""
