"""The fleet's war-room messages: the exact commands that approve or deny the waiting steps."""

from __future__ import annotations

from eksir.notify.message import approvals_waiting, closed_repeat


def test_the_waiting_message_carries_the_exact_approve_and_deny_commands() -> None:
    message = approvals_waiting(
        "eksir-20260101-abc", ["contain-pod", "cordon-node"], "--cases-dir /c --queue-url Q"
    )
    assert (
        "eksir approve eksir-20260101-abc --step contain-pod --yes --cases-dir /c --queue-url Q"
        in message.lines
    )
    assert any(line.startswith("eksir deny eksir-20260101-abc --destructive --yes") for line in message.lines)
    assert "2 step(s) wait for approval" in message.title


def test_a_closed_case_repeat_says_nothing_was_re_run() -> None:
    message = closed_repeat("eksir-20260101-abc", "f1", 7)
    assert "closed" in message.title
    assert "nothing re-run" in message.text
