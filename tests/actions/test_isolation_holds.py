"""Node isolation held by two cases at once (fleet mode), on moto as a server: every ENI's groups read back.

Both cases verify; the first rollback leaves the node isolated (the ENIs move to the other case's group when
they sat in the first's) and the second still verifies; the second rollback puts every ENI back in the groups
it had before eksir and deletes both groups. A stricter case (no egress) pulls the ENIs into its own group
and hands them back on rollback; a case that tightens pulls them out of a looser case's group. The subnet
NACL cut is held the same way.
"""

from __future__ import annotations

from eksir.actions.base import ActionContext
from eksir.actions.containment.ec2_hardening import TightenIsolation
from eksir.actions.containment.ec2_isolation import IsolateInstance, IsolateInstanceParams
from eksir.actions.containment.ec2_nacl import DenySubnetNacl
from eksir.actions.containment.ec2_node import InstanceParams
from eksir.actions.containment.isolation_holds import ENI_BEFORE_TAG
from tests.actions.conftest import AwsEndpoint, boto_client, make_ctx
from tests.actions.test_ec2_node import Node, _groups_by_eni, node  # noqa: F401 (the fixture)
from tests.actions.test_node_isolation import endpoints  # noqa: F401 (the fixture)

CASE_A = "eksir-20261207-0a1b2c3d4e"
CASE_B = "eksir-20261207-f9e8d7c6b5"


def _ctx(moto: AwsEndpoint, case_id: str) -> ActionContext:
    return make_ctx(aws=lambda service: boto_client(moto, service), case_id=case_id)


def _group_id(moto: AwsEndpoint, case_id: str) -> str | None:
    found = boto_client(moto, "ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"eksir-isolation-{case_id}"]}]
    )["SecurityGroups"]
    return str(found[0]["GroupId"]) if found else None


def _eksir_tags(moto: AwsEndpoint, resource_ids: list[str]) -> list[str]:
    found = boto_client(moto, "ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": resource_ids}])
    return [t["Key"] for t in found["Tags"] if t["Key"].startswith("eksir.io/")]


def test_two_cases_isolate_one_node_and_only_the_last_rollback_restores_its_groups(
    moto: AwsEndpoint,
    node: Node,  # noqa: F811
) -> None:
    ec2, params = boto_client(moto, "ec2"), IsolateInstanceParams(instance_id=node.instance_id)
    before = _groups_by_eni(ec2, node.instance_id)
    a, b, action = _ctx(moto, CASE_A), _ctx(moto, CASE_B), IsolateInstance()
    applied_a = action.apply(a, params)
    applied_b = action.apply(b, params)
    assert {k: sorted(v) for k, v in applied_b["original_groups"].items()} == before, "not case A's group"
    assert action.verify(a, params, applied_a).ok
    assert action.verify(b, params, applied_b).ok
    gid_a = _group_id(moto, CASE_A)
    assert set(map(tuple, _groups_by_eni(ec2, node.instance_id).values())) == {(gid_a,)}

    action.rollback(a, params, applied_a)
    gid_b = _group_id(moto, CASE_B)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [gid_b] for e in node.enis}, "still isolated"
    assert _group_id(moto, CASE_A) is None
    assert action.verify(b, params, applied_b).ok
    assert not action.verify(a, params, applied_a).ok

    action.rollback(b, params, applied_b)
    assert _groups_by_eni(ec2, node.instance_id) == before
    assert _group_id(moto, CASE_B) is None
    assert _eksir_tags(moto, [node.instance_id, *node.enis]) == []


def test_a_stricter_case_pulls_the_enis_into_its_group_and_hands_them_back(
    moto: AwsEndpoint,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],  # noqa: F811
) -> None:
    ec2, action = boto_client(moto, "ec2"), IsolateInstance()
    before = _groups_by_eni(ec2, node.instance_id)
    loose = IsolateInstanceParams(instance_id=node.instance_id)
    strict = IsolateInstanceParams(instance_id=node.instance_id, keep_ssm_egress=False)
    a, b = _ctx(moto, CASE_A), _ctx(moto, CASE_B)
    applied_a = action.apply(a, loose)
    applied_b = action.apply(b, strict)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [_group_id(moto, CASE_B)] for e in node.enis}
    assert action.verify(a, loose, applied_a).ok, "a stricter group than A's own counts for A"
    assert action.verify(b, strict, applied_b).ok

    action.rollback(b, strict, applied_b)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [_group_id(moto, CASE_A)] for e in node.enis}
    assert action.verify(a, loose, applied_a).ok
    action.rollback(a, loose, applied_a)
    assert _groups_by_eni(ec2, node.instance_id) == before


def test_a_case_that_tightens_pulls_the_enis_out_of_a_looser_cases_group(
    moto: AwsEndpoint,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],  # noqa: F811
) -> None:
    ec2, params = boto_client(moto, "ec2"), IsolateInstanceParams(instance_id=node.instance_id)
    before = _groups_by_eni(ec2, node.instance_id)
    a, b = _ctx(moto, CASE_A), _ctx(moto, CASE_B)
    applied_a = IsolateInstance().apply(a, params)
    applied_b = IsolateInstance().apply(b, params)
    tight = InstanceParams(instance_id=node.instance_id)
    tightened = TightenIsolation().apply(b, tight)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [_group_id(moto, CASE_B)] for e in node.enis}
    assert TightenIsolation().verify(b, tight, tightened).ok
    assert IsolateInstance().verify(a, params, applied_a).ok

    TightenIsolation().rollback(b, tight, tightened)
    IsolateInstance().rollback(b, params, applied_b)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [_group_id(moto, CASE_A)] for e in node.enis}
    assert IsolateInstance().verify(a, params, applied_a).ok
    IsolateInstance().rollback(a, params, applied_a)
    assert _groups_by_eni(ec2, node.instance_id) == before
    assert ENI_BEFORE_TAG not in _eksir_tags(moto, list(node.enis))


def _acl_of(moto: AwsEndpoint, subnet: str) -> str:
    [acl] = boto_client(moto, "ec2").describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"]
    return str(acl["NetworkAclId"])


def _deny_acl(moto: AwsEndpoint, case_id: str) -> str | None:
    found = boto_client(moto, "ec2").describe_network_acls(
        Filters=[{"Name": "tag:Name", "Values": [f"eksir-deny-{case_id}"]}]
    )["NetworkAcls"]
    return str(found[0]["NetworkAclId"]) if found else None


def test_two_cases_cut_one_subnet_and_only_the_last_rollback_reopens_it(
    moto: AwsEndpoint,
    node: Node,  # noqa: F811
) -> None:
    params, action = InstanceParams(instance_id=node.instance_id), DenySubnetNacl()
    original = _acl_of(moto, node.subnet_id)
    a, b = _ctx(moto, CASE_A), _ctx(moto, CASE_B)
    applied_a = action.apply(a, params)
    applied_b = action.apply(b, params)
    assert applied_b["original_acls"] == {node.subnet_id: original}, "not case A's deny ACL"
    assert _acl_of(moto, node.subnet_id) == _deny_acl(moto, CASE_A)
    assert action.verify(a, params, applied_a).ok
    assert action.verify(b, params, applied_b).ok

    action.rollback(a, params, applied_a)
    assert _acl_of(moto, node.subnet_id) == _deny_acl(moto, CASE_B), "the subnet stays cut for case B"
    assert _deny_acl(moto, CASE_A) is None
    assert action.verify(b, params, applied_b).ok
    assert not action.verify(a, params, applied_a).ok

    action.rollback(b, params, applied_b)
    assert _acl_of(moto, node.subnet_id) == original
    assert _deny_acl(moto, CASE_B) is None
    assert _eksir_tags(moto, [node.subnet_id]) == []


def test_one_case_undoing_its_tightening_leaves_the_enis_sealed_for_the_other(
    moto: AwsEndpoint,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],  # noqa: F811
) -> None:
    ec2, params = boto_client(moto, "ec2"), IsolateInstanceParams(instance_id=node.instance_id)
    a, b, tight = _ctx(moto, CASE_A), _ctx(moto, CASE_B), InstanceParams(instance_id=node.instance_id)
    isolated_a = IsolateInstance().apply(a, params)
    IsolateInstance().apply(b, params)
    tightened_a = TightenIsolation().apply(a, tight)
    tightened_b = TightenIsolation().apply(b, tight)
    assert TightenIsolation().verify(b, tight, tightened_b).ok

    TightenIsolation().rollback(a, tight, tightened_a)
    assert _groups_by_eni(ec2, node.instance_id) == {e: [_group_id(moto, CASE_B)] for e in node.enis}
    assert TightenIsolation().verify(b, tight, tightened_b).ok, "case A's rollback reopened case B's seal"
    IsolateInstance().rollback(a, params, isolated_a)
    assert _group_id(moto, CASE_A) is None
    assert TightenIsolation().verify(b, tight, tightened_b).ok
