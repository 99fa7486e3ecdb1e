"""Issue 14 item 1: which credentials eksir uses, like kubectl: `--kubeconfig` > `KUBECONFIG` > EKS token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eksir.clients.kubeconfig import SourceKind, choose_source
from eksir.errors import BadInputError, ExitCode


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    return path


def test_kubeconfig_option_wins_over_the_environment(tmp_path: Path) -> None:
    flag, env = _file(tmp_path, "flag"), _file(tmp_path, "env")
    source = choose_source(flag, None, {"KUBECONFIG": str(env)})
    assert source.kind is SourceKind.KUBECONFIG
    assert (source.kubeconfig, source.origin) == (str(flag), "--kubeconfig")


def test_kubeconfig_variable_is_used_as_a_list_skipping_files_that_do_not_exist(tmp_path: Path) -> None:
    first, second = _file(tmp_path, "a"), _file(tmp_path, "b")
    listed = os.pathsep.join([str(first), str(tmp_path / "missing"), "", str(second)])
    source = choose_source(None, "ctx", {"KUBECONFIG": listed})
    assert source.kind is SourceKind.KUBECONFIG
    assert source.kubeconfig == os.pathsep.join([str(first), str(second)])
    assert source.context == "ctx"
    assert "KUBECONFIG" in source.origin


def test_without_either_the_eks_token_is_used(tmp_path: Path) -> None:
    assert choose_source(None, None, {}).kind is SourceKind.EKS_TOKEN
    assert choose_source(None, None, {"KUBECONFIG": "  "}).kind is SourceKind.EKS_TOKEN


def test_a_kubeconfig_variable_naming_no_existing_file_is_bad_input_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="names no existing file") as caught:
        choose_source(None, None, {"KUBECONFIG": str(tmp_path / "gone")})
    assert caught.value.exit_code is ExitCode.BAD_INPUT


def test_a_missing_kubeconfig_option_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        choose_source(tmp_path / "nope", None, {"KUBECONFIG": str(_file(tmp_path, "env"))})
