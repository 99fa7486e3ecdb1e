#!/bin/sh
# Install the system packages the test suite needs but pip cannot provide.
#
# Why: the report test renders the HTML report in headless Chromium to prove it displays without external
# resources or console errors; Debian's `chromium` package provides /usr/bin/chromium. Idempotent: does
# nothing when chromium is already installed, so `make test` can call it every time.
set -eu

if [ -x /usr/bin/chromium ]; then
    echo "install-test-deps: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install Chromium yourself (the HTML report test skips without it)" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: not root and no sudo; install the 'chromium' package yourself" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
echo "install-test-deps: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
