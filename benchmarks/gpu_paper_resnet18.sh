#!/usr/bin/env bash
# The issue's GPU check: the `paper` preset with the ResNet-18 backbone on the CIFAR-10 test
# split, trained on a CUDA device. Run from the repository root on a machine with CUDA torch:
#
#   benchmarks/gpu_paper_resnet18.sh EPOCHS CIFAR_DIR OUT_DIR [extra bench_preprocess args]
#
# Where the machine cannot reach a package registry, put wheels of pydantic, pydantic-core,
# annotated-types, typing-inspection, typing-extensions and constriction (cp312 manylinux
# wheels, `pip download --no-deps --only-binary=:all:`) in .whl/; they are installed to
# /tmp/site. Numbers: docs/preprocess.md, "The `paper` preset with a ResNet-18 on a GPU".
set -euo pipefail
epochs=${1:?epochs}; cifar=${2:?cifar dir}; out=${3:?out dir}; shift 3
if compgen -G ".whl/*.whl" >/dev/null && [ ! -d /tmp/site/pydantic ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
mkdir -p "$out"
nvidia-smi -L || true
PYTHONUNBUFFERED=1 python3 benchmarks/bench_preprocess.py --suite cifar --preset paper --backbone resnet18 \
  --device cuda --threads 4 --log-epochs --cifar-dir "$cifar" --cifar-epochs "$epochs" --seeds 0 \
  --out "$out/paper_resnet18_e${epochs}${TAG:-}.csv" "$@" 2>&1 | tee "$out/paper_resnet18_e${epochs}${TAG:-}.log"
