"""Engine test fixtures: a case, real ConfigMaps in the lab's kube-apiserver, a moto server for SNS/SQS.

Why our own moto fixture: the engine's notification tests only need SNS and SQS, and a session-scoped
ThreadedMotoServer here keeps them independent of the lab's seeding fixtures that others are changing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.actions.base import ActionContext, Phase
from eksir.engine import RetryPolicy
from eksir.lab.moto_server import AwsEndpoint, InProcessMoto
from eksir.playbooks.plan import Plan, PlanStep
from eksir.store import CaseHandle, CaseStore
from tests.engine import cm_actions
from tests.factories import FIRST_SEEN, make_finding

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, verify_attempts=2)
RAW = b'{"detail-type": "GuardDuty Finding"}\n'


@pytest.fixture
def case(tmp_path: Path) -> CaseHandle:
    handle, _ = CaseStore(tmp_path / "cases", actor="tester@lab").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    return handle


@pytest.fixture
def core(k8s_admin: ApiClient) -> CoreV1Api:
    return CoreV1Api(k8s_admin)


@pytest.fixture
def configmap(core: CoreV1Api, k8s_namespace: str) -> tuple[str, str]:
    cm_actions.make_configmap(core, k8s_namespace, "target")
    return k8s_namespace, "target"


def ctx_factory_for(api: ApiClient, case_id: str = "case-test") -> Callable[[], ActionContext]:
    def no_aws(service: str) -> Any:
        raise AssertionError(f"test actions use no AWS ({service})")

    def factory() -> ActionContext:
        return ActionContext(case_id=case_id, aws=no_aws, k8s=lambda: api, dry_run=False)

    return factory


def mark_step(
    step_id: str,
    target: tuple[str, str],
    key: str,
    *,
    depends_on: tuple[str, ...] = (),
    destructive: bool = False,
    **extra: Any,
) -> PlanStep:
    namespace, name = target
    return PlanStep(
        id=step_id,
        action_id="test.mark_configmap_destructive" if destructive else "test.mark_configmap",
        params={"namespace": namespace, "name": name, "key": key, "value": f"set-by-{step_id}", **extra},
        depends_on=depends_on,
        requires_approval=destructive,
        phase=Phase.CONTAINMENT if destructive else Phase.EVIDENCE,
        rationale=f"test step {step_id}",
    )


def make_plan(*steps: PlanStep) -> Plan:
    return Plan(playbook="test", finding_id="f-1", created_at=FIRST_SEEN, steps=steps)


@pytest.fixture(scope="session")
def engine_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoint]:
    with InProcessMoto(tmp_path_factory.mktemp("moto")) as server:
        yield server.endpoint
