#!/usr/bin/env bash
# llama-cpp-python built with CUDA here, on a machine with no GPU, for `make gpu-kit` with
# GPU_KIT_CUDA_ARCH set (e.g. 90 for an H100 or H200): the GPU check then installs this build
# instead of compiling for minutes of the lent machine's time (253-285 s of the 15 there were
# on the H200 and the H100; here, on 2 cores, 21 minutes of nobody's device time).
#
#   bash bench/gpu_prebuild.sh SRC_DIR OUT_DIR
#
# SRC_DIR is the trimmed llama-cpp-python source (bench/gpu_kit.sh), OUT_DIR gets the built
# package as llama_cpp_cuda.tar.xz and llama_cpp_cuda.about (the architecture and CUDA release
# it was built for, which gpu_check.sh compares with the card and the machine's toolkit).
#
# The compiler is NVIDIA's own from PyPI (nvcc, its front end, NVVM, the runtime's and
# cuBLAS's headers and libraries, CCCL), GPU_KIT_CUDA's release (13.0: what the lent
# machines' driver and toolkit are). The CUDA driver library (libcuda.so.1) comes only with a
# driver; a build links against a stub of it, as the toolkit's own lib64/stubs is: every
# function cuda.h declares, returning 0, with the driver's soname, so the real one is
# loaded where the wheel runs.
set -euo pipefail

SRC=$1 DEST=$2
ARCH=${GPU_KIT_CUDA_ARCH:?the compute capability of the card without the dot, e.g. 90}
CUDA=${GPU_KIT_CUDA:-13.0}
PY=${PYTHON:-python3}
CMAKE_CPU="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"  # as gpu_check.sh builds

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "CUDA $CUDA's compiler, runtime and cuBLAS from PyPI"
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 -d "$work/whl" \
    "nvidia-cuda-nvcc==$CUDA.*" "nvidia-cuda-crt==$CUDA.*" "nvidia-nvvm==$CUDA.*" \
    "nvidia-cuda-runtime==$CUDA.*" "nvidia-cublas==$CUDA.*" "nvidia-cuda-cccl==$CUDA.*"
$PY -m pip install --quiet --no-deps --no-compile --target "$work/site" "$work"/whl/*.whl
toolkit=$(echo "$work"/site/nvidia/cu*/)
toolkit=${toolkit%/}
major=${CUDA%%.*}
# The layout CMake and nvcc look for: lib64, unversioned names to link, the driver's stub.
ln -s lib "$toolkit/lib64"
for lib in cudart cublas cublasLt; do ln -s "lib$lib.so.$major" "$toolkit/lib/lib$lib.so"; done
mkdir -p "$toolkit/lib/stubs"
grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$toolkit/include/cuda.h" | sort -u \
    | awk '{print "int " $1 "(void) { return 0; }"}' > "$work/libcuda.c"
cc -shared -fPIC -w -Wl,-soname,libcuda.so.1 -o "$toolkit/lib/stubs/libcuda.so" "$work/libcuda.c"

echo "llama-cpp-python for sm_$ARCH, $(nproc) jobs"
PATH=$toolkit/bin:$PATH CMAKE_GENERATOR=Ninja CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    CMAKE_ARGS="$CMAKE_CPU -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DCMAKE_CUDA_COMPILER=$toolkit/bin/nvcc -DCUDAToolkit_ROOT=$toolkit -DCUDA_cuda_driver_LIBRARY=$toolkit/lib/stubs/libcuda.so" \
    $PY -m pip wheel --quiet --no-deps -w "$work/wheel" "$SRC"
# The wheel is 267 MB: a wheel has no symbolic links, so each library is there three times
# (libX.so, .so.0, .so.0.N), in the package and again in a top-level lib/ nobody loads. What
# travels is the package with one copy of each and its links, as .tar.xz (about 43 MB: one
# transfer), unpacked into site-packages there.
mkdir "$work/pkg" && (cd "$work/pkg" && $PY -m zipfile -e "$work"/wheel/llama_cpp_python-*.whl . && rm -rf lib include)
for versioned in "$work"/pkg/llama_cpp/lib/*.so.*.*; do
    name=$(basename "$versioned") base=${versioned%%.so.*}.so
    ln -sf "$name" "$base"
    ln -sf "$name" "$base.$(echo "$name" | sed 's/.*\.so\.\([0-9]*\).*/\1/')"
done
tar -C "$work/pkg" -cJf "$DEST/llama_cpp_cuda.tar.xz" .
printf 'arch=%s\ncuda=%s\n' "$ARCH" "$CUDA" > "$DEST/llama_cpp_cuda.about"
ls -la "$DEST"/llama_cpp_cuda*
