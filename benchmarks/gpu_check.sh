#!/usr/bin/env bash
# Issue 19, section 3 ("the GPU path, for real") in ONE device call, about 5 minutes on an H200:
#   1. the CUDA tests (pytest -m cuda);
#   2. the paper workload on the GPU: every solver at ranks 10-50, and the whole five-rank default sweep
#      (goal: under 0.5 s on an H100-class GPU), against the scikit-learn-cd targets measured on the CPU
#      (benchmarks/sklearn_targets.json; scikit-learn itself is not run there);
#   3. capture throughput of a ResNet-50 (all 16 Bottleneck outputs, pool=2) against plain forward passes.
# Step 2 also times the five-rank sweep with exact HALS one rank at a time and all ranks at once (batched=True).
#
# The device machine has python3 with torch, numpy, tqdm, pytest and scikit-learn, and no network: carry
# MNIST's four IDX .gz files in an ignored folder, e.g. (here, once)
#   echo /.gpu-data/ >> .git/info/exclude; mkdir -p .gpu-data/mnist; cp ../shared/data/mnist/*.gz .gpu-data/mnist/
# then run, with carry [".gpu-data"] and a timeout of about 480 s:
#   PEEKLENS_DATA=.gpu-data bash benchmarks/gpu_check.sh "$OUT"
# Everything it prints is also written under the folder given (default gpu-check/). GPU_CHECK_DEVICE=cpu
# runs the same steps on the CPU with small sizes (a rehearsal: it checks the script, not the GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
dev=${GPU_CHECK_DEVICE:-cuda}
py=${PYTHON:-python3}
status=0

echo "== environment" | tee "$out/env.txt"
{ command -v nvidia-smi >/dev/null && nvidia-smi -L; $py -c "import torch; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')"; } 2>&1 | tee -a "$out/env.txt"

echo "== 1. CUDA tests" | tee "$out/cuda-tests.txt"
if [ "$dev" = cuda ]; then
  timeout 180 $py -m pytest -q -p no:cacheprovider -m cuda tests/nmf tests/interpret 2>&1 | tee -a "$out/cuda-tests.txt" || status=1
else
  echo "(skipped: GPU_CHECK_DEVICE=$dev)" | tee -a "$out/cuda-tests.txt"
fi

echo "== 2. paper workload on $dev" | tee "$out/solvers.txt"
quick=(); [ "$dev" = cuda ] || quick=(--quick)
timeout 240 $py benchmarks/bench_solvers.py --device "$dev" --targets benchmarks/sklearn_targets.json --no-scaling \
  --no-memory "${quick[@]}" 2>&1 | tee -a "$out/solvers.txt" || status=1

echo "== 3. ResNet-50 capture throughput on $dev" | tee "$out/capture.txt"
n=512; [ "$dev" = cuda ] || n=16
timeout 120 $py - "$dev" "$n" <<'PY' 2>&1 | tee -a "$out/capture.txt" || status=1
import sys, time
import torch, torchvision
from torchvision.models.resnet import Bottleneck
import peeklens as pl

dev, n = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
model = torchvision.models.resnet50(weights=None).eval().to(dev)
layers = [name for name, m in model.named_modules() if isinstance(m, Bottleneck)]
x = torch.rand(n, 3, 224, 224)
batches = [(x[i : i + 64],) for i in range(0, n, 64)]


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


with torch.no_grad():  # warm-up: cuDNN's algorithm choice, the allocator
    model(x[:64].to(dev))
sync()
t = time.perf_counter()
with torch.no_grad():
    for (b,) in batches:
        model(b.to(dev))
sync()
plain = time.perf_counter() - t
t = time.perf_counter()
acts = pl.capture(model, batches, layers=layers, pool=2, device=dev, progress=False)
sync()
cap = time.perf_counter() - t
print(f"{n} images at 224x224, batches of 64, {len(layers)} Bottlenecks pooled to 2x2 ({acts.n_features:,} features)")
print(f"plain forward: {plain:.2f} s ({n / plain:.0f} images/s); pl.capture: {cap:.2f} s ({n / cap:.0f} images/s); "
      f"overhead {cap / plain:.2f}x")
PY
echo "== done (status $status); files in $out"
exit $status
