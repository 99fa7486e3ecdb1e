"""The Runner against real ConfigMaps: apply, verify, retries, failures, approvals, persistence."""

from __future__ import annotations

import time

import orjson
import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.engine import (
    ApprovalPolicy,
    DenyAllGate,
    PolicyGate,
    Runner,
    StateStore,
    StepStatus,
)
from eksir.engine.interactive import OPTIONS, InteractiveGate
from eksir.lab.controlplane import ControlPlane, create_namespace
from eksir.store import CaseHandle, verify_case
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab
ALL = PolicyGate(ApprovalPolicy.ALL, "tester@lab")


def _runner(case: CaseHandle, plan, api: ApiClient, gate=ALL, workers: int = 4) -> Runner:  # type: ignore[no-untyped-def]
    return Runner(case, plan, ctx_factory_for(api), gate, max_workers=workers, retry=FAST_RETRY)


def test_every_step_is_applied_verified_and_each_transition_is_logged_and_persisted(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a"), mark_step("s2", configmap, "b", depends_on=("s1",)))
    state = _runner(case, plan, k8s_admin).run()
    assert {r.status for r in state.steps.values()} == {StepStatus.VERIFIED}
    data = core.read_namespaced_config_map(configmap[1], configmap[0]).data
    assert data["a"] == "set-by-s1"
    assert data["b"] == "set-by-s2"
    statuses = [
        e.data["status"] for e in case.log.events() if e.data.get("step_id") == "s1" and "status" in e.data
    ]
    assert statuses == ["checked", "approved", "applying", "applied", "verified"]
    on_disk = orjson.loads((case.path / "plan-state.json").read_bytes())
    assert on_disk["steps"]["s2"]["status"] == "verified"
    assert on_disk["steps"]["s1"]["applied"] == {"before": None}
    assert verify_case(case).ok


def test_a_dependent_step_starts_only_after_its_dependency_is_verified(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    plan = make_plan(
        mark_step("s1", configmap, "a", apply_delay=0.3), mark_step("s2", configmap, "b", depends_on=("s1",))
    )
    _runner(case, plan, k8s_admin).run()
    seqs = {(e.data.get("step_id"), e.data.get("status")): e.seq for e in case.log.events()}
    assert seqs[("s1", "verified")] < seqs[("s2", "checked")]


def test_a_temporary_error_is_retried_with_backoff_and_the_change_is_made_once(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", temporary_failures=2))
    state = _runner(case, plan, k8s_admin).run()
    assert state.steps["s1"].status is StepStatus.VERIFIED
    retries = [e for e in case.log.events() if e.type == "step.retry"]
    assert [e.data["attempt"] for e in retries] == [1, 2]
    assert cm_actions.mutations(core, *configmap, "a") == 1


def test_a_step_that_keeps_failing_temporarily_fails_after_bounded_retries(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", temporary_failures=99))
    state = _runner(case, plan, k8s_admin).run()
    record = state.steps["s1"]
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "temporary"
    assert "gave up after 4 attempts" in (record.error or "")
    assert cm_actions.mutations(core, *configmap, "a") == 0


def test_a_permission_denied_step_fails_its_dependents_are_blocked_and_independent_steps_continue(
    case: CaseHandle, control_plane: ControlPlane, k8s_admin: ApiClient, core: CoreV1Api, k8s_namespace: str
) -> None:
    forbidden_ns = f"{k8s_namespace}-x"
    create_namespace(k8s_admin, forbidden_ns)
    cm_actions.make_configmap(core, k8s_namespace, "ok")
    cm_actions.make_configmap(core, forbidden_ns, "nope")
    cm_actions.grant_configmaps(k8s_admin, k8s_namespace, "limited-responder")
    limited = control_plane.identity_api_client("limited-responder")
    plan = make_plan(
        mark_step("s1", (forbidden_ns, "nope"), "a"),
        mark_step("s2", (forbidden_ns, "nope"), "b", depends_on=("s1",)),
        mark_step("s3", (k8s_namespace, "ok"), "c"),
    )
    state = _runner(case, plan, limited).run()
    assert state.steps["s1"].status is StepStatus.FAILED
    assert state.steps["s1"].error_kind == "permission-denied"
    assert state.steps["s2"].status is StepStatus.BLOCKED
    assert "s1 is failed" in state.steps["s2"].detail
    assert state.steps["s3"].status is StepStatus.VERIFIED
    assert core.read_namespaced_config_map("ok", k8s_namespace).data["c"] == "set-by-s3"


def test_without_approval_a_destructive_step_is_skipped_and_the_cluster_is_unchanged(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(
        mark_step("s1", configmap, "a"),
        mark_step("s2", configmap, "b", destructive=True),
        mark_step("s3", configmap, "c", depends_on=("s2",)),
    )
    gate = PolicyGate(ApprovalPolicy.NON_DESTRUCTIVE, "tester@lab")
    state = _runner(case, plan, k8s_admin, gate=gate).run()
    assert state.steps["s1"].status is StepStatus.VERIFIED
    assert state.steps["s2"].status is StepStatus.SKIPPED
    assert state.steps["s3"].status is StepStatus.BLOCKED
    data = core.read_namespaced_config_map(configmap[1], configmap[0]).data
    assert "b" not in data
    assert "c" not in data


def test_the_deny_all_gate_applies_nothing_at_all(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a"), mark_step("s2", configmap, "b", destructive=True))
    state = _runner(case, plan, k8s_admin, gate=DenyAllGate()).run()
    assert {r.status for r in state.steps.values()} == {StepStatus.SKIPPED}
    assert core.read_namespaced_config_map(configmap[1], configmap[0]).data == {"seed": "1"}


def test_an_interactive_approval_records_who_approved_and_a_refusal_applies_nothing(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    from rich.console import Console

    answers = {f"Apply s1? {OPTIONS} (default n): ": "y", f"Apply s2? {OPTIONS} (default n): ": "n"}
    gate = InteractiveGate("alice@laptop", Console(file=open("/dev/null", "w")), ask=answers.__getitem__)  # noqa: SIM115
    plan = make_plan(
        mark_step("s1", configmap, "a", destructive=True), mark_step("s2", configmap, "b", destructive=True)
    )
    state = _runner(case, plan, k8s_admin, gate=gate).run()
    approval = state.steps["s1"].approval
    assert approval is not None
    assert approval.approver == "alice@laptop"
    assert approval.how == "interactive"
    assert state.steps["s2"].status is StepStatus.SKIPPED
    assert "b" not in core.read_namespaced_config_map(configmap[1], configmap[0]).data


def test_unknown_actions_are_skipped_as_not_available_and_invalid_parameters_fail_their_step_only(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    good = mark_step("s1", configmap, "a")
    unknown = good.model_copy(update={"id": "s2", "action_id": "test.no_such_action"})
    invalid = good.model_copy(update={"id": "s3", "params": {"namespace": "x", "surprise": 1}})
    state = _runner(case, make_plan(good, unknown, invalid), k8s_admin).run()
    assert state.steps["s1"].status is StepStatus.VERIFIED
    assert state.steps["s2"].status is StepStatus.SKIPPED
    assert state.steps["s2"].error_kind == "not-available"
    assert "not available in this version" in state.steps["s2"].detail
    assert state.steps["s3"].error_kind == "bad-params"
    assert "surprise" in (state.steps["s3"].error or "")


def test_independent_steps_run_in_parallel(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    steps = [mark_step(f"s{i}", configmap, f"k{i}", apply_delay=0.6) for i in range(4)]
    started = time.monotonic()
    state = _runner(case, make_plan(*steps), k8s_admin, workers=4).run()
    elapsed = time.monotonic() - started
    assert {r.status for r in state.steps.values()} == {StepStatus.VERIFIED}
    assert elapsed < 4 * 0.6


def test_a_state_file_older_than_the_log_is_brought_up_to_date_on_load(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a"))
    stale = (case.path / "plan-state.json").read_bytes() if (case.path / "plan-state.json").exists() else None
    assert stale is None
    runner = _runner(case, plan, k8s_admin)
    before_run = (case.path / "plan-state.json").read_bytes()
    runner.run()
    (case.path / "plan-state.json").write_bytes(
        before_run
    )  # as if killed before the state file was rewritten
    state = StateStore(case).load()
    assert state.steps["s1"].status is StepStatus.VERIFIED
    assert state.steps["s1"].applied == {"before": None}


def test_each_step_is_shown_as_it_lands_in_the_order_it_finished(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    import io

    from rich.console import Console

    from eksir.cli.run_progress import ProgressPrinter

    out = io.StringIO()
    plan = make_plan(
        mark_step("s1", configmap, "a"),
        mark_step("s2", ("default", "no-such-configmap"), "b", depends_on=("s1",)),
        mark_step("s3", configmap, "c", depends_on=("s2",)),
    )
    runner = Runner(
        case,
        plan,
        ctx_factory_for(k8s_admin),
        ALL,
        retry=FAST_RETRY,
        observer=ProgressPrinter(Console(file=out)),
    )
    runner.run()
    lines = [row for row in out.getvalue().splitlines() if row.startswith("  [")]
    assert [row.split(":")[0] for row in lines] == ["  [ok] s1", "  [FAILED] s2", "  [blocked] s3"]
    assert lines[2].endswith("blocked: s2 is failed")
