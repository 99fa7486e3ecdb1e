"""The top-level group lists commands from a static table and imports a command's module only to run it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import typer
import typer.main
from typer.testing import CliRunner

from eksir.cli.app import _top_level, build_app
from eksir.cli.commands import COMMANDS
from eksir.cli.lazy import load_commands
from tests.cli.helpers import REPO

runner = CliRunner()
HEAVY = ("boto3", "botocore", "kubernetes", "moto", "pydantic", "yaml", "cryptography", "jinja2")


def _modules() -> list[str]:
    return list(dict.fromkeys(entry.module for entry in COMMANDS))


def _eager_app() -> typer.Typer:
    """The app as it was built before: every command module imported and registered up front."""
    app = typer.Typer(
        name="eksir",
        help="Incident response for a privileged container launched on Amazon EKS.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_top_level)  # the same root options (--version, --debug)
    for module_name in _modules():
        __import__(module_name, fromlist=["register"]).register(app)
    return app


def _first_paragraph(command: object) -> str:
    help_text = inspect.cleandoc(getattr(command, "help", None) or "")
    return help_text.split("\n\n")[0].replace("\n", " ").strip()


def test_the_table_names_every_command_the_modules_register_in_the_order_help_shows_them() -> None:
    eager = typer.main.get_group(_eager_app())
    assert [entry.name for entry in COMMANDS] == list(eager.commands)


def test_each_table_row_names_the_module_that_registers_that_command() -> None:
    for module_name in _modules():
        registered = set(load_commands(module_name))
        assert registered == {entry.name for entry in COMMANDS if entry.module == module_name}


def test_each_table_help_line_is_the_first_paragraph_of_the_real_commands_help() -> None:
    eager = typer.main.get_group(_eager_app())
    for entry in COMMANDS:
        assert entry.help == _first_paragraph(eager.commands[entry.name]), entry.name


def test_help_is_the_same_text_as_the_eagerly_built_apps_help() -> None:
    lazy = runner.invoke(build_app(), ["--help"], terminal_width=100)
    eager = runner.invoke(_eager_app(), ["--help"], terminal_width=100)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.stdout == eager.stdout
    assert all(entry.name in lazy.stdout for entry in COMMANDS)


def test_a_group_commands_help_is_the_same_as_before() -> None:
    for args in (["case", "--help"], ["lab", "--help"], ["hunt", "--help"], ["rollback", "--help"]):
        lazy = runner.invoke(build_app(), args, terminal_width=100)
        eager = runner.invoke(_eager_app(), args, terminal_width=100)
        assert (lazy.exit_code, lazy.stdout) == (eager.exit_code, eager.stdout), args


def test_a_mistyped_command_is_a_usage_error_that_suggests_the_right_one() -> None:
    result = runner.invoke(build_app(), ["triag"])
    assert result.exit_code == 2
    assert "No such command 'triag'. Did you mean 'triage'?" in result.output


def _imported_after(args: list[str]) -> set[str]:
    """Run the real entry point in a fresh interpreter and return the top-level packages it imported."""
    code = (
        "import sys\n"
        f"sys.argv = ['eksir', *{args!r}]\n"
        "from eksir.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stderr.rsplit("MODULES ", 1)[1].split())


def test_help_in_a_fresh_interpreter_imports_no_sdk_no_pydantic_and_no_command_module() -> None:
    modules = _imported_after(["--help"])
    assert "typer" in modules
    assert not {name for name in modules if name.split(".")[0] in HEAVY}
    assert not {name for name in modules if name.startswith("eksir.cli.") and name.endswith("_cmd")}
    assert not {name for name in modules if name.startswith(("eksir.lab", "eksir.hunt", "eksir.findings"))}


def test_a_hunt_over_local_files_imports_no_aws_or_kubernetes_sdk_nor_the_case_store_nor_rich() -> None:
    tree = REPO / "tests" / "data" / "hunt" / "tree"
    since = ["--since", "2024-08-01", "--until", "2024-08-05"]
    modules = _imported_after(["hunt", "-p", "AKIAATTACKER00000001", *since, "-s", str(tree), "-o", "json"])
    assert "eksir.hunt.scan" in modules
    assert not {name for name in modules if name.split(".")[0] in {"boto3", "botocore", "kubernetes", "moto"}}
    assert not {name for name in modules if name.startswith(("eksir.lab", "eksir.store", "eksir.findings"))}
    assert "rich" not in modules  # JSON to a pipe: no progress bar, no table


def test_triage_imports_neither_kubernetes_nor_boto3_nor_the_lab() -> None:
    finding = REPO / "tests" / "data" / "findings" / "iam-user.wire.json"
    modules = _imported_after(["triage", str(finding), "--no-case", "-o", "json"])
    assert "eksir.triage" in modules
    assert not {name for name in modules if name.split(".")[0] in {"boto3", "kubernetes", "moto"}}
    assert not {name for name in modules if name.startswith(("eksir.lab", "eksir.hunt"))}
    # The finding parser reads botocore's GuardDuty model through clients/ (the only layer importing the SDK);
    # nothing else of clients/ (sessions, the Kubernetes client) is loaded.
    clients = {name for name in modules if name.startswith("eksir.clients")}
    assert clients <= {"eksir.clients", "eksir.clients.aws_models"}
