#!/usr/bin/env bash
# The project as a user gets it from a built wheel (not `pip install -e`), outside the checkout:
#   - building the wheel raises no packaging warning;
#   - it installs as the distribution model-swarms (PyPI's `modelswarm` is another project)
#     and imports as modelswarm, at the version the package reports;
#   - `modelswarm --help` works;
#   - a tiny swarm runs from a config that lives outside the checkout;
#   - `modelswarm demo` there says, in one line and with exit code 2, where to run it.
# Usage: .ci/check_dist.sh VENV_PYTHON   (a venv with the dependencies, e.g. .venv/bin/python)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps_py=${1:?usage: .ci/check_dist.sh VENV_PYTHON}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$deps_py" -m pip wheel -v --no-deps -w "$tmp/dist" "$root" >"$tmp/wheel.log" 2>&1 || { cat "$tmp/wheel.log"; exit 1; }
if grep -E '[A-Za-z]Warning\b' "$tmp/wheel.log"; then
    echo "check_dist: building the wheel raised the packaging warnings above" >&2
    exit 1
fi
wheel=$(ls "$tmp"/dist/model_swarms-*.whl)  # the distribution model-swarms; it imports as modelswarm

# A fresh venv that sees the dependencies of $deps_py's venv (a .pth line; the .pth files
# there, such as the editable install of this checkout, are not processed) and the wheel.
python3 -m venv "$tmp/venv"
py="$tmp/venv/bin/python"
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
purelib "$deps_py" >"$(purelib "$py")/deps.pth"
"$py" -m pip install -q --no-deps "$wheel"
where=$(cd "$tmp" && "$py" -c 'import modelswarm; print(modelswarm.__file__)')
case "$where" in "$tmp/venv/"*) ;; *) echo "check_dist: modelswarm imported from $where, not the wheel" >&2; exit 1;; esac
dist=$(cd "$tmp" && "$py" -c 'import importlib.metadata as m, modelswarm
d = m.distribution("model-swarms")
assert d.version == modelswarm.__version__, (d.version, modelswarm.__version__)
assert "modelswarm/__init__.py" in {f.as_posix() for f in d.files}, "the wheel does not hold modelswarm"
print(d.metadata["Name"], d.version)') || { echo "check_dist: the wheel is not the distribution model-swarms" >&2; exit 1; }

cd "$tmp"
"$tmp/venv/bin/modelswarm" --help >/dev/null
sed -e "s#: experts/#: $root/experts/#" "$root/swarm_configs/tiny.yaml" >"$tmp/tiny.yaml"
"$tmp/venv/bin/modelswarm" run "$tmp/tiny.yaml" --no-live >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; exit 1; }
for f in runs/tiny/summary.json runs/tiny/state.json runs/tiny/config.yaml runs/tiny/best/adapter_model.safetensors; do
    [ -f "$f" ] || { echo "check_dist: the tiny run wrote no $f" >&2; exit 1; }
done

set +e
"$tmp/venv/bin/modelswarm" demo 2>"$tmp/demo.err" >/dev/null
rc=$?
set -e
if [ "$rc" -ne 2 ] || [ "$(wc -l <"$tmp/demo.err")" -ne 1 ]; then
    echo "check_dist: \`modelswarm demo\` outside a checkout: exit $rc, expected 2 and one line:" >&2
    cat "$tmp/demo.err" >&2
    exit 1
fi
echo "check_dist: $(basename "$wheel") ($dist): no packaging warning, --help, a tiny run from $tmp/tiny.yaml, demo hint: $(cat "$tmp/demo.err")"
