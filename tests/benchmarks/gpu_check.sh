#!/usr/bin/env bash
# The GPU check of issue 17: hpo32 on a GPU machine with PyTorch and/or JAX (CUDA), no
# TensorFlow and no network. Prints one table: images/s of MaxNet and of the resnet family
# (AIRBENCH94_CONFIG) per backend available, hpo32's loop against plain model.fit on the
# same float32 arrays, then a short timed search per backend with its test accuracy.
# Meant to finish in 10 minutes, start-up and data build included (two backends, 150 s of
# search each; GPU_CHECK_ARGS overrides, e.g. "--backends torch --search-budget 5m").
#
# What it needs beside this script (copy them into tests/benchmarks/ before the run):
#
#   cifar10-jpg.tar.gz   ../shared/data's CIFAR-10 JPEG archive (19.8 MB)
#   wheels/              what the machine lacks, for Python 3.12 on manylinux x86-64. On a
#                        machine with network, from the repository root:
#
#     pip download --dest tests/benchmarks/wheels --only-binary=:all: --no-deps \
#       --python-version 3.12 --implementation cp --abi cp312 \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_28_x86_64 --platform any \
#       'keras>=3.10,<3.13' absl-py namex h5py optree ml-dtypes rich markdown-it-py mdurl \
#       pygments 'optuna>=4.2,<6' alembic mako markupsafe 'sqlalchemy>=2.0,<2.2' greenlet \
#       colorlog tqdm pyyaml packaging typing-extensions 'cmaes>=0.10,<1' pillow
#
#   (about 30 MB: the closure of what `hpo32 search` imports, listed in full with
#   --no-deps so that neither torch, jax, nvidia-* nor numpy is downloaded: the machine
#   has them; add numpy if it lacks it). pip then installs from that folder alone:
#   pip install --no-index --find-links wheels/ keras optuna ...
#
# hpo32 itself runs from this checkout without being installed (no setuptools needed): a
# folder under the work directory maps the package's names onto the repository's folders,
# as setup.cfg's package_dir does.
#
#   bash tests/benchmarks/gpu_check.sh            # the table; also in $WORK/gpu_check.json
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="${GPU_CHECK_WORK:-/tmp/hpo32-gpu-check}"
mkdir -p "$WORK"
started=$(date +%s)

# 1. A virtual environment over the system's packages (its torch, jax, CUDA), and the wheels.
if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PYTHON" -m venv --system-site-packages "$WORK/venv"
fi
PY="$WORK/venv/bin/python"
if [ -d "$HERE/wheels" ]; then
    "$PY" -m pip install --quiet --no-index --find-links "$HERE/wheels" \
        keras optuna sqlalchemy alembic cmaes pyyaml rich pillow
fi
"$PY" - <<'EOF'
import importlib.util, sys
need = ["keras", "optuna", "sqlalchemy", "alembic", "yaml", "rich", "PIL", "numpy"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing {', '.join(missing)}; bring their wheels (see the header)")
EOF

# 2. hpo32 from this checkout: hpo32.search -> search/, etc. (setup.cfg's package_dir).
SHIM="$WORK/shim"
rm -rf "$SHIM" && mkdir -p "$SHIM/hpo32"
for f in "$ROOT"/hpo32/*.py; do ln -s "$f" "$SHIM/hpo32/$(basename "$f")"; done
for d in search studies storage dashboards; do ln -s "$ROOT/$d" "$SHIM/hpo32/$d"; done
export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
unset HPO32_STORAGE HPO32_DATA_DIR

# 3. CIFAR-10 from the JPEG archive, the measures, the table.
ARCHIVE="${CIFAR_ARCHIVE:-$HERE/cifar10-jpg.tar.gz}"
[ -f "$ARCHIVE" ] || ARCHIVE="$ROOT/../shared/data/cifar10-jpg.tar.gz"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' \
    2>/dev/null || echo "torch: not installed"
"$PY" -c 'import jax; print("jax", jax.__version__, jax.devices())' 2>/dev/null \
    || echo "jax: not installed"
# shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of options
"$PY" "$HERE/gpu_check.py" all --archive "$ARCHIVE" --work "$WORK" ${GPU_CHECK_ARGS:-}
echo "gpu_check: $(($(date +%s) - started))s in all"
