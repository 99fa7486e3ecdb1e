"""The state file is the whole RunState, byte for byte, however many transitions reused cached dumps."""

from __future__ import annotations

import orjson

from eksir.engine import StateStore, StepStatus
from eksir.store import CaseHandle
from tests.engine.conftest import make_plan, mark_step


def test_the_state_file_equals_a_full_dump_after_every_transition(case: CaseHandle) -> None:
    plan = make_plan(
        mark_step("s1", ("default", "a"), "k1"),
        mark_step("s2", ("default", "b"), "k2", depends_on=("s1",)),
        mark_step("s3", ("default", "c"), "k3"),
    )
    store = StateStore(case)
    state = store.record_plan(plan, "case-1")
    for step_id, status in [
        ("s1", StepStatus.CHECKED),
        ("s3", StepStatus.SKIPPED),
        ("s1", StepStatus.APPLIED),
        ("s2", StepStatus.CHECKED),
        ("s1", StepStatus.VERIFIED),
    ]:
        record = state.steps[step_id].model_copy(update={"status": status})
        store.transition(state, record, note={"why": step_id})
        written = orjson.loads(store.path.read_bytes())
        assert written == state.model_dump(mode="json")
        assert written["steps"][step_id]["status"] == status.value
    assert StateStore(case).load().steps["s1"].status is StepStatus.VERIFIED
