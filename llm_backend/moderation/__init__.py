"""Moderation served here (rank 1): ``/v1/moderations`` for OpenAI's moderation model ids,
judged by a classifier on the retrieval model's sentence embeddings, or by a guard model
(docs/MODERATION.md).

- ``model.py``: the backend, registered beside the local models, so that the registry routes
  it and ``/v1/models``, batches and the usage see it as any model; a text judged in pieces,
  each category's worst piece answering.
- ``categories.py``: OpenAI's 13 categories, what implies what, the ids served.
- ``classifier.py``: a logistic regression per category over all-MiniLM-L6-v2 embeddings
  (``backends/embedding/embedder.py``), fitted on first use to ``examples.yaml``.
- ``guard.py``: a Llama Guard 3 or 4 GGUF (``moderation_guard``) judging instead: its verdict
  read, its hazard codes mapped to OpenAI's categories.
"""
