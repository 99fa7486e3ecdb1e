"""The account options live in cli/options.py (light, so `eksir serve` installs its SIGTERM handler before
importing the engine) and must read the environment variables clients/assume.py documents and reads."""

from __future__ import annotations

from typing import get_args

from eksir.cli.options import AssumeRoleOpt, ExternalIdOpt
from eksir.clients.assume import ASSUME_ROLE_ENV, EXTERNAL_ID_ENV


def test_the_role_options_read_the_environment_variables_the_role_code_names() -> None:
    assert get_args(AssumeRoleOpt)[1].envvar == ASSUME_ROLE_ENV
    assert get_args(ExternalIdOpt)[1].envvar == EXTERNAL_ID_ENV
