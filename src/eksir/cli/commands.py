"""The table of `eksir` commands: name, the module that defines it, and its one-line help.

Why a static table: `eksir --help` must list every command with its help, and importing every command
module to read it pulled in kubernetes, boto3, the lab and pydantic's model building, 0.7 s before the
first line of output. The table lets the top-level group list commands without importing them; a command's
module is imported only when that command runs (see `eksir.cli.lazy`). `tests/cli/test_lazy_commands.py`
checks every row against the real modules, so the table cannot drift from the commands it names.

The order is the order `eksir --help` shows, the playbook's: preparation (doctor, permissions), triage,
the response, the hunt, recovery, prevention, the report; then the game day and the groups (case, lab).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandEntry:
    """One top-level command: the module whose `register(app)` adds it, and its first help paragraph."""

    name: str
    module: str
    help: str


COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry(
        "doctor",
        "eksir.cli.doctor_cmd",
        "Check, before an incident, that eksir can authenticate, has its permissions and sees what it needs.",
    ),
    CommandEntry(
        "permissions",
        "eksir.cli.permissions_cmd",
        "Print the least-privilege IAM policy and Kubernetes ClusterRole derived from the actions.",
    ),
    CommandEntry(
        "triage",
        "eksir.cli.triage_cmd",
        "Read a GuardDuty finding in any form AWS emits, triage it, and open (or reuse) its case.",
    ),
    CommandEntry(
        "plan",
        "eksir.cli.respond_cmd",
        "Dry run: resolve the finding online, build the response plan, preview every step. Changes nothing.",
    ),
    CommandEntry(
        "respond",
        "eksir.cli.respond_cmd",
        "Resolve, plan and run the response; destructive steps need approval and GuardDuty's confirmation.",
    ),
    CommandEntry(
        "status",
        "eksir.cli.respond_cmd",
        "Show each step of the case's plan with its state, detail and approver (reads the case only).",
    ),
    CommandEntry(
        "resume",
        "eksir.cli.respond_cmd",
        "Continue the case's run: interrupted steps are checked before anything is re-applied.",
    ),
    CommandEntry(
        "rollback",
        "eksir.cli.respond_cmd",
        "Undo applied steps (all, newest first, or one with --step) and verify each undo.",
    ),
    CommandEntry(
        "watch",
        "eksir.cli.watch_cmd",
        "Watch a case live: phase, steps changing state, pending approvals, open risks, the next command.",
    ),
    CommandEntry(
        "hunt",
        "eksir.cli.hunt_cmd",
        "Hunt the compromised principals' API calls in CloudTrail and Kubernetes audit logs.",
    ),
    CommandEntry(
        "recover",
        "eksir.cli.recover_cmd",
        "Preserve, then delete/restore what the attacker created or changed; worklist for the rest.",
    ),
    CommandEntry(
        "prevent",
        "eksir.cli.prevent_cmd",
        "Assess, enforce (--apply) and prove (--prove) Pod Security prevention for the case's namespace.",
    ),
    CommandEntry(
        "report",
        "eksir.cli.report_cmd",
        "Build the report from the case record (every input hash-checked) and write it into the case.",
    ),
    CommandEntry(
        "gameday",
        "eksir.cli.gameday_cmd",
        "Lab up, triage, plan, respond, hunt, recover, prove prevention, report; then lab down.",
    ),
    CommandEntry("case", "eksir.cli.case_cmd", "Inspect and verify case bundles."),
    CommandEntry(
        "deploy", "eksir.cli.deploy_cmd", "Deploy fleet mode: the security account's CloudFormation."
    ),
    CommandEntry(
        "lab",
        "eksir.cli.lab_cmd",
        "A local lab: real kube-apiserver + etcd + moto, seeded with an EKS incident.",
    ),
)
