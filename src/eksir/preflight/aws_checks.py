"""The AWS side of the doctor: who eksir runs as, the cluster and its audit log, the IAM permissions the
actions declare, SSM on the nodes, the trail, and the evidence bucket's Object Lock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from eksir.clients.aws import AwsClients, aws_call
from eksir.errors import EksirError, NotFoundError
from eksir.preflight.result import CheckResult, failed, passed, skipped

_ASSUMED_ROLE = re.compile(r"^arn:(?P<part>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")
_SIMULATE_BATCH = 100


def identity(aws: AwsClients) -> tuple[CheckResult, str | None]:
    """The caller's ARN (STS GetCallerIdentity): nothing else works without it."""
    try:
        with aws_call("read the caller's identity (sts:GetCallerIdentity)"):
            arn = str(aws("sts").get_caller_identity()["Arn"])
    except EksirError as exc:
        fix = "configure AWS credentials (AWS_PROFILE, or the environment) for the responder's role"
        return failed("aws identity", exc.message, fix), None
    return passed("aws identity", arn), arn


def principal_arn(aws: AwsClients, caller_arn: str) -> str:
    """The IAM ARN policies attach to: an assumed-role session's role (with its path), else the caller."""
    found = _ASSUMED_ROLE.match(caller_arn)
    if not found:
        return caller_arn
    try:
        with aws_call(f"read role {found['role']}"):
            return str(aws("iam").get_role(RoleName=found["role"])["Role"]["Arn"])
    except EksirError:
        return f"arn:{found['part']}:iam::{found['account']}:role/{found['role']}"


def cluster(aws: AwsClients, name: str) -> tuple[CheckResult, dict[str, Any] | None]:
    try:
        with aws_call(f"describe EKS cluster {name}"):
            found: dict[str, Any] = dict(aws("eks").describe_cluster(name=name)["cluster"])
    except EksirError as exc:
        return failed(
            "eks cluster", exc.message, "check the cluster name and region; allow eks:DescribeCluster"
        ), None
    status = found.get("status", "unknown")
    access = found.get("resourcesVpcConfig") or {}
    where = "public endpoint" if access.get("endpointPublicAccess", True) else "private endpoint only"
    detail = f"{name}: {status}, {where}, Kubernetes {found.get('version', '?')}"
    if status != "ACTIVE":
        return failed("eks cluster", detail, "wait for the cluster to be ACTIVE"), found
    return passed("eks cluster", detail), found


def audit_logging(found: dict[str, Any] | None) -> CheckResult:
    """The control plane's audit log is what the hunt reads for Kubernetes; off means blind."""
    if found is None:
        return skipped("audit logging", "the cluster could not be read")
    enabled = {
        kind
        for entry in (found.get("logging") or {}).get("clusterLogging") or []
        if entry.get("enabled")
        for kind in entry.get("types") or []
    }
    if "audit" in enabled:
        return passed("audit logging", "control plane audit log enabled (CloudWatch Logs)")
    name = found.get("name", "CLUSTER")
    fix = (
        f"aws eks update-cluster-config --name {name} --logging "
        '\'{"clusterLogging":[{"types":["audit"],"enabled":true}]}\''
    )
    return failed(
        "audit logging", "the control plane audit log is off: the hunt cannot see Kubernetes calls", fix
    )


def iam_permissions(aws: AwsClients, principal: str, actions: Sequence[str]) -> CheckResult:
    """IAM SimulatePrincipalPolicy for every action eksir declares (`eksir permissions`)."""
    denied: list[str] = []
    try:
        for start in range(0, len(actions), _SIMULATE_BATCH):
            batch = list(actions[start : start + _SIMULATE_BATCH])
            with aws_call(f"simulate {principal}'s policies"):
                results = aws("iam").simulate_principal_policy(PolicySourceArn=principal, ActionNames=batch)
            denied += [
                r["EvalActionName"] for r in results["EvaluationResults"] if r["EvalDecision"] != "allowed"
            ]
    except EksirError as exc:
        return skipped(
            "iam permissions", f"could not simulate ({exc.message}); allow iam:SimulatePrincipalPolicy"
        )
    if denied:
        shown = ", ".join(sorted(denied)[:12]) + (" ..." if len(denied) > 12 else "")
        fix = "attach the policy `eksir permissions` prints to the responder's role"
        return failed("iam permissions", f"{len(denied)} of {len(actions)} actions denied: {shown}", fix)
    return passed("iam permissions", f"all {len(actions)} actions allowed for {principal}")


def ssm_registration(aws: AwsClients, instance_ids: Sequence[str]) -> CheckResult:
    """Volatile capture and container pause run through SSM: each node must be a managed instance."""
    if not instance_ids:
        return skipped("ssm on nodes", "no EC2-backed nodes found")
    try:
        with aws_call("list SSM managed instances"):
            pages = (
                aws("ssm")
                .get_paginator("describe_instance_information")
                .paginate(Filters=[{"Key": "InstanceIds", "Values": list(instance_ids)}])
            )
            online = {
                info["InstanceId"]
                for page in pages
                for info in page["InstanceInformationList"]
                if info.get("PingStatus") == "Online"
            }
    except EksirError as exc:
        return skipped("ssm on nodes", f"could not list managed instances ({exc.message})")
    missing = sorted(set(instance_ids) - online)
    if missing:
        fix = (
            "attach AmazonSSMManagedInstanceCore to the node role and check the agent "
            "(Bottlerocket: its control container)"
        )
        return failed(
            "ssm on nodes",
            f"{len(missing)} of {len(instance_ids)} nodes not online in SSM: {', '.join(missing)}",
            fix,
        )
    return passed("ssm on nodes", f"all {len(instance_ids)} nodes online in SSM")


def trail(aws: AwsClients) -> CheckResult:
    """A logging trail and a reachable bucket: the hunt's source of AWS API calls."""
    try:
        with aws_call("list CloudTrail trails"):
            trails = aws("cloudtrail").describe_trails()["trailList"]
        logging = []
        for found in trails:
            with aws_call(f"read trail status {found['Name']}"):
                if aws("cloudtrail").get_trail_status(Name=found["TrailARN"]).get("IsLogging"):
                    logging.append(found)
    except EksirError as exc:
        return skipped("cloudtrail", f"could not read the trails ({exc.message})")
    if not logging:
        return failed(
            "cloudtrail", "no trail is logging", "create a multi-region trail (or check the org trail)"
        )
    first = logging[0]
    try:
        with aws_call(f"reach the trail's bucket {first.get('S3BucketName')}"):
            aws("s3").head_bucket(Bucket=first["S3BucketName"])
    except (EksirError, KeyError) as exc:
        detail = exc.message if isinstance(exc, EksirError) else "the trail names no bucket"
        return failed(
            "cloudtrail",
            f"trail {first['Name']} logs, but its bucket is not readable: {detail}",
            "allow s3:ListBucket and s3:GetObject on the trail bucket",
        )
    return passed("cloudtrail", f"trail {first['Name']} is logging to s3://{first['S3BucketName']}")


def evidence_bucket(aws: AwsClients, bucket: str | None) -> CheckResult:
    """Evidence kept where nobody, the attacker included, can delete it: Object Lock on the bucket."""
    if not bucket:
        return skipped(
            "evidence bucket", "no --evidence-bucket given: volatile capture has nowhere to upload"
        )
    try:
        with aws_call(f"read Object Lock of s3://{bucket}"):
            config = aws("s3").get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except NotFoundError as exc:
        return failed(
            "evidence bucket", f"s3://{bucket}: {exc.message}", "create the bucket with Object Lock enabled"
        )
    except EksirError as exc:
        if "ObjectLockConfigurationNotFound" in exc.message or "object lock" in exc.message.lower():
            return failed(
                "evidence bucket",
                f"s3://{bucket} has no Object Lock",
                "create the evidence bucket with Object Lock (it cannot be added later to every bucket)",
            )
        return skipped("evidence bucket", f"could not read s3://{bucket} ({exc.message})")
    if config.get("ObjectLockEnabled") != "Enabled":
        return failed(
            "evidence bucket",
            f"s3://{bucket} has no Object Lock",
            "enable Object Lock on the evidence bucket",
        )
    return passed("evidence bucket", f"s3://{bucket} has Object Lock")
