#!/usr/bin/env bash
# Installs what the test suite needs beyond the .NET SDK, where it is missing. The test project runs this before it
# builds (see tests/SharpTune.Tests/SharpTune.Tests.csproj), so `dotnet test` on a fresh machine sets itself up.
# System packages come from apt when run as root; otherwise the script says what to install. It never fails the build:
# a test whose dependency is still missing is skipped with the reason (and fails under CI=true).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stamp=tests/SharpTune.Tests/obj/test-deps.stamp
# A quick no-op when nothing changed since the last complete check: the stamp is younger than an hour and than this
# script and every package-lock.json it installs from.
if [[ -f $stamp && -z $(find "$stamp" -mmin +60 2>/dev/null) \
      && -z $(find tools -maxdepth 2 \( -name install-test-deps.sh -o -name package-lock.json \) -newer "$stamp" 2>/dev/null | head -1) ]]; then
  exit 0
fi

apt_missing=()
need_apt() { command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2"); }
need_apt node nodejs
need_apt npm npm
# The job dashboard's browser test drives Debian's headless chromium over the DevTools protocol.
need_apt chromium chromium
# Multi-process training tests run ranks under OpenMPI's mpirun (libmpi.so.40 is loaded by P/Invoke).
need_apt mpirun openmpi-bin
[[ -e /usr/lib/x86_64-linux-gnu/libmpi.so || -e /usr/lib/aarch64-linux-gnu/libmpi.so || -n $(ldconfig -p 2>/dev/null | grep -m1 'libmpi\.so') ]] || apt_missing+=(libopenmpi-dev)
if ((${#apt_missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get install ${apt_missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}") >/dev/null 2>&1 \
      || echo "install-test-deps: warning: apt-get install ${apt_missing[*]} failed"
  else
    echo "install-test-deps: warning: missing ${apt_missing[*]}; install them (e.g. sudo apt-get install ${apt_missing[*]}) for the tests that use them"
  fi
fi

# npm packages of the reference checks, each folder pinned by its package-lock.json.
if command -v npm >/dev/null 2>&1; then
  for dir in tools/openai-client-test tools/gguf-check; do
    if [[ ! -d $dir/node_modules ]]; then
      echo "install-test-deps: npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || echo "install-test-deps: warning: npm ci in $dir failed"
    fi
  done
fi
mkdir -p "$(dirname "$stamp")" && touch "$stamp"
exit 0
