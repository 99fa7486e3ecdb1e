"""AWS-backed sources against moto as a real server (S3, Athena, Logs, tagging) and Stubber (LookupEvents)."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from eksir.errors import PermissionDeniedError
from eksir.hunt import workers
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.scan import Scanner
from eksir.hunt.sources import cloud
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import list_s3
from eksir.hunt.window import TimeWindow

pytestmark = pytest.mark.usefixtures("aws_env")


def _upload_tree(url: str, bucket: str, tree: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for path in tree.rglob("*.json.gz"):
        s3.put_object(Bucket=bucket, Key=f"org/{path.relative_to(tree).as_posix()}", Body=path.read_bytes())
    s3.put_object(
        Bucket=bucket, Key="org/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x.json.gz", Body=b"x"
    )


def _window(truth: dict[str, Any]) -> TimeWindow:
    return TimeWindow.parse(truth["since"], truth["until"])


def test_s3_source_lists_only_window_days_and_finds_the_ground_truth(
    moto_url: str, tree: Path, truth: dict[str, Any]
) -> None:
    _upload_tree(moto_url, "trail-a", tree)
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    listed = list(list_s3("s3://trail-a/org", _window(truth), access))
    assert listed
    assert not any("/2024/07/20/" in ref.location or "Digest" in ref.location for ref in listed)
    result = run_hunt(
        PrincipalSet.from_values([truth["principal"]]), ["s3://trail-a/org/"], _window(truth), access=access
    )
    assert {e.event_id for e in result.events} == set(truth["event_ids"])
    assert result.sources[0].kind == "s3"
    assert result.sources[0].bytes_read > 0
    assert "LOCATION 's3://trail-a/org/AWSLogs/'" in result.queries[0].text


def test_scan_workers_from_a_fork_server_started_without_credentials_read_s3_as_the_hunt_does(
    moto_url: str, tree: Path, truth: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `forkserver` child inherits the environment of the fork server's start, not the hunt's: seen when
    the suite ran on two workers (a fork server started by an earlier test without AWS credentials)."""
    _upload_tree(moto_url, "trail-c", tree)
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    files = list(list_s3("s3://trail-c/org/", _window(truth), access))
    forkserver._forkserver._stop()  # type: ignore[attr-defined]  # the next start sees the env below
    with monkeypatch.context() as bare:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            bare.delenv(name, raising=False)
        forkserver.ensure_running()
    monkeypatch.setattr(workers, "start_context", lambda: multiprocessing.get_context("forkserver"))
    report = Scanner(_window(truth), access=access, workers=2, inline_below_bytes=0).run(
        files, PrincipalSet.from_values([truth["principal"]])
    )
    assert report.skipped == []
    assert {record["eventID"] for record, _ in report.records} == set(truth["event_ids"])


def test_an_unreadable_s3_object_is_reported_and_skipped(
    moto_url: str, tree: Path, truth: dict[str, Any]
) -> None:
    _upload_tree(moto_url, "trail-b", tree)
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    files = list(list_s3("s3://trail-b/org/", _window(truth), access))
    gone = next(ref for ref in files if "20240801T0005Z" in ref.location)
    boto3.client("s3", endpoint_url=moto_url).delete_object(
        Bucket="trail-b", Key=gone.location.split("/", 3)[3]
    )
    report = Scanner(_window(truth), access=access, workers=2, inline_below_bytes=0).run(
        files, PrincipalSet.from_values([truth["principal"]])
    )
    assert [(s.location, s.error) for s in report.skipped] == [
        (gone.location, "unreadable: NoSuchKey: The specified key does not exist.")
    ]
    assert {r["eventID"] for r, _ in report.records} == set(truth["event_ids"])


def test_listing_a_missing_bucket_is_a_clean_error(moto_url: str, truth: dict[str, Any]) -> None:
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    with pytest.raises(Exception, match="not found") as caught:
        list(list_s3("s3://no-such-bucket/", _window(truth), access))
    assert caught.value.__class__.__module__ == "eksir.errors"


def _lookup_page(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "Events": [
            {
                "EventId": record["eventID"],
                "EventName": record["eventName"],
                "CloudTrailEvent": json.dumps(record),
            }
        ]
    }


def test_lookup_events_pages_per_attribute_and_follows_role_chaining(stratus_dir: Path) -> None:
    records = json.loads((stratus_dir / "aws.execution.ec2-launch-unusual-instances.json").read_text())
    assume = next(r for r in records if r["eventName"] == "AssumeRole" and not r.get("errorCode"))
    chained_key = assume["responseElements"]["credentials"]["accessKeyId"]
    run = next(r for r in records if r["eventName"] == "RunInstances")
    run["userIdentity"]["accessKeyId"] = chained_key
    window = TimeWindow.parse("2024-08-01", "2024-08-02")
    client = boto3.client("cloudtrail", region_name="us-east-1")
    stub = Stubber(client)
    key = assume["userIdentity"]["accessKeyId"]
    base = {"StartTime": window.since, "EndTime": window.until}
    stub.add_response(
        "lookup_events",
        {**_lookup_page(assume), "NextToken": "t1"},
        {**base, "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key}]},
    )
    stub.add_response(
        "lookup_events",
        {"Events": []},
        {
            **base,
            "NextToken": "t1",
            "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key}],
        },
    )
    stub.add_client_error(
        "lookup_events",
        "AccessDeniedException",
        "no cloudtrail:LookupEvents",
        expected_params={
            **base,
            "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": chained_key}],
        },
    )
    with stub:
        found = list(cloud.lookup_events(client, PrincipalSet.from_values([key]), window))
        assert [r["eventID"] for r in found] == [assume["eventID"]]
        chained = PrincipalSet.from_values([key]).issued_by(found[0])
        assert chained is not None
        assert chained_key in chained.access_key_ids
        with pytest.raises(PermissionDeniedError, match="access denied"):
            list(cloud.lookup_events(client, PrincipalSet.from_values([chained_key]), window))
    stub.assert_no_pending_responses()


def test_athena_runs_ddl_then_hunt_query_in_the_workgroup(
    moto_url: str, tree: Path, truth: dict[str, Any]
) -> None:
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    target = cloud.AthenaTarget("primary", "s3://athena-results/hunt/")
    result = run_hunt(
        PrincipalSet.from_values([truth["principal"]]),
        [str(tree)],
        _window(truth),
        access=access,
        options=HuntOptions(athena=target),
    )
    ran = [q for q in result.queries if q.kind.startswith("athena")]
    assert [q.executed for q in ran] == [True, True]
    assert all(q.execution_id for q in ran)
    athena = boto3.client("athena", endpoint_url=moto_url, region_name="us-east-1")
    sent = athena.get_query_execution(QueryExecutionId=ran[1].execution_id)["QueryExecution"]
    assert sent["WorkGroup"] == "primary"
    assert sent["ResultConfiguration"]["OutputLocation"].startswith("s3://athena-results/hunt/")
    assert "AKIAATTACKER00000001" in sent["Query"]
    assert '"timestamp" BETWEEN' in sent["Query"]


def test_logs_insights_results_are_filtered_again_locally(moto_url: str, k8s_audit_dir: Path) -> None:
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    group = "/aws/eks/prod/cluster"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-abc")
    now = int(datetime.now(UTC).timestamp() * 1000)
    lines = (
        (k8s_audit_dir / "falco-trace-files" / "create_nginx_pod_privileged.json").read_text().splitlines()
    )
    others = (k8s_audit_dir / "falco-trace-files" / "create_clusterrole.json").read_text().splitlines()
    messages = [{"timestamp": now, "message": line} for line in lines + others]
    logs.put_log_events(logGroupName=group, logStreamName="kube-apiserver-audit-abc", logEvents=messages)
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    result = run_hunt(
        PrincipalSet.from_values(["k8s:system:serviceaccount:kube-system:replicaset-controller"]),
        [],
        TimeWindow.parse("2015-01-01"),
        access=access,
        options=HuntOptions(cluster="prod", logs_insights=True),
    )
    insights = next(q for q in result.queries if q.kind == "logs-insights")
    assert insights.executed
    assert "replicaset-controller" in insights.text
    assert [e.category for e in result.events] == ["privileged-workload"], (result.sources, result.skipped)


def test_owners_come_from_resource_tags_and_the_cmdb(moto_url: str, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="us-east-1")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Owner", "Value": "payments-oncall"}, {"Key": "app", "Value": "ledger"}],
            }
        ],
    )["Instances"][0]["InstanceId"]
    calls = [
        {
            "eventVersion": "1.09",
            "eventTime": "2024-08-01T10:00:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": "StopInstances",
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
            "eventID": "stop-1",
            "userIdentity": {"accessKeyId": "AKIAOWNERTEST0000001"},
            "requestParameters": {"instancesSet": {"items": [{"instanceId": instance}]}},
        },
        {
            "eventVersion": "1.09",
            "eventTime": "2024-08-01T10:01:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
            "eventID": "get-1",
            "userIdentity": {"accessKeyId": "AKIAOWNERTEST0000001"},
            "requestParameters": {"bucketName": "hr-exports", "key": "salaries.csv"},
        },
    ]
    (tmp_path / "ct.json").write_text(json.dumps(calls))
    cmdb = tmp_path / "cmdb.csv"
    cmdb.write_text("arn,application,owner,team\narn:aws:s3:::hr-*,hr-portal,hr-security@example.com,hr\n")
    result = run_hunt(
        PrincipalSet.from_values(["AKIAOWNERTEST0000001"]),
        [str(tmp_path / "ct.json")],
        TimeWindow.parse("2024-08-01", "2024-08-02"),
        access=AwsAccess(region="us-east-1", endpoint_url=moto_url),
        options=HuntOptions(tag_lookup=True, cmdb=cmdb),
    )
    by_id = {e.event_id: e for e in result.events}
    assert by_id["stop-1"].resources[0].owner == "payments-oncall"
    assert by_id["stop-1"].resources[0].application == "ledger"
    assert by_id["get-1"].resources[0].owner_source == "cmdb"
    assert {n.owner for n in result.owners} == {"payments-oncall", "hr-security@example.com"}
