"""Retrieval (rank 1): files made searchable chunks, for vector stores and the ``file_search``
tool (docs/RETRIEVAL.md). Its operations' rules are ``serving/vector_stores.py`` and
``serving/retrieval.py``; its rows ``storage/vector_index.py`` and
``storage/keyword_index.py``; the embedding model it embeds with is the core's
(``backends/embedding/``: ``/v1/embeddings`` and moderation share it).
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
