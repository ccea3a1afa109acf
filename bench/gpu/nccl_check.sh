#!/bin/bash
# Issue #15's GPU check, for a session with the GPU machine (not yet run: no GPU was lent to this issue).
# Carry a .NET runtime tarball (dotnet.tar.xz) and a framework-dependent build of bench/SharpTune.Bench without the
# libtorch-cpu natives (bench-app/), as ../shared/notes/gpu.md describes; then run this from the repository root.
# 1) NCCL at world size 1 and the DataParallel path (DDP, ZeRO-1, ZeRO-2) plus offload_optimizer: cpu on cuda:0 against
#    plain single-GPU steps (exit 1 when a max abs difference exceeds 1e-6);
# 2) with ≥ 2 GPUs also mpirun -np 2 of the bench's allreduce on CUDA is left to the training tests (device: cuda).
set -euo pipefail
TORCH_LIB=$(dirname "$(find / -name libtorch_cuda.so -path '*torch/lib*' 2>/dev/null | head -1)")
mkdir -p dn && tar -xJf dotnet.tar.xz -C dn
export DOTNET_ROOT=$PWD/dn PATH=$PWD/dn:$PATH LD_LIBRARY_PATH=$TORCH_LIB
echo "torch/lib: $TORCH_LIB; NCCL beside it: $(ls "$TORCH_LIB"/../../nvidia/*/lib/libnccl.so.2 2>/dev/null | head -1)"
dotnet bench-app/SharpTune.Bench.dll nccl-check cuda:0 4
