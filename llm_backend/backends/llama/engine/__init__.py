"""The engine that runs inside a worker process: continuous batching on llama.cpp's low-level API.

Only this package (and ``worker.py``) imports llama_cpp; the API process never loads it.

- ``batching``: the ``Engine``: its parts composed, and the order of a step (plain, or
  overlapped with the device's next decode)
- ``submission``: a request validated, tokenized, its output room fitted
- ``requests``, ``admission``, ``prefixes``: requests and their choices; which sequence a
  request gets, what its prompt starts from (other sequences, host memory; per tenant,
  exact), room in the KV pool
- ``prefix_disk``: the prefix every session of a client shares, on disk for new sessions,
  restarts and replicas (files checked by size and digest, bounded, read as a hostile folder)
- ``prompt_tokens``: a long prompt's tokens reused from the tenant's recent prompt up to a
  special token: an agent's turn tokenizes its new text only
- ``scheduler``: what a step runs: the generating choices in order, prompt chunks by size
- ``executor``: the batch, ``llama_decode``, sampling and what it decides at once
- ``answers``: the output stage: a token's text, stop strings, the events, the metering
- ``exactness``: how many rows of a sequence this device computes bit for bit as one at a
  time: the most a draft may span under ``prediction_exact``
- ``llama_params``: a model's settings as llama.cpp's, and the defaults its device decides
- ``drafts``, ``verification``: drafted tokens (a prediction's, the prompt's) verified in the step
- ``thinking``: a reasoning answer's thinking budget: the closing text put in past it
- ``sampling``: per-sequence llama_sampler chains with OpenAI semantics, logprobs; greedy
  rows of a step in one argmax
- ``text``: incremental detokenization, UTF-8 and stop-string hold-back (stop strings: one
  Aho-Corasick automaton, a token's cost independent of their number)
- ``prompts``: chat templates (the GGUF's own, or a named format) and tokenization
- ``special_texts``: a client's text read as text: a control token's text defused, the prompt
  cut only at the template's markup, each piece tokenized as plain text
- ``media``: a vision model's projector (mtmd): images framed in the prompt, placeholder
  ids per tenant and image, encoded once beside the steps, fed as embedding rows
- ``embeddings``: a separate pooled context for vectors
- ``errors``: a request's failures, sent to the API process as data
"""
