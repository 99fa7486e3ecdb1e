"""moto as a real HTTP server, the AWS seeding on it, and the CloudTrail file layout."""

from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from eksir.errors import LabError
from eksir.lab import aws_seed, eks_authenticator, iam_enforcement, processes
from eksir.lab.cloudtrail_gen import KEY_PATTERN, Principal, api_call, log_files, read_records, write_tree
from eksir.lab.moto_server import AwsEndpoint, spawn_detached

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def inventory(moto_server: AwsEndpoint) -> aws_seed.AwsInventory:
    return aws_seed.seed_all(moto_server)


def test_boto3_reaches_moto_over_http_by_endpoint_url_alone(moto_server: AwsEndpoint) -> None:
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="endpoint-check")
    assert moto_server.url.startswith("http://127.0.0.1:")
    assert "endpoint-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_every_worker_node_is_an_instance_in_the_node_group_asg(
    moto_server: AwsEndpoint,
    inventory: aws_seed.AwsInventory,
) -> None:
    group = moto_server.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[inventory.asg_name]
    )["AutoScalingGroups"][0]
    assert {i["InstanceId"] for i in group["Instances"]} == {n.instance_id for n in inventory.nodes}
    reservations = moto_server.client("ec2").describe_instances(
        InstanceIds=[n.instance_id for n in inventory.nodes]
    )
    lifecycles = [
        i.get("InstanceLifecycle", "normal") for r in reservations["Reservations"] for i in r["Instances"]
    ]
    assert sorted(lifecycles) == ["normal", "normal", "spot"]
    assert len({n.az for n in inventory.nodes}) == 3


def test_the_irsa_role_trusts_the_oidc_provider_made_from_the_cluster_issuer(
    moto_server: AwsEndpoint,
    inventory: aws_seed.AwsInventory,
) -> None:
    iam = moto_server.client("iam")
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=inventory.oidc_provider_arn)
    issuer = moto_server.client("eks").describe_cluster(name=inventory.cluster_name)["cluster"]["identity"][
        "oidc"
    ]
    assert provider["Url"] == issuer["issuer"].removeprefix("https://")
    trust = iam.get_role(RoleName="payments-api-irsa")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"]["Federated"] == inventory.oidc_provider_arn


def test_the_evidence_bucket_has_object_lock_in_compliance_mode(
    moto_server: AwsEndpoint,
    inventory: aws_seed.AwsInventory,
) -> None:
    lock = moto_server.client("s3").get_object_lock_configuration(Bucket=inventory.evidence_bucket)
    assert lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"


def test_cloudtrail_files_use_the_trail_key_layout_and_five_minute_windows(tmp_path: Path) -> None:
    rng = random.Random(1)
    who = Principal(kind="IAMUser", account_id="123456789012", source_ip="198.51.100.1", user_agent="ua")
    start = datetime(2026, 1, 2, 3, 59, 58, tzinfo=UTC)
    records = [
        api_call(
            who, start + timedelta(seconds=s), "iam.amazonaws.com", "ListUsers", region="eu-west-1", rng=rng
        )
        for s in (0, 1, 3)
    ]
    files = log_files(records, "123456789012", "eu-west-1", rng)
    stamps = sorted(m.group("stamp") for key in files if (m := KEY_PATTERN.match(key)))
    assert stamps == ["20260102T0400Z", "20260102T0405Z"]
    write_tree(files, tmp_path)
    body = json.loads(gzip.decompress(next(iter(files.values()))))
    assert set(body) == {"Records"}
    assert sorted(r["eventID"] for r in read_records(tmp_path)) == sorted(r["eventID"] for r in records)


def test_a_detached_moto_is_recorded_and_leaves_no_process_once_stopped(tmp_path: Path) -> None:
    server = spawn_detached(tmp_path)
    try:
        assert [r.pid for r in processes.read_records(tmp_path)] == [server.pid]
        assert (
            AwsEndpoint(server.endpoint.url).client("sts").get_caller_identity()["Account"] == "123456789012"
        )
    finally:
        processes.stop_all(tmp_path)
    assert not Path(f"/proc/{server.pid}").exists() or Path(f"/proc/{server.pid}/cmdline").read_bytes() == b""
    assert processes.read_records(tmp_path) == []


def test_a_picked_port_taken_before_the_spawn_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_ports = processes.free_ports
    picks: list[int] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def free_ports_losing_the_first_race(count: int) -> list[int]:
            picks.append(taken if not picks else real_free_ports(count)[0])
            return [picks[-1]]

        monkeypatch.setattr(processes, "free_ports", free_ports_losing_the_first_race)
        server = spawn_detached(tmp_path)
    try:
        assert picks[0] == taken
        assert server.port == picks[-1] != taken
        assert [r.pid for r in processes.read_records(tmp_path)] == [server.pid]
    finally:
        processes.stop_all(tmp_path)


def test_free_ports_never_hands_the_same_port_out_twice_in_one_process() -> None:
    """The lab picks moto's port and the control plane's ports in two threads before any server binds them."""
    picked = [port for _ in range(200) for port in processes.free_ports(2)]
    assert len(picked) == len(set(picked)) == 400


def test_another_server_that_wins_the_port_before_moto_binds_is_never_taken_for_moto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in CI: the EKS authenticator bound moto's port while moto imported; the old readiness check took
    its 501 for moto, and the seeding's first AWS call got the authenticator's HTML error page."""
    real_check = processes.ensure_port_free
    squatters: list[ThreadingHTTPServer] = []

    def check_then_lose_the_port(port: int, name: str) -> None:
        real_check(port, name)
        if not squatters:  # the first pick is lost right after the check, as in the race
            squatters.append(ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler))
            threading.Thread(target=squatters[0].serve_forever, daemon=True).start()

    monkeypatch.setattr(processes, "ensure_port_free", check_then_lose_the_port)
    try:
        server = spawn_detached(tmp_path)
        try:
            assert server.port != squatters[0].server_address[1]
            assert server.endpoint.client("sts").get_caller_identity()["Account"] == "123456789012"
        finally:
            processes.stop_all(tmp_path)
    finally:
        for squatter in squatters:
            squatter.shutdown()
            squatter.server_close()


def test_a_port_in_use_is_refused_with_one_message_and_nothing_started(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LabError, match=f"{port}.*already in use"):
            spawn_detached(tmp_path, port=port)
    assert processes.read_records(tmp_path) == []


def test_the_lab_route_tells_the_authenticator_what_data_json_does_about_one_key(tmp_path: Path) -> None:
    """The lab's EKS authenticator reads one key from the detached moto's lab route instead of data.json
    (10-40 s in the cross-account lab: over the API server's 30 s webhook timeout); both must give the same
    caller, and an inactive key none."""
    server = spawn_detached(tmp_path)
    try:
        iam, sts = server.endpoint.client("iam"), server.endpoint.client("sts")
        iam.create_user(UserName="bob")
        key = iam.create_access_key(UserName="bob")["AccessKey"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}
        trust["Statement"][0]["Action"] = "sts:AssumeRole"
        role = iam.create_role(RoleName="responder", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="r1")["Credentials"]
        for key_id in (key["AccessKeyId"], session["AccessKeyId"]):
            fast = eks_authenticator._moto_key_data(server.endpoint.url, key_id)
            with urllib.request.urlopen(f"{server.endpoint.url}/moto-api/data.json", timeout=60) as resp:
                full = json.loads(resp.read())
            assert eks_authenticator._caller_from_moto(fast, key_id) is not None
            assert eks_authenticator._caller_from_moto(fast, key_id) == eks_authenticator._caller_from_moto(
                full, key_id
            )
        iam.update_access_key(UserName="bob", AccessKeyId=key["AccessKeyId"], Status="Inactive")
        fast = eks_authenticator._moto_key_data(server.endpoint.url, key["AccessKeyId"])
        assert eks_authenticator._caller_from_moto(fast, key["AccessKeyId"]) is None
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.endpoint.url}/eksir-lab/access-key?id=../x", timeout=10)
    finally:
        processes.stop_all(tmp_path)


def test_the_enforcing_lab_moto_signs_bodyless_calls_and_keeps_its_lab_route(
    tmp_path: Path,
) -> None:
    """Once `iam_enforcement.enforce` switches the detached lab moto on: moto's default keys are refused,
    an IAM user's key works for a bodyless REST GET (EKS ListClusters, GuardDuty ListDetectors: moto 5.2
    refused those as SignatureDoesNotMatch, see moto_eks.sign_bodyless_requests_as_sent), a call its policy
    lacks is denied naming the action, and the authenticator's lab route still answers (it is not AWS)."""
    server = spawn_detached(tmp_path)
    try:
        iam = server.endpoint.client("iam")
        iam.create_user(UserName="reader")
        policy = {
            "Effect": "Allow",
            "Action": ["eks:ListClusters", "guardduty:ListDetectors"],
            "Resource": "*",
        }
        iam.put_user_policy(
            UserName="reader",
            PolicyName="read",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [policy]}),
        )
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam_enforcement.enforce(server.endpoint.url)
        reader = AwsEndpoint(server.endpoint.url, access_key_id=key["AccessKeyId"],
                             secret_access_key=key["SecretAccessKey"])  # fmt: skip
        assert reader.client("eks").list_clusters()["clusters"] == []
        assert reader.client("guardduty").list_detectors()["DetectorIds"] == []
        with pytest.raises(ClientError, match="not authorized to perform: eks:ListNodegroups"):
            reader.client("eks").list_nodegroups(clusterName="any")
        with pytest.raises(ClientError, match=r"InvalidAccessKeyId|InvalidClientTokenId"):
            server.endpoint.client("s3").list_buckets()
        fast = eks_authenticator._moto_key_data(server.endpoint.url, key["AccessKeyId"])
        assert eks_authenticator._caller_from_moto(fast, key["AccessKeyId"]) is not None
    finally:
        processes.stop_all(tmp_path)
