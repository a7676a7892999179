#!/usr/bin/env bash
# Download, into .whl/ at the repository root, the wheels the GPU machine's image lacks
# (optuna, hyperopt and what they need beyond that image), for its Python 3.12 on x86-64.
# Then run the validation there with .whl carried:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD:$PWD/adapters/optuna:$PWD/adapters/hyperopt \
#       && python3 benchmarks/gpu/validate.py --out $OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
exclude="$(git rev-parse --git-path info/exclude)"; mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl optuna==5.0.0 hyperopt==0.3.0 sqlalchemy==2.1.9 alembic==1.20.1 colorlog==6.12.0 \
    mako==1.4.3 greenlet
ls -la .whl
