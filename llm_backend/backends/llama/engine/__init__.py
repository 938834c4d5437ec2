"""The engine that runs inside a worker process: continuous batching on llama.cpp's low-level API.

Only this package (and ``worker.py``) imports llama_cpp; the API process never loads it.

- ``batching``: the scheduler: sequences, one ``llama_decode`` per step for all of them
- ``submission``: a request validated, tokenized and queued
- ``requests``, ``admission``, ``prefixes``: requests and their choices; which sequence a
  request gets and what its prompt starts from
- ``answers``: what a generated token does to its choice's answer
- ``drafts``, ``verification``: drafted tokens (a prediction's, the prompt's) verified in the step
- ``sampling``: per-sequence llama_sampler chains with OpenAI semantics, logprobs
- ``text``: incremental detokenization, UTF-8 and stop-string hold-back
- ``prompts``: chat templates (the GGUF's own, or a named format) and tokenization
- ``embeddings``: a separate pooled context for vectors
"""
