"""Node isolation held by several cases at once: which case's isolation group the ENIs sit in, and who noted
their original groups.

Why: each case isolates into its own group (`eksir-isolation-<case-id>`, so its rules and its tightening are
its own). When a second case isolated a node the first had isolated, it used to record the first case's group
as the "original" groups and move the ENIs into its own; the first case's verify then failed, its rollback put
the ENIs back into their real groups (unisolating the node under the second case) and deleted its group, and
the second case's rollback then tried to restore a deleted group. Now:

- each case holds the isolation by `isolation` in its instance tag `eksir.io/hold/<case-id>` (aws_holds.py);
- each ENI's groups before eksir's first case are noted on the ENI itself (`eksir.io/groups-before`),
  before the ENI is first moved, and kept by every later case (an instance can have many ENIs and a tag value
  only 256 characters, so one note per ENI);
- the ENIs sit in the isolation group of one holding case, the tightest (fewest egress rules): a case whose
  rules are no tighter than where the ENIs already are leaves them there, a tighter one moves them straight
  into its own group (never through the allow-all passage: they are isolated already);
- verify accepts any holding case's group that is at least as tight as the case's own rules;
- a rollback that leaves other holders hands the ENIs sitting in its group to the tightest remaining holder's
  group and deletes its own; the last one restores the noted groups. The order of calls against a concurrent
  apply is the one aws_holds.py describes (remove own hold, read the holds, act, read them again).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eksir.actions.base import ActionContext
from eksir.actions.containment.aws_holds import MAX_TAGS, holders
from eksir.actions.containment.ec2_network import open_to_anywhere, rule_atoms
from eksir.clients.aws import aws_call
from eksir.errors import RefusedError

MARK = "isolation"
ENI_BEFORE_TAG = "eksir.io/groups-before"
GROUP_PREFIX = "eksir-isolation-"


def isolation_group_name(case_id: str) -> str:
    return f"{GROUP_PREFIX}{case_id}"


def case_of(group: dict[str, Any]) -> str:
    return str(group.get("GroupName", ""))[len(GROUP_PREFIX) :]


def holder_groups(ctx: ActionContext, vpc_id: str, cases: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The existing isolation groups of these cases in the VPC, by case id."""
    names = [isolation_group_name(c) for c in cases]
    if not names:
        return {}
    with aws_call(f"find the isolation groups of {len(names)} case(s)"):
        found = ctx.aws("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": names}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["SecurityGroups"]
    return {case_of(dict(g)): dict(g) for g in found}


def as_tight(group: dict[str, Any], egress: list[Any]) -> bool:
    """No ingress, nothing open to anywhere, and no egress beyond `egress` (the case's own rules)."""
    out = group.get("IpPermissionsEgress") or []
    return (
        not group.get("IpPermissions") and not open_to_anywhere(out) and rule_atoms(out) <= rule_atoms(egress)
    )


def looseness(group: dict[str, Any], egress: list[Any]) -> list[str]:
    """Why `group` is not as tight as `egress` allows (empty when it is), for verify's detail."""
    gid, out = group["GroupId"], group.get("IpPermissionsEgress") or []
    problems = [f"{gid} allows ingress"] if group.get("IpPermissions") else []
    if open_to_anywhere(out):
        problems.append(f"{gid} is open to anywhere")
    elif not rule_atoms(out) <= rule_atoms(egress):
        problems.append(f"{gid} egress goes beyond the isolation rules")
    return problems


def tightest(groups: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The group with the fewest egress rules (ties: by name, so every case picks the same)."""
    ranked = sorted(
        groups, key=lambda g: (len(rule_atoms(g.get("IpPermissionsEgress") or [])), g.get("GroupName", ""))
    )
    return ranked[0] if ranked else None


def eni_tags(eni: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet") or []}


def note_eni(ctx: ActionContext, eni: dict[str, Any], groups: list[str]) -> list[str]:
    """The ENI's noted original groups; writes `groups` as the note when there is none yet."""
    tags = eni_tags(eni)
    if ENI_BEFORE_TAG in tags:
        return tags[ENI_BEFORE_TAG].split()
    eni_id = eni["NetworkInterfaceId"]
    if not groups:
        return []  # nothing known to note (an ENI found isolated without any record): the case record decides
    if len(tags) >= MAX_TAGS:
        raise RefusedError(f"{eni_id} has {MAX_TAGS} tags: no room to note its groups; remove unused tags")
    with aws_call(f"note the groups of {eni_id}"):
        ctx.aws("ec2").create_tags(
            Resources=[eni_id], Tags=[{"Key": ENI_BEFORE_TAG, "Value": " ".join(groups)}]
        )
    return groups


def drop_notes(ctx: ActionContext, eni_ids: list[str]) -> None:
    if eni_ids:
        with aws_call(f"drop the group notes of {len(eni_ids)} ENI(s)"):
            ctx.aws("ec2").delete_tags(Resources=eni_ids, Tags=[{"Key": ENI_BEFORE_TAG}])


def isolation_holders(tags: dict[str, str]) -> list[str]:
    return holders(tags, MARK)
