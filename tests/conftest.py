"""Suite-wide plugins and settings: the lab fixtures (real kube-apiserver + etcd, moto, a seeded lab per
scenario), a private config dir.

The lab fixtures live in tests/, not in src/eksir/lab/: the product never imports pytest
(tests/test_src_imports.py checks it).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["tests.lab_plugin", "tests.lab_fixtures"]
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
