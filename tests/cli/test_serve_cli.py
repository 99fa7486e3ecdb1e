"""`eksir serve`'s usage errors: one line and exit 2 (an S3 case store is not in this build yet)."""

from __future__ import annotations

from tests.cli.helpers import run_eksir


def test_a_malformed_s3_cases_dir_is_one_line_and_exit_3() -> None:
    """An s3:// store is served (tests/serve/test_fleet_lab.py); a bucket AWS would refuse is bad input."""
    bad = "s3://Not_A_Bucket/cases"
    done = run_eksir(
        "serve", "--queue-url", "https://sqs.invalid/q", "--cases-dir", bad, "--region", "us-east-1"
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "Not_A_Bucket" in done.stderr


def test_a_lock_table_without_the_shared_store_is_refused() -> None:
    done = run_eksir("serve", "--queue-url", "https://sqs.invalid/q", "--lock-table", "eksir-leases")
    assert done.returncode == 2
    assert "--lock-table" in done.stderr


def test_the_queue_url_is_required() -> None:
    assert run_eksir("serve").returncode == 2
