#!/usr/bin/env bash
# The GPU check of issue 17: hpo32 on a GPU machine with PyTorch and/or JAX (CUDA), no
# TensorFlow and no network. Prints one table: images/s of MaxNet and of the resnet family
# (AIRBENCH94_CONFIG) per backend available, hpo32's loop against plain model.fit on the
# same arrays; host and device memory after each of repeated trials per backend; a timed
# search (5 minutes, on the backend whose loop was fastest) with its test accuracy; then,
# with the time left, plain fit under torch.compile. Finishes within GPU_CHECK_DEADLINE
# seconds (default 540), start-up and data build included. GPU_CHECK_ARGS adds options to
# gpu_check.py, e.g. "--backends torch --search-budget 2m".
#
# What it needs beside this script:
#
#   CIFAR_ARCHIVE        ../shared/data's CIFAR-10 JPEG archive (19.8 MB); default
#                        tests/benchmarks/cifar10-jpg.tar.gz, then ../shared/data's copy.
#   WHEELS               a folder of wheels of what the machine lacks, for Python 3.12 on
#                        manylinux x86-64 (default tests/benchmarks/wheels). On a machine with
#                        network, from the repository root (about 9 MB):
#
#     pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --abi cp312 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
#       -d tests/benchmarks/wheels 'keras>=3.10,<3.13' namex optree 'optuna>=4.2,<6' \
#       alembic mako 'sqlalchemy>=2.0,<2.2' greenlet colorlog 'cmaes>=0.10,<1'
#
#   That is the closure of what `hpo32 search` imports beyond what a PyTorch/JAX CUDA image
#   already holds (numpy, absl-py, h5py, ml-dtypes, rich, pyyaml, pillow, tqdm, packaging,
#   markupsafe, typing-extensions); --no-deps keeps torch, jax and nvidia-* out. They are
#   installed with --no-deps into a folder on PYTHONPATH rather than into a virtual
#   environment: the image's python3 may itself be a virtual environment, and a venv made
#   from it would not see its packages.
#
# hpo32 itself runs from this checkout without being installed: a folder under the work
# directory maps the package's names onto the repository's folders, as setup.cfg's
# package_dir does.
#
#   bash tests/benchmarks/gpu_check.sh            # the table; also in $WORK/gpu_check.json
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"
WORK="${GPU_CHECK_WORK:-/tmp/hpo32-gpu-check}"
WHEELS="${WHEELS:-$HERE/wheels}"
mkdir -p "$WORK"
started=$(date +%s)

# 1. The carried wheels, into a folder of their own on PYTHONPATH.
SITE="$WORK/site"
if [ -d "$WHEELS" ] && [ ! -d "$SITE" ]; then
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
        --target "$SITE" "$WHEELS"/*.whl
fi
# 2. hpo32 from this checkout: hpo32.search -> search/, etc. (setup.cfg's package_dir).
SHIM="$WORK/shim"
rm -rf "$SHIM" && mkdir -p "$SHIM/hpo32"
for f in "$ROOT"/hpo32/*.py; do ln -s "$f" "$SHIM/hpo32/$(basename "$f")"; done
for d in search studies storage dashboards; do ln -s "$ROOT/$d" "$SHIM/hpo32/$d"; done
export PYTHONPATH="$SHIM:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
unset HPO32_STORAGE HPO32_DATA_DIR

"$PY" - <<'PYEOF'
import importlib.util, sys
need = ["keras", "optuna", "sqlalchemy", "alembic", "yaml", "rich", "PIL", "numpy"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing {', '.join(missing)}; bring their wheels (see the header)")
PYEOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: not found"
(cd "$WORK" && "$PY" -c 'from hpo32.search.hardware import describe; print(describe())')
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' \
    2>/dev/null || echo "torch: not installed"
"$PY" -c 'import jax; print("jax", jax.__version__, jax.devices())' 2>/dev/null \
    || echo "jax: not installed"

# 3. CIFAR-10 from the JPEG archive, the measures, the table.
ARCHIVE="${CIFAR_ARCHIVE:-$HERE/cifar10-jpg.tar.gz}"
[ -f "$ARCHIVE" ] || ARCHIVE="$ROOT/../shared/data/cifar10-jpg.tar.gz"
deadline=$((${GPU_CHECK_DEADLINE:-540} - ($(date +%s) - started)))
# shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of options
"$PY" "$HERE/gpu_check.py" all --archive "$ARCHIVE" --work "$WORK" --deadline "$deadline" \
    ${GPU_CHECK_ARGS:-}
echo "gpu_check: $(($(date +%s) - started))s in all"
