#!/bin/sh
# Install the system packages the test suite needs but pip cannot provide.
#
# Why: the report test renders the HTML report in headless Chromium to prove it displays without external
# resources or console errors (Debian's `chromium`); the lab's attacked node runs a real containerd with the
# attacker's privileged container, so capture and pause are tested on a real runtime (Debian's `containerd`
# and `runc`, and `busybox-static`, from which the lab builds its node image: no registry is needed); the
# report's print test prints it to PDF in Chromium and reads page 1 back with `pdftotext` (`poppler-utils`).
# Idempotent: installs only what is missing, so `make test` can call it every time.
set -eu

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium fonts-dejavu-core"
command -v containerd >/dev/null 2>&1 || missing="$missing containerd"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
[ -x /bin/busybox ] || missing="$missing busybox-static"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"

if [ -z "$missing" ]; then
    echo "install-test-deps: chromium ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version)), containerd ($(containerd --version 2>/dev/null | awk '{print $3}')), runc, busybox-static and pdftotext already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install$missing yourself (the HTML report test skips without chromium; the node-runtime tests skip without containerd, and fail in CI)" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: not root and no sudo; install these packages yourself:$missing" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # one word per package
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-test-deps: installed$missing"
