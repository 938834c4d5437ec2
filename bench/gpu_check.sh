#!/usr/bin/env bash
# The GPU check, in one run on a machine lent with an NVIDIA GPU and no network (issue #52):
# build llama-cpp-python with CUDA from gpu-kit/ (`make gpu-kit`), serve the packaged model
# with every layer offloaded, and measure it against llama.cpp in-process on the same GPU.
#
#   bash bench/gpu_check.sh stash   # a call that only carries a kit folder: keep it in $STASH
#   bash bench/gpu_check.sh         # build, then each stage below; figures in $OUT
#
# Stages, each with its own time limit inside one overall deadline (GPU_CHECK_SECONDS), so a
# slow build still leaves the results of what ran, in this order (issue #57's, the deadline
# cuts the last): info, install (the kit's wheels into a venv over the machine's Python),
# build (or the kit's llama-cpp-python prebuilt for this card: bench/gpu_prebuild.sh), offload
# (bench/gpu_check.py: llama.cpp's load log, /admin/models, nvidia-smi), gpu (bench/run.py:
# ours and the ceiling at c=1 and c=8, every layer offloaded), codex (bench/codex_session.py:
# a recorded Codex session's turns on the GPU), predictions (bench/predictions.py on the GPU),
# synthetic (bench/synthetic.py: each of GPU_CHECK_SYNTHETIC_SHAPES, default llama-3.1-8b and
# qwen3-30b-a3b, written here from the kit alone, random weights in the real shapes, kept in
# $WORK for the next run, then bench/run.py on it at c = 1, 8, 32 and 64, parallel 64, a stage
# per shape: synthetic-<shape>, 240 s each), gpu_q8 (the same as gpu with the KV cache in
# q8_0), vision (bench/vision.py: synthetic://smolvlm-256m's and gemma-3-4b's images through
# the projector, ours beside llama.cpp's mtmd in-process, images a second;
# GPU_CHECK_VISION_SHAPES, _IMAGES, _IMAGE_MAX_TOKENS), cpu (the same build with no layer
# offloaded, on the machine's cores); GPU_CHECK_STAGES names those to run after the
# build (default: all). GPU_CHECK_BACKEND=cpu builds without CUDA and runs the same stages on
# the CPU (how the script is tested on a machine with no GPU; GPU_CHECK_REQUESTS, _ROUNDS,
# _MAX_TOKENS, _PREDICTION_ROWS, _SYNTHETIC_CONCURRENCY and _SYNTHETIC_SHAPES (test-tiny-moe)
# make the benches shorter there; GPU_CHECK_REUSE=1 keeps an earlier run's venv and build).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF=$ROOT/bench/gpu_check.sh
export GPU_CHECK_STASH=${GPU_CHECK_STASH:-/tmp/gpu-kit-stash}

if [ "${1:-}" = stash ]; then
    for folder in "$ROOT"/gpu-kit/*/; do
        [ -d "$folder" ] || continue
        mkdir -p "$GPU_CHECK_STASH/$(basename "$folder")" && cp -r "$folder". "$GPU_CHECK_STASH/$(basename "$folder")/"
    done
    du -sh "$GPU_CHECK_STASH"/*/ && exit 0
fi

export GPU_CHECK_BACKEND=${GPU_CHECK_BACKEND:-cuda} GPU_CHECK_PYTHON=${GPU_CHECK_PYTHON:-python3}
export GPU_CHECK_WORK=${GPU_CHECK_WORK:-/tmp/gpu-check}
export OUT=${OUT:-$ROOT/bench-results/gpu-check-$(date +%Y%m%d-%H%M%S)}
BACKEND=$GPU_CHECK_BACKEND PY=$GPU_CHECK_PYTHON WORK=$GPU_CHECK_WORK VENV=$GPU_CHECK_WORK/venv
[ -d /usr/local/cuda/bin ] && export PATH=/usr/local/cuda/bin:$PATH

# stage NAME SECONDS STEP ARGS...: this script's STEP at most SECONDS, cut to what the
# deadline leaves (20 s kept for the summary); its output in $WORK/NAME.log; its status and
# time in stages.tsv.
stage() {
    local name=$1 limit=$2 left started rc
    shift 2
    left=$(( DEADLINE - $(date +%s) - 20 ))
    (( left < limit )) && limit=$left
    if (( limit < 10 )); then
        printf '%s\t%s\t%s\n' "$name" 124 0 >> "$WORK/stages.tsv"
        echo "== $name: skipped, no time left"; return 124
    fi
    echo "== $name (at most ${limit} s)"
    started=$(date +%s%N)
    timeout --kill-after=10 "$limit" bash "$SELF" _step "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - started) / 1000000 ))e-3" >> "$WORK/stages.tsv"
    tail -n 15 "$WORK/$name.log"
    echo "== $name: rc=$rc"
    return $rc
}

kit_files() {  # every file named $1 (a glob) in gpu-kit/ and the stash, one of each name
    find "$ROOT/gpu-kit" "$GPU_CHECK_STASH" -maxdepth 3 -name "$1" -type f 2>/dev/null \
        | awk -F/ '{print $NF "\t" $0}' | sort -u -k1,1 | cut -f2
}

info() {
    "$PY" - "$BACKEND" > "$WORK/info.json" <<'EOF'
import json, os, platform, subprocess, sys
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError as exc:
        return str(exc)
print(json.dumps({
    "backend": sys.argv[1],
    "gpu": run("nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm", "--format=csv,noheader"),
    "cuda_driver": next((l for l in run("nvidia-smi").splitlines() if "CUDA Version" in l), "").strip(" |"),
    "nvcc": run("nvcc", "--version").splitlines()[-1:] ,
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
    "cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
}))
EOF
    cat "$WORK/info.json"
}

reused() {  # GPU_CHECK_REUSE=1: keep the venv and its build from an earlier run (testing the stages)
    [ -n "${GPU_CHECK_REUSE:-}" ] && "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null && echo "reused $VENV"
}

install() {
    reused && return
    rm -rf "$VENV" "$WORK/model" && mkdir -p "$WORK/model"
    local name parts
    name=$(cat "$(kit_files model.whl.name | head -1)")
    mapfile -t parts < <(kit_files 'model.whl.part-*')
    echo "model: ${#parts[@]} pieces -> $name"
    cat "${parts[@]}" > "$WORK/model/$name"
    # A venv over the machine's Python and its packages (numpy, scikit-build-core, cmake,
    # ninja, pip), ours first: the machine's python3 may itself be a venv, which
    # --system-site-packages would skip, so its site-packages are added with a .pth file; no
    # pip of its own (ensurepip may be missing there), the machine's installs into it.
    "$PY" -m venv --without-pip "$VENV"
    "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/machine.pth"
    mapfile -t wheels < <(kit_files '*.whl')
    "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --no-compile "${wheels[@]}" "$WORK/model/$name"
    "$VENV/bin/python" -m pip check || true  # said, not fatal: the machine's own packages may disagree
}

cuda_args() {
    # One architecture, the card's (9.0 -> 90): all of them would take far longer.
    local arch=${GPU_CHECK_CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')}
    echo -n "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$arch"
    # A toolkit assembled from NVIDIA's pip packages (as on the lent machines) may hold nvcc
    # and the runtime but not cuBLAS, which PyTorch's own packages bring (nvidia/cu13/lib):
    # CMake's FindCUDAToolkit does not look there, so name the libraries and their headers.
    local toolkit roots cublas cublaslt driver major
    major=$(nvcc --version | grep -o 'release [0-9]*' | cut -d' ' -f2)
    toolkit=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    if ! ls "$toolkit"/lib*/libcublas.so* "$toolkit"/targets/*/lib/libcublas.so* >/dev/null 2>&1; then
        roots="${GPU_CHECK_CUDA_LIBS:-} /usr/local /opt /usr/lib /usr/lib64"
        # shellcheck disable=SC2086
        cublas=$(find $roots -name 'libcublas.so*' 2>/dev/null | grep -v -e stubs -e '\.so\.[0-9]*\.[0-9]' | sort | grep -m1 "\.so\.$major$\|\.so$")
        if [ -n "$cublas" ]; then
            cublaslt=$(ls "$(dirname "$cublas")"/libcublasLt.so* | head -1)
            echo -n " -DCUDA_cublas_LIBRARY=$cublas -DCUDA_cublasLt_LIBRARY=$cublaslt"
            echo -n " -DCMAKE_CUDA_FLAGS=-I$(dirname "$(dirname "$cublas")")/include -DCMAKE_CXX_FLAGS=-I$(dirname "$(dirname "$cublas")")/include"
            dirname "$cublas" >> "$WORK/ld_path"  # for the loader too, should the RPATH miss it
        fi
    fi
    # The driver library, for the VMM memory pool; without it, the pool that needs none.
    if ! ls "$toolkit"/lib*/stubs/libcuda.so "$toolkit"/targets/*/lib/stubs/libcuda.so >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        driver=$(find /usr/local/nvidia /usr/lib /usr/lib64 /usr/local/cuda*/compat -name 'libcuda.so*' 2>/dev/null | sort | head -1)
        if [ -n "$driver" ]; then echo -n " -DCUDA_cuda_driver_LIBRARY=$driver"; dirname "$driver" >> "$WORK/ld_path"; else echo -n " -DGGML_CUDA_NO_VMM=ON"; fi
    fi
}

cuda_libraries() {  # MAJOR: the folders of the CUDA runtime, cuBLAS and the driver a prebuilt build links
    local lib found site
    site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    for lib in "libcudart.so.$1" "libcublas.so.$1" "libcublasLt.so.$1" libcuda.so.1; do
        found=$(find "$site/nvidia" /usr/local/nvidia /usr/local/cuda* /usr/lib /usr/lib64 /opt -name "$lib" 2>/dev/null | grep -v stubs | head -1)
        [ -n "$found" ] && dirname "$found"
    done | sort -u
}

prebuilt() {  # the kit's llama-cpp-python built with CUDA elsewhere (GPU_KIT_CUDA_ARCH, bench/gpu_prebuild.sh), if it fits this machine
    local package about arch cuda
    package=$(kit_files llama_cpp_cuda.tar.xz | head -1) about=$(kit_files llama_cpp_cuda.about | head -1)
    [ "$BACKEND" = cuda ] && [ -n "$package" ] && [ -n "$about" ] || return 1
    arch=$(sed -n 's/^arch=//p' "$about") cuda=$(sed -n 's/^cuda=//p' "$about")
    # Built for another card, or another CUDA release than this machine's: compiled here.
    [ "$arch" = "$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')" ] || { echo "prebuilt for sm_$arch: not this card"; return 1; }
    nvcc --version | grep -q "release $cuda," || { echo "prebuilt for CUDA $cuda: not this machine's"; return 1; }
    echo "prebuilt: $package (sm_$arch, CUDA $cuda)"
    tar -xJf "$package" -C "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
    cuda_libraries "${cuda%%.*}" >> "$WORK/ld_path"
    LD_LIBRARY_PATH=$(paste -sd: "$WORK/ld_path") "$VENV/bin/python" -c 'import llama_cpp, sys; sys.exit(not llama_cpp.llama_supports_gpu_offload())'
}

compile_source() {  # the kit's trimmed source, built here for this machine
    rm -f "$WORK/ld_path"
    rm -rf "$WORK/src" && mkdir -p "$WORK/src"
    tar -xJf "$(kit_files src.tar.xz | head -1)" -C "$WORK/src"
    local args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"  # mtmd built (LLAVA_BUILD, the default): the vision stage
    [ "$BACKEND" = cuda ] && args="$args $(cuda_args)"
    echo "CMAKE_ARGS=$args, $(nproc) jobs"
    CMAKE_ARGS="$args" CMAKE_GENERATOR=Ninja CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        "$VENV/bin/python" -m pip install -v --no-index --no-deps --no-build-isolation --no-compile --force-reinstall "$WORK"/src/llama_cpp_python-*/
}

build() {
    reused && return
    prebuilt || compile_source || return
    LD_LIBRARY_PATH=$(paste -sd: "$WORK/ld_path" 2>/dev/null) "$VENV/bin/python" -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "offload:", llama_cpp.llama_supports_gpu_offload())'
}

keep_engine_results() {  # NAME: bench/run.py's latest folder, as $WORK/bench-NAME
    rm -rf "$WORK/bench-$1" && mv "$(ls -d bench-results/2* | grep -v -e predictions -e codex-session | tail -1)" "$WORK/bench-$1"
}

bench_engine() {  # NAME SETTINGS_JSON ROUNDS REQUESTS: bench/run.py, ours and the ceiling at c=1 and c=8
    local name=$1
    BENCH_MODEL_SETTINGS=$2 "$VENV/bin/python" bench/run.py --skip-theirs --concurrency 1,8 --requests "${GPU_CHECK_REQUESTS:-$4}" \
        --rounds "${GPU_CHECK_ROUNDS:-$3}" --max-tokens "${GPU_CHECK_MAX_TOKENS:-128}" \
        && keep_engine_results "$name"
}

synthetic() {  # SHAPE SETTINGS_JSON: the shape's GGUF written here (or the last run's), bench/run.py on it
    BENCH_MODEL_SETTINGS=$2 "$VENV/bin/python" bench/synthetic.py "$1" --models-dir "$WORK/synthetic-models" --skip-theirs \
        --concurrency "${GPU_CHECK_SYNTHETIC_CONCURRENCY:-1,8,32,64}" --requests "${GPU_CHECK_REQUESTS:-8}" \
        --rounds "${GPU_CHECK_ROUNDS:-2}" --max-tokens "${GPU_CHECK_MAX_TOKENS:-128}" \
        && keep_engine_results "synthetic-$1"
}

codex() {  # SETTINGS_JSON: bench/codex_session.py, a recorded Codex session's turns beside llama.cpp in-process
    BENCH_MODEL_SETTINGS=$1 BENCH_THREADS=${GPU_CHECK_THREADS:-4} "$VENV/bin/python" bench/codex_session.py \
        && rm -rf "$WORK/bench-codex" && mv "$(ls -d bench-results/*-codex-session | tail -1)" "$WORK/bench-codex"
}

vision() {  # [--gpu]: bench/vision.py on each of GPU_CHECK_VISION_SHAPES, images through the projector beside llama.cpp's mtmd in-process
    local shape
    for shape in ${GPU_CHECK_VISION_SHAPES:-smolvlm-256m gemma-3-4b}; do
        "$VENV/bin/python" bench/vision.py --shape "$shape" --models-dir "$WORK/synthetic-models" --images "${GPU_CHECK_IMAGES:-8}" \
            --image-max-tokens "${GPU_CHECK_IMAGE_MAX_TOKENS:-0}" --out "$WORK/bench-vision" "$@" || return 1
    done
}

predictions() {
    BENCH_MODEL_SETTINGS=$1 "$VENV/bin/python" bench/predictions.py --rows "${GPU_CHECK_PREDICTION_ROWS:-abde}" --rounds "${GPU_CHECK_ROUNDS:-2}" \
        && rm -rf "$WORK/bench-predictions" && mv "$(ls -d bench-results/*-predictions | tail -1)" "$WORK/bench-predictions"
}

cd "$ROOT" || exit 1
export PYTHONPATH=$ROOT PYTHONUNBUFFERED=1
export OPENAI_BENCH=${OPENAI_BENCH:-$(kit_files openai_bench.py | head -1)}
if [ "${1:-}" = _step ]; then  # one stage, run by stage() under its time limit
    shift
    [ -f "$WORK/ld_path" ] && LD_LIBRARY_PATH=$(paste -sd: "$WORK/ld_path")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && export LD_LIBRARY_PATH
    "$@"
    exit $?
fi

DEADLINE=$(( $(date +%s) + ${GPU_CHECK_SECONDS:-570} ))
STAGES=${GPU_CHECK_STAGES:-offload gpu codex predictions synthetic gpu_q8 vision cpu}  # which stages after the build run
mkdir -p "$WORK" "$OUT"
: > "$WORK/stages.tsv"
rm -rf "$WORK"/bench-* "$WORK"/*.log  # an earlier run's figures are not this one's
[ -n "${GPU_CHECK_REUSE:-}" ] || rm -f "$WORK/ld_path"
if [ "$BACKEND" = cuda ]; then
    GPU='{"n_gpu_layers": "all"}' Q8='{"n_gpu_layers": "all", "type_k": "q8_0", "type_v": "q8_0"}'
    WIDE='{"n_gpu_layers": "all", "parallel": 64}'
else
    GPU='{}' Q8='{"type_k": "q8_0", "type_v": "q8_0"}' WIDE='{"parallel": 64}'
fi

stage info 30 info
stage install 120 install
wants() { [[ " $STAGES " == *" $1 "* ]]; }
stage build "${GPU_CHECK_BUILD_SECONDS:-400}" build && {
    # In the order issue #57 asks for them, so that the deadline cuts the least wanted.
    wants offload && stage offload 120 "$VENV/bin/python" bench/gpu_check.py offload "$OUT"
    wants gpu && stage gpu 100 bench_engine gpu "$GPU" 3 16
    wants codex && stage codex 240 codex "$GPU"
    wants predictions && stage predictions 120 predictions "$GPU"
    if wants synthetic; then
        for shape in ${GPU_CHECK_SYNTHETIC_SHAPES:-llama-3.1-8b qwen3-30b-a3b}; do
            stage "synthetic-$shape" "${GPU_CHECK_SYNTHETIC_SECONDS:-240}" synthetic "$shape" "$WIDE"
        done
    fi
    wants gpu_q8 && stage gpu_q8 90 bench_engine gpu_q8 "$Q8" 3 16
    wants vision && stage vision 180 vision $([ "$BACKEND" = cuda ] && echo --gpu)
    [ "$BACKEND" = cuda ] && wants cpu && stage cpu 120 bench_engine cpu '{"n_gpu_layers": 0}' 2 8
}
python=$VENV/bin/python
[ -x "$python" ] || python=$PY
"$python" bench/gpu_check.py summary "$OUT" "$WORK" > "$WORK/summary.log" 2>&1
tail -n 80 "$WORK/summary.log"
tail -n 300 "$WORK/build.log" > "$OUT/build.log" 2>/dev/null
for log in "$WORK"/*.log; do echo "=== $(basename "$log")"; tail -n 60 "$log"; done > "$OUT/stages.log"
# Every stage's own files whole (each bench's cells and report, the logs), for bench/results/.
(cd "$WORK" && tar -czf "$OUT/raw.tar.gz" --exclude='*.gguf' --exclude=data stages.tsv ./*.json ./*.log bench-* 2>/dev/null)
ls -la "$OUT"
