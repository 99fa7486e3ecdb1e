"""Suite-wide plugins and settings: the lab fixtures (real kube-apiserver + etcd), a private config dir."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["eksir.lab.pytest_plugin"]
_CONFIG_HOME_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Hermetic keys: what the CLI creates on first use (the signing key, trusted keys) goes to a folder of
    this run, inherited by every `eksir` subprocess, never to the user's ~/.config/eksir."""
    folder = tempfile.mkdtemp(prefix="eksir-test-config-")
    config.stash[_CONFIG_HOME_KEY] = folder
    os.environ["XDG_CONFIG_HOME"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_CONFIG_HOME_KEY, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
