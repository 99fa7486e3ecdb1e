"""Runs a plan in a separate process, so a test can SIGKILL it mid-step (see test_resume.py).

Usage: python -m tests.engine.child_runner CASE_DIR PLAN_JSON KUBECONFIG
(CASE_DIR may be `s3://bucket/prefix/CASE`: a case of the shared store, under its DynamoDB lease.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from kubernetes import config

from eksir.engine import ApprovalPolicy, PolicyGate, Runner
from eksir.errors import EksirError
from eksir.playbooks.plan import Plan
from eksir.store import CaseHandle, CaseStore
from tests.engine import cm_actions  # noqa: F401 - registers the test actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for


def main() -> None:
    case_dir, plan_file, kubeconfig = sys.argv[1:4]
    shared = case_dir.startswith("s3://")
    case = (
        CaseStore(case_dir, "child@lab").get(case_dir) if shared else CaseHandle(Path(case_dir), "child@lab")
    )
    plan = Plan.model_validate_json(Path(plan_file).read_bytes())
    api = config.new_client_from_config(config_file=kubeconfig)
    gate = PolicyGate(ApprovalPolicy.ALL, "child@lab")
    try:
        Runner(case, plan, ctx_factory_for(api), gate, max_workers=1, retry=FAST_RETRY).run()
    except EksirError as exc:  # like the CLI: one line and the documented exit code
        print(f"eksir: error: {exc.message}", file=sys.stderr)
        sys.exit(int(exc.exit_code))


if __name__ == "__main__":
    main()
