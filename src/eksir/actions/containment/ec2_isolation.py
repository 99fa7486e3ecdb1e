"""`ec2.isolate_instance`: move every ENI of the node, and of its pods, to a case-named isolation group.

Why every ENI: VPC CNI nodes carry several ENIs (pod IPs live on the secondary ones), and pods with their own
security groups use branch ENIs checked independently of the node's groups (ec2_network). Why per-ENI
`ModifyNetworkInterfaceAttribute`: `ModifyInstanceAttribute(Groups)` fails on multi-ENI instances. Why through
an allow-all group first: changing security groups does not interrupt tracked connections (EC2 user guide,
security-group-connection-tracking), so a reverse shell would survive; a flow allowed by `0.0.0.0/0` in both
directions is untracked, and an untracked flow stops when its rule goes. AWSSupport-ContainEC2Instance does
exactly this (all-access group, then the containment group). ICMP, and flows through a NAT gateway or a load
balancer, stay tracked: the opt-in subnet NACL (ec2.deny_subnet_nacl) cuts those. Egress: only tcp/443 to the
VPC's SSM interface endpoints and the S3 gateway endpoint (so capture can still run), none when strict or once
ec2.tighten_isolation runs. The original groups of each ENI are noted on the ENI itself
(`eksir.io/groups-before`) before it is first touched, so a re-run after a crash, or a second case isolating
the same node, restores the true originals, not an isolation group; several cases hold one node's isolation
as isolation_holds.py describes (the ENIs sit in the tightest holding case's group).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.aws_holds import InstanceTags, add_hold, drop_hold, target_lock
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, case_tags, require_live
from eksir.actions.containment.ec2_network import (
    egress_rules,
    find_group,
    group_rules,
    node_enis,
    rule_atoms,
    ssm_path,
    strip_rules,
)
from eksir.actions.containment.isolation_holds import (
    ENI_BEFORE_TAG,
    GROUP_PREFIX,
    MARK,
    as_tight,
    drop_notes,
    eni_tags,
    holder_groups,
    isolation_group_name,
    isolation_holders,
    looseness,
    note_eni,
    tightest,
)
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import IpPermissionTypeDef

ORIGINAL_GROUPS_TAG = "eksir.io/original-groups:"
ALLOW_ALL: list[IpPermissionTypeDef] = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
ISOLATION_WARNINGS = (
    "connections through a NAT gateway or load balancer, and ICMP, stay tracked after the group change: "
    "add the subnet NACL step (--isolate-subnet) to cut them at once",
    "the instance metadata service is not filtered by security groups: it is disabled by its own step "
    "after capture (ec2.disable_metadata)",
    "the kubelet loses the API server: the node goes NotReady and its pods are evicted after about 300 s; "
    "`kubectl exec/logs` to this node stop working",
    "managed node groups with node auto repair replace nodes that stay NotReady: disable auto repair first",
)


def describe_instance(ctx: ActionContext, instance_id: str) -> dict[str, Any]:
    """DescribeInstances for one id; raises NotFoundError when it does not exist."""
    with aws_call(f"describe instance {instance_id}"):
        reservations = ctx.aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise NotFoundError(f"EC2 instance {instance_id} does not exist")
    return dict(instances[0])


class IsolateInstanceParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    keep_ssm_egress: bool = True
    """Egress tcp/443 to the VPC's SSM interface endpoints and S3 gateway endpoint only; False: none."""
    cut_tracked: bool = True
    """Pass each ENI through an allow-all group first, so tracked connections are cut (see the docstring)."""


def group_name(ctx: ActionContext) -> str:
    return isolation_group_name(ctx.case_id)


def allow_all_name(ctx: ActionContext) -> str:
    return f"eksir-allow-all-{ctx.case_id}"


_GROUP_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GROUP_LOCKS_GUARD = threading.Lock()


def _group_lock(name: str, vpc_id: str) -> threading.Lock:
    """One lock per case group: the nodes of one case are isolated in parallel steps (an attack sequence names
    several) and share the case's groups; without it both create the group, or both add the same rule and
    the second fails with InvalidPermission.Duplicate."""
    with _GROUP_LOCKS_GUARD:
        return _GROUP_LOCKS.setdefault((name, vpc_id), threading.Lock())


def _create_group(ctx: ActionContext, name: str, vpc_id: str, purpose: str) -> dict[str, Any]:
    """Create (or reuse) a case-tagged group; raises NotFoundError when it cannot be read back."""
    with _group_lock(name, vpc_id):
        return _create_group_locked(ctx, name, vpc_id, purpose)


def _create_group_locked(ctx: ActionContext, name: str, vpc_id: str, purpose: str) -> dict[str, Any]:
    group = find_group(ctx, name, vpc_id)
    if group is None:
        with aws_call(f"create security group {name} in {vpc_id}"):
            ctx.aws("ec2").create_security_group(
                GroupName=name,
                Description=f"eksir {purpose} for case {ctx.case_id}",
                VpcId=vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": case_tags(ctx, Name=name)}],
            )
        group = find_group(ctx, name, vpc_id)
        if group is None:
            raise NotFoundError(f"security group {name} vanished right after creation")
    return group


def _set_rules(ctx: ActionContext, group: dict[str, Any], ingress: list[Any], egress: list[Any]) -> None:
    """Make a group's rules exactly `ingress` and `egress` (compared as atoms, descriptions ignored), reading
    them again under the group's lock (another step of the case may have just set them)."""
    name, vpc_id = group.get("GroupName"), group.get("VpcId")
    if not name or not vpc_id:
        _set_rules_locked(ctx, group, ingress, egress)
        return
    with _group_lock(name, vpc_id):
        _set_rules_locked(ctx, find_group(ctx, name, vpc_id) or group, ingress, egress)


def _set_rules_locked(
    ctx: ActionContext, group: dict[str, Any], ingress: list[Any], egress: list[Any]
) -> None:
    ec2, gid = ctx.aws("ec2"), group["GroupId"]
    with aws_call(f"set the rules of security group {gid}"):
        if rule_atoms(group.get("IpPermissions", [])) != rule_atoms(ingress):
            if group.get("IpPermissions"):
                ec2.revoke_security_group_ingress(
                    GroupId=gid, IpPermissions=strip_rules(group["IpPermissions"])
                )
            if ingress:
                ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ingress)
        if rule_atoms(group.get("IpPermissionsEgress", [])) != rule_atoms(egress):
            if group.get("IpPermissionsEgress"):
                ec2.revoke_security_group_egress(
                    GroupId=gid, IpPermissions=strip_rules(group["IpPermissionsEgress"])
                )
            if egress:
                ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=egress)


def desired_egress(ctx: ActionContext, vpc_id: str, keep_ssm_egress: bool) -> list[IpPermissionTypeDef]:
    return egress_rules(ssm_path(ctx, vpc_id)) if keep_ssm_egress else []


def _delete_group(ctx: ActionContext, group_id: str) -> None:
    try:
        with aws_call(f"delete security group {group_id}"):
            ctx.aws("ec2").delete_security_group(GroupId=group_id)
    except NotFoundError:
        pass


def set_groups(ctx: ActionContext, instance_id: str, eni_id: str, groups: list[str], single: bool) -> None:
    """Replace an ENI's groups. On a single-ENI instance the instance's groups are set too: the same change
    on AWS, and moto otherwise keeps reporting the launch groups on the primary ENI."""
    with aws_call(f"set the groups of {eni_id} to {' '.join(groups)}"):
        ctx.aws("ec2").modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=groups)
        if single:
            ctx.aws("ec2").modify_instance_attribute(InstanceId=instance_id, Groups=groups)


def _group_tags(group: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


def _isolation_groups(
    ctx: ActionContext, instance_id: str, vpc_id: str, enis: list[Any]
) -> dict[str, dict[str, Any]]:
    """The isolation groups that count as isolating, by id: the holding cases' groups, and any eksir isolation
    group an ENI sits in alone (one an eksir from before the per-case holds put there)."""
    cases = isolation_holders(InstanceTags(ctx, instance_id).read())
    found = {g["GroupId"]: g for g in holder_groups(ctx, vpc_id, cases).values()}
    extra = sorted({
        e["Groups"][0]["GroupId"] for e in enis
        if len(e["Groups"]) == 1 and str(e["Groups"][0].get("GroupName", "")).startswith(GROUP_PREFIX)
    } - set(found))  # fmt: skip
    if extra:
        with aws_call("read the isolation groups the ENIs sit in"):
            groups = ctx.aws("ec2").describe_security_groups(GroupIds=extra)["SecurityGroups"]
        found |= {g["GroupId"]: dict(g) for g in groups}
    return found


@register_action
class IsolateInstance(Action[IsolateInstanceParams]):
    spec = ActionSpec(
        id="ec2.isolate_instance",
        phase=Phase.CONTAINMENT,
        title="Isolate the node (every ENI, its pods' branch ENIs too) with a case security group",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribePrefixLists",
            "ec2:CreateSecurityGroup",
            "ec2:DescribeTags",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DeleteSecurityGroup",
        ),
        destructive=True,
        reversible=True,
    )
    params_type = IsolateInstanceParams

    def check(self, ctx: ActionContext, params: IsolateInstanceParams) -> CheckOutcome:
        try:
            instance = describe_instance(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        warnings = list(ISOLATION_WARNINGS)
        if not params.keep_ssm_egress:
            warnings.append("no egress at all also stops SSM Run Command: capture volatile evidence first")
        elif missing := ssm_path(ctx, instance["VpcId"]).missing:
            warnings.append(
                f"no VPC interface endpoint for {', '.join(missing)}: SSM Run Command cannot reach the "
                "isolated node; capture volatile evidence first"
            )
        cases = isolation_holders(InstanceTags(ctx, params.instance_id).read())
        held = {g["GroupId"] for g in holder_groups(ctx, instance["VpcId"], cases).values()}
        attached, branches = node_enis(ctx, params.instance_id)
        applied = ctx.case_id in cases and all(
            len(eni["Groups"]) == 1 and eni["Groups"][0]["GroupId"] in held for eni in [*attached, *branches]
        )
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} ({instance['State']['Name']}) has {len(attached)} ENI(s) and "
            f"{len(branches)} pod branch ENI(s) in {instance['VpcId']}",
            warnings=tuple(warnings),
            already_applied=applied,
        )

    def plan(self, ctx: ActionContext, params: IsolateInstanceParams) -> PlannedChange:
        instance = describe_instance(ctx, params.instance_id)
        path = ssm_path(ctx, instance["VpcId"])
        egress = path.describe() if params.keep_ssm_egress else "none"
        diff = [f"+ security group {group_name(ctx)} in {instance['VpcId']}: no ingress, egress {egress}"]
        if params.cut_tracked:
            diff.append(f"+ security group {allow_all_name(ctx)} (transient): every ENI passes through it")
        attached, branches = node_enis(ctx, params.instance_id)
        for eni in [*attached, *branches]:
            kind = " (pod branch ENI)" if eni in branches else ""
            current = " ".join(g["GroupId"] for g in eni["Groups"])
            diff += [
                f"- {eni['NetworkInterfaceId']}{kind}: {current}",
                f"+ {eni['NetworkInterfaceId']}{kind}: {group_name(ctx)}",
            ]
        return PlannedChange(
            summary=f"Isolate {params.instance_id} ({instance.get('PrivateDnsName', '')}) on every ENI",
            diff=tuple(diff),
            blast_radius=(
                f"every pod on node {instance.get('PrivateDnsName') or params.instance_id} loses "
                "network access, and the node leaves the cluster (NotReady)",
            ),
            warnings=ISOLATION_WARNINGS,
        )

    def apply(self, ctx: ActionContext, params: IsolateInstanceParams) -> dict[str, Any]:
        """Hold the isolation for this case (instance tag), make its group, then bring every ENI into the
        tightest holding case's group (isolation_holds.py), noting each ENI's groups before its first move."""
        require_live(ctx, self.spec)
        vpc_id = describe_instance(ctx, params.instance_id)["VpcId"]
        egress = desired_egress(ctx, vpc_id, params.keep_ssm_egress)
        target = InstanceTags(ctx, params.instance_id)
        with target_lock(target):
            add_hold(target, target.read(), MARK, ctx.case_id, notes={})
            group = _create_group(
                ctx, group_name(ctx), vpc_id, "isolation: no ingress, SSM endpoints or nothing"
            )
            _set_rules(ctx, group, [], egress)
            originals = self._isolate(ctx, params, group, egress, vpc_id)
        return {
            "instance_id": params.instance_id,
            "vpc_id": vpc_id,
            "security_group_id": group["GroupId"],
            "keep_ssm_egress": params.keep_ssm_egress,
            "egress": egress,
            "original_groups": originals,
        }

    def _isolate(
        self,
        ctx: ActionContext,
        params: IsolateInstanceParams,
        group: dict[str, Any],
        egress: list[Any],
        vpc_id: str,
    ) -> dict[str, list[str]]:
        """Note each ENI's original groups, then move it: straight into this case's group when it sits in a
        looser isolation group, through the allow-all passage when it is not isolated yet; an ENI already in
        a holding case's group at least as tight as ours stays."""
        attached, branches = node_enis(ctx, params.instance_id)
        isolated = _isolation_groups(ctx, params.instance_id, vpc_id, [*attached, *branches])
        tags = [t for g in isolated.values() for t in _group_tags(g).items()]
        legacy = {k[len(ORIGINAL_GROUPS_TAG) :]: v for k, v in tags if k.startswith(ORIGINAL_GROUPS_TAG)}
        originals: dict[str, list[str]] = {}
        direct, passage = [], []
        for eni in [*attached, *branches]:
            eni_id, current = eni["NetworkInterfaceId"], [g["GroupId"] for g in eni["Groups"]]
            inside = isolated.get(current[0]) if len(current) == 1 else None
            before = legacy.get(eni_id, "").split() if inside else current
            originals[eni_id] = note_eni(ctx, dict(eni), before)
            if inside is None:
                passage.append(eni)
            elif not as_tight(inside, egress):
                direct.append(eni)
        single = len(attached) == 1
        for eni in direct:
            set_groups(ctx, params.instance_id, eni["NetworkInterfaceId"], [group["GroupId"]], single)
        if passage and params.cut_tracked:
            self._move_through_passage(ctx, params, group, vpc_id, enis=passage, single=single)
        for eni in passage if not params.cut_tracked else []:
            set_groups(ctx, params.instance_id, eni["NetworkInterfaceId"], [group["GroupId"]], single)
        return originals

    def _move_through_passage(
        self,
        ctx: ActionContext,
        params: IsolateInstanceParams,
        group: dict[str, Any],
        vpc_id: str,
        *,
        enis: list[Any],
        single: bool,
    ) -> None:
        """Move the ENIs through the case's transient allow-all group, then delete it. One node at a time:
        the nodes of a case share that group, and one node's delete must not pull it from under another."""
        name = allow_all_name(ctx)
        with _group_lock(name, vpc_id):
            transit = _create_group_locked(ctx, name, vpc_id, "transient allow-all (untracks flows)")
            _set_rules_locked(ctx, transit, ALLOW_ALL, ALLOW_ALL)
            for eni in enis:
                eni_id = eni["NetworkInterfaceId"]
                set_groups(ctx, params.instance_id, eni_id, [transit["GroupId"]], single)
                set_groups(ctx, params.instance_id, eni_id, [group["GroupId"]], single)
            _delete_group(ctx, transit["GroupId"])

    def verify(
        self, ctx: ActionContext, params: IsolateInstanceParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        """Read back the holds, every ENI's groups and the rules of the holding cases' groups: this case holds
        the isolation, and every ENI is in one holding case's group alone, with no ingress and no egress
        beyond this case's recorded rules (another case's stricter group counts)."""
        gid, egress = str(applied["security_group_id"]), list(applied.get("egress", []))
        cases = isolation_holders(InstanceTags(ctx, params.instance_id).read())
        groups = holder_groups(ctx, str(applied.get("vpc_id", "")), cases) if applied.get("vpc_id") else {}
        by_id = {g["GroupId"]: g for g in groups.values()}
        attached, branches = node_enis(ctx, params.instance_id)
        observed = {
            e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]] for e in [*attached, *branches]
        }
        problems = [] if ctx.case_id in cases else [f"case {ctx.case_id} does not hold the isolation"]
        problems += [f"{eni} has {g}" for eni, g in observed.items() if len(g) != 1 or g[0] not in by_id]
        inside = sorted({g[0] for g in observed.values() if len(g) == 1 and g[0] in by_id})
        problems += [p for g in inside for p in looseness(by_id[g], egress)]
        if gid not in by_id:
            problems.append(f"isolation group {gid} is missing")
        where = sorted({g for gs in observed.values() for g in gs})
        return VerifyOutcome(
            ok=not problems and bool(observed),
            detail="; ".join(problems)
            or f"all {len(observed)} ENI(s) of {params.instance_id} are isolated in {', '.join(where)} "
            f"(held by {len(cases)} case(s))",
            observed={
                "enis": observed,
                "held_by": cases,
                "rules": group_rules(ctx, sorted(set(where) | {gid})),
            },
        )

    def rollback(self, ctx: ActionContext, params: IsolateInstanceParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold. Other holders left: the ENIs in this case's group go to the tightest
        remaining holder's group. None left: each ENI goes back to its noted groups (the record's where the
        note is gone; ENIs gone are skipped). Then this case's groups are deleted."""
        require_live(ctx, self.spec)
        target = InstanceTags(ctx, params.instance_id)
        gid, vpc_id = str(applied["security_group_id"]), str(applied.get("vpc_id", ""))
        with target_lock(target):
            drop_hold(target, MARK, ctx.case_id)
            others = isolation_holders(target.read())
            if others:
                self._hand_over(ctx, params, gid, vpc_id, others)
            else:
                self._restore(ctx, params, applied)
                late = isolation_holders(target.read())
                if late:  # a case isolated the node between our read and the restore: its isolation stays
                    self._hand_over(ctx, params, None, vpc_id, late)
        attached, branches = node_enis(ctx, params.instance_id)
        if not any(gid in {g["GroupId"] for g in e["Groups"]} for e in [*attached, *branches]):
            _delete_group(ctx, gid)  # kept while it still isolates ENIs no other holder's group could take
        transit = find_group(ctx, allow_all_name(ctx), vpc_id)
        if transit is not None:
            _delete_group(ctx, transit["GroupId"])

    def _hand_over(
        self,
        ctx: ActionContext,
        params: IsolateInstanceParams,
        gid: str | None,
        vpc_id: str,
        cases: list[str],
    ) -> None:
        """Move the ENIs in `gid` (every ENI when None) into the tightest remaining holder's group; when no
        such group exists the ENIs stay where they are (still isolated) and `gid` cannot be deleted."""
        heir = tightest(holder_groups(ctx, vpc_id, cases).values())
        if heir is None:
            return
        attached, branches = node_enis(ctx, params.instance_id)
        for eni in [*attached, *branches]:
            current = [g["GroupId"] for g in eni["Groups"]]
            if current != [heir["GroupId"]] and (gid is None or current == [gid]):
                set_groups(ctx, params.instance_id, eni["NetworkInterfaceId"], [heir["GroupId"]],
                            single=len(attached) == 1 and eni in attached)  # fmt: skip

    def _restore(self, ctx: ActionContext, params: IsolateInstanceParams, applied: dict[str, Any]) -> None:
        """Put every ENI back in its noted groups (the record's where the note is gone) and drop the notes."""
        recorded = {k: list(v) for k, v in dict(applied.get("original_groups", {})).items() if v}
        attached, branches = node_enis(ctx, params.instance_id)
        known = {e["NetworkInterfaceId"]: e for e in [*attached, *branches]}
        with aws_call("find the recorded network interfaces"):
            for eni in ctx.aws("ec2").describe_network_interfaces(
                Filters=[{"Name": "network-interface-id", "Values": sorted(recorded) or ["none"]}]
            )["NetworkInterfaces"]:
                known.setdefault(eni["NetworkInterfaceId"], eni)
        single_id = attached[0]["NetworkInterfaceId"] if len(attached) == 1 else None
        noted = []
        for eni_id, eni in known.items():
            note = eni_tags(dict(eni)).get(ENI_BEFORE_TAG)
            groups = note.split() if note else recorded.get(eni_id)
            if groups:
                set_groups(ctx, params.instance_id, eni_id, groups, single=eni_id == single_id)
            if note is not None:
                noted.append(eni_id)
        drop_notes(ctx, noted)
