"""The OpenAPI documents (rank 4): loaded fast, adapted for Connexion, and the one body check
every lane calls. The spec is the source of truth for the wire format: no request model is
written by hand.

- ``loader.py``: the YAML parsed once (over a second for OpenAI's 3 MB); later starts load a
  pickle keyed by the file's sha256 (~40 ms).
- ``adapter.py``: the pristine 3.1 document adapted for Connexion 3, in memory: the resolver
  (operationId to controller, or the not-served fallback: 404 ``unknown_url``), the trimmed
  document, the fast lane's routes, the admin schemes marked ``x-admin``.
- ``validation.py``, ``schema_dialect.py``: request bodies: the one check every lane calls,
  errors in OpenAI's words naming the parameter; the document's schemas read as 2020-12
  (3.0's ``nullable``, discriminated ``oneOf``), compiled once per operation (jsonschema-rs
  the verdict, jsonschema the explanation), long values checked in slices and shown short.
- ``leniency.py``: the one table of what OpenAI's API accepts beyond its document (fields it
  defaults): optional in the served document, OpenAI's default set for local models
  (docs/CONFORMANCE.md).
- ``unknown_fields.py``: fields a body's operation does not define: refused when served here
  (``ModelRegistry.served_here``) in OpenAI's words (llama.cpp's sampling extensions
  excepted), relayed for upstream models; one rule, for the fast lane and Connexion alike.
- ``parameters.py``, ``forms.py``: query and path parameters parsed without ever raising and
  validated in 2020-12; multipart bodies, spooled as they are parsed, with the SDKs'
  bracketed object fields.
- ``batch_endpoints.py``: the endpoints a batch may name, each with its controller, body
  check and required parameters.
- ``client_events.py``, ``realtime_events.py``: the WebSocket modes' client events, checked by
  the documents' own schemas.
- ``docs.py``: the served operations' view of the documents, for ``/docs``.
"""
