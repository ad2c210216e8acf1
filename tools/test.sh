#!/usr/bin/env bash
# Install everything the tests need (system Chromium for browser tests, Python packages) and run
# the whole test suite. This is the README's test command; .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "== installing Debian chromium + chromium-driver for the browser tests"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

echo "== installing Python packages (requirements-test.txt)"
python3 -m pip install -q --disable-pip-version-check -r requirements-test.txt

echo "== running tests"
export XRF_REQUIRE_BROWSER=1   # browser tests fail, not skip, when Chromium is missing
python3 -m pytest "$@"
