"""Per-case keys of shared node marks: every case id eksir makes fits a Kubernetes key; others are refused.

No API server needed: the key is computed before anything is read or written (the lab tests in
test_k8s_node.py and test_node_disruption.py show the marks themselves on a real kube-apiserver).
"""

from __future__ import annotations

import re

import pytest

from eksir.actions.containment.k8s_node import CORDON, INVESTIGATION
from eksir.actions.containment.node_disruption import HOLD
from eksir.actions.containment.shared_marks import SharedMark, case_key
from eksir.errors import BadInputError
from eksir.store.case_store import case_id_for
from tests.factories import make_finding

# Kubernetes' own rule for a qualified name (apimachinery validation.IsQualifiedName).
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED = re.compile(rf"^{_PREFIX}/{_NAME}$")


def _valid_key(key: str) -> bool:
    prefix, _, name = key.partition("/")
    return bool(_QUALIFIED.match(key)) and len(prefix) <= 253 and len(name) <= 63


@pytest.mark.parametrize("mark", [INVESTIGATION, CORDON, HOLD], ids=lambda m: m.hold_prefix)
def test_every_case_id_eksir_makes_gives_a_valid_key_for_every_mark(mark: SharedMark) -> None:
    ids = [case_id_for(make_finding()), case_id_for(make_finding(id="x" * 200, arn=None))]
    ids.append("eksir-" + "a" * 57)  # the longest that fits: 63 characters
    for case_id in ids:
        key = mark.key(case_id)
        assert _valid_key(key), key
        assert key.endswith("/" + case_id)


@pytest.mark.parametrize("bad", ["eksir-" + "a" * 58, "", "-eksir", "eksir-", "case id", "a/b", "é"])
def test_a_case_id_that_cannot_be_a_key_is_a_bad_input_error_naming_the_rule(bad: str) -> None:
    with pytest.raises(BadInputError, match="1-63 letters, digits"):
        case_key("case.eksir.io", bad)
