"""`eksir serve`'s usage errors: one line and exit 2 (an S3 case store is not in this build yet)."""

from __future__ import annotations

from tests.cli.helpers import run_eksir


def test_an_s3_cases_dir_is_refused_with_one_line_and_exit_2() -> None:
    done = run_eksir("serve", "--queue-url", "https://sqs.invalid/q", "--cases-dir", "s3://bucket/cases")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "s3://" in done.stderr


def test_a_lock_table_without_the_shared_store_is_refused() -> None:
    done = run_eksir("serve", "--queue-url", "https://sqs.invalid/q", "--lock-table", "eksir-leases")
    assert done.returncode == 2
    assert "--lock-table" in done.stderr


def test_the_queue_url_is_required() -> None:
    assert run_eksir("serve").returncode == 2
