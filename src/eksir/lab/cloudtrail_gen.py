"""CloudTrail records and log files shaped like a real trail's, for the lab's hunt to search.

The hunt must find the attacker's calls among ordinary traffic, so both are generated here with the fields a
real trail writes (eventVersion 1.09, a `userIdentity` per principal type, tlsDetails, requestID, ...), and
written in the layout a trail delivers to S3: `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/
<acct>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 chars>.json.gz`, each file `{"Records": [...]}`.
Everything random comes from a seeded `random.Random`, so a lab is reproducible given its seed.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import string
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eksir.lab.aws_seed import AwsInventory, NodeInstance, RoleRef

EVENT_VERSION = "1.09"
DELIVERY_MINUTES = 5
TLS_CIPHER = "TLS_AES_128_GCM_SHA256"
KEY_PATTERN = re.compile(
    r"^AWSLogs/(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/\d{4}/\d{2}/\d{2}/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)


@dataclass(frozen=True)
class Principal:
    """A caller as CloudTrail's `userIdentity` block describes it, plus where its calls come from."""

    kind: str  # IAMUser | AssumedRole | AWSService | WebIdentityUser | Root
    account_id: str
    source_ip: str
    user_agent: str
    arn: str = ""
    principal_id: str = ""
    access_key_id: str = ""
    user_name: str = ""
    issuer_arn: str = ""
    issuer_principal_id: str = ""
    session_created: datetime | None = None
    ec2_role_delivery: bool = False
    web_identity_provider: str = ""
    invoked_by: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def user_identity(self) -> dict[str, Any]:
        """The `userIdentity` object a real trail writes for this kind of principal."""
        if self.kind == "AWSService":
            return {"type": "AWSService", "invokedBy": self.invoked_by}
        if self.kind == "WebIdentityUser":
            return {
                "type": "WebIdentityUser",
                "principalId": self.principal_id,
                "userName": self.user_name,
                "identityProvider": self.web_identity_provider,
            }
        identity: dict[str, Any] = {
            "type": self.kind,
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account_id,
            "accessKeyId": self.access_key_id,
        }
        if self.kind == "IAMUser":
            identity["userName"] = self.user_name
        if self.kind == "AssumedRole":
            identity["sessionContext"] = self._session_context()
        return identity

    def _session_context(self) -> dict[str, Any]:
        created = self.session_created or datetime.now(UTC)
        context: dict[str, Any] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": self.issuer_principal_id,
                "arn": self.issuer_arn,
                "accountId": self.account_id,
                "userName": self.issuer_arn.rsplit("/", 1)[-1],
            },
            "attributes": {"creationDate": iso(created), "mfaAuthenticated": "false"},
        }
        if self.web_identity_provider:
            context["webIdFederationData"] = {
                "federatedProvider": self.web_identity_provider,
                "attributes": {},
            }
        else:
            context["webIdFederationData"] = {}
        if self.ec2_role_delivery:
            context["ec2RoleDelivery"] = "2.0"
        return context


def iso(moment: datetime) -> str:
    """CloudTrail's eventTime format: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (reproducible, unlike uuid4())."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def host_for(event_source: str, region: str) -> str:
    """The endpoint host a client talks to for this service (IAM is global; the rest are regional)."""
    if event_source == "iam.amazonaws.com":
        return event_source
    return f"{event_source.split('.', 1)[0]}.{region}.amazonaws.com"


def api_call(
    principal: Principal,
    when: datetime,
    event_source: str,
    event_name: str,
    *,
    region: str,
    rng: random.Random,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    read_only: bool = False,
    resources: list[dict[str, Any]] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    data_event: bool = False,
) -> dict[str, Any]:
    """One CloudTrail record, with the fields and field order of a real management (or S3 data) event."""
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": principal.user_identity(),
        "eventTime": iso(when),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1" if event_source == "iam.amazonaws.com" else region,
        "sourceIPAddress": principal.invoked_by or principal.source_ip,
        "userAgent": principal.invoked_by or principal.user_agent,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or ""
    record["requestParameters"] = request
    record["responseElements"] = response
    record["requestID"] = random_uuid(rng)
    record["eventID"] = random_uuid(rng)
    record["readOnly"] = read_only
    if resources:
        record["resources"] = resources
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = not data_event
    record["recipientAccountId"] = principal.account_id
    record["eventCategory"] = "Data" if data_event else "Management"
    if principal.kind != "AWSService":
        record["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": TLS_CIPHER,
            "clientProvidedHostHeader": host_for(event_source, region),
        }
    return record


def _delivery_slot(event_time: str) -> datetime:
    """The 5-minute delivery window a record falls in; the file is stamped with the window's end."""
    moment = datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    floored = moment.replace(second=0, microsecond=0, minute=moment.minute - moment.minute % DELIVERY_MINUTES)
    return floored + timedelta(minutes=DELIVERY_MINUTES)


def object_key(account_id: str, region: str, slot: datetime, rng: random.Random) -> str:
    """The S3 key a trail uses for a log file delivered at `slot`."""
    suffix = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(16))
    stamp = slot.strftime("%Y%m%dT%H%MZ")
    return (
        f"AWSLogs/{account_id}/CloudTrail/{region}/{slot:%Y/%m/%d}/"
        f"{account_id}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"
    )


def log_files(
    records: list[dict[str, Any]], account_id: str, region: str, rng: random.Random
) -> dict[str, bytes]:
    """Group records into delivery files: {S3 key: gzipped `{"Records": [...]}`}, records in time order."""
    by_slot: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: str(r["eventTime"])):
        by_slot[_delivery_slot(str(record["eventTime"]))].append(record)
    files: dict[str, bytes] = {}
    for slot in sorted(by_slot):
        body = json.dumps({"Records": by_slot[slot]}, separators=(",", ":")).encode()
        files[object_key(account_id, region, slot, rng)] = gzip.compress(body, mtime=0)
    return files


def write_tree(files: dict[str, bytes], root: Path) -> list[Path]:
    """Write the log files under `root` with the same relative keys as in S3."""
    written = []
    for key, body in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        written.append(path)
    return written


def upload_tree(s3: Any, bucket: str, files: dict[str, bytes]) -> None:
    """Put each log file into the trail bucket under its key (raises botocore errors unchanged)."""
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def read_records(root: Path) -> list[dict[str, Any]]:
    """Every record in a local CloudTrail tree, for tests and for checks after seeding."""
    records: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.json.gz")):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    return records


@dataclass(frozen=True)
class RoutineCall:
    """One kind of ordinary call a principal makes day to day (the haystack the hunt searches)."""

    event_source: str
    event_name: str
    read_only: bool = True
    request: dict[str, Any] | None = None
    data_event: bool = False
    resources: list[dict[str, Any]] | None = None


def background_records(
    routines: list[tuple[Principal, list[RoutineCall]]],
    *,
    start: datetime,
    end: datetime,
    region: str,
    rng: random.Random,
    bursts: int = 60,
) -> list[dict[str, Any]]:
    """Ordinary traffic between `start` and `end`: bursts of a few calls by one principal at a time.

    Real trails show work in bursts (a deploy, a kubectl session, the CNI reconciling), which is why the
    records cluster instead of being spread evenly; it also keeps the number of delivery files realistic.
    """
    records: list[dict[str, Any]] = []
    span = max((end - start).total_seconds(), 1.0)
    for _ in range(bursts):
        principal, calls = rng.choice(routines)
        moment = start + timedelta(seconds=rng.uniform(0, span))
        for _ in range(rng.randint(2, 6)):
            call = rng.choice(calls)
            moment += timedelta(seconds=rng.randint(1, 40))
            if moment >= end:
                break
            records.append(
                api_call(
                    principal,
                    moment,
                    call.event_source,
                    call.event_name,
                    region=region,
                    rng=rng,
                    request=call.request,
                    read_only=call.read_only,
                    data_event=call.data_event,
                    resources=call.resources,
                )
            )
    return records


def routines(inv: AwsInventory) -> list[tuple[Principal, list[RoutineCall]]]:
    """The ordinary principals of the lab account and what they do every day."""
    describe_cluster = RoutineCall("eks.amazonaws.com", "DescribeCluster", request={"name": inv.cluster_name})
    return [
        _human_routine(inv, describe_cluster),
        _deploy_routine(inv, describe_cluster),
        *(_node_routine(inv, node) for node in inv.nodes),
        _service_routine(inv),
    ]


def _human_routine(inv: AwsInventory, describe_cluster: RoutineCall) -> tuple[Principal, list[RoutineCall]]:
    """Alice, an engineer with an IAM user and the AWS CLI, looking around."""
    alice = inv.users["alice"]
    human = Principal(
        kind="IAMUser",
        account_id=inv.account_id,
        source_ip="198.51.100.23",
        user_agent="aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 lang/python#3.11.9",
        arn=alice.arn,
        principal_id=alice.user_id,
        access_key_id=alice.access_key_id,
        user_name=alice.user_name,
    )
    return (
        human,
        [
            describe_cluster,
            RoutineCall(
                "ec2.amazonaws.com", "DescribeInstances", request={"filterSet": {}, "instancesSet": {}}
            ),
            RoutineCall("s3.amazonaws.com", "ListBuckets", request={"Host": "s3.amazonaws.com"}),
            RoutineCall("iam.amazonaws.com", "ListUsers"),
            RoutineCall("cloudtrail.amazonaws.com", "LookupEvents", request={"maxResults": 50}),
        ],
    )


def _deploy_routine(inv: AwsInventory, describe_cluster: RoutineCall) -> tuple[Principal, list[RoutineCall]]:
    """The CI deploy role's GitHub Actions sessions, pushing images."""
    deploy = inv.roles["github-actions-deploy"]
    return (
        _session(deploy, "GitHubActions", inv.account_id, "140.82.112.4"),
        [
            describe_cluster,
            RoutineCall("ecr.amazonaws.com", "GetAuthorizationToken"),
            RoutineCall(
                "ecr.amazonaws.com", "PutImage", read_only=False, request={"repositoryName": "payments-api"}
            ),
        ],
    )


def _node_routine(inv: AwsInventory, node: NodeInstance) -> tuple[Principal, list[RoutineCall]]:
    """A worker node's instance-role session: the VPC CNI and image pulls."""
    node_calls = [
        RoutineCall("ec2.amazonaws.com", "DescribeNetworkInterfaces", request={"filterSet": {}}),
        RoutineCall("ec2.amazonaws.com", "AssignPrivateIpAddresses", read_only=False),
        RoutineCall("ecr.amazonaws.com", "GetAuthorizationToken"),
    ]
    return _session(inv.node_role, node.instance_id, inv.account_id, node.private_ip), node_calls


def _service_routine(inv: AwsInventory) -> tuple[Principal, list[RoutineCall]]:
    """EC2 itself refreshing the node role's credentials for the first node."""
    service = Principal(
        kind="AWSService",
        account_id=inv.account_id,
        source_ip="",
        user_agent="",
        invoked_by="ec2.amazonaws.com",
    )
    refresh = RoutineCall(
        "sts.amazonaws.com",
        "AssumeRole",
        request={"roleArn": inv.node_role.arn, "roleSessionName": inv.nodes[0].instance_id},
    )
    return service, [refresh]


def _session(role: RoleRef, session: str, account: str, source_ip: str) -> Principal:
    """A routine role session; its ASIA key id is derived from the session name, so it is stable."""
    key = "".join(random.Random(session).choices(string.ascii_uppercase + string.digits, k=16))
    return Principal(
        kind="AssumedRole",
        account_id=account,
        source_ip=source_ip,
        user_agent="aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64",
        arn=f"arn:aws:sts::{account}:assumed-role/{role.name}/{session}",
        principal_id=f"{role.role_id}:{session}",
        access_key_id=f"ASIA{key}",
        issuer_arn=role.arn,
        issuer_principal_id=role.role_id,
        ec2_role_delivery=session.startswith("i-"),
    )
