"""A shared case store on moto server: a bucket, a lease table, and the environment the product and `eksir`
subprocesses read (endpoint, dummy keys, region, cache dir, lock table)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eksir.lab.moto_server import AwsEndpoint


@dataclass(frozen=True)
class SharedStore:
    url: str
    bucket: str
    prefix: str
    table: str
    endpoint: AwsEndpoint
    env: dict[str, str]

    @property
    def s3(self) -> Any:
        return self.endpoint.client("s3")

    @property
    def dynamo(self) -> Any:
        return self.endpoint.client("dynamodb")

    def keys(self, case_id: str, folder: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/{case_id}/{folder}/")
        return [o["Key"] for o in listed.get("Contents", [])]

    def event_key(self, case_id: str, seq: int) -> str:
        return f"{self.prefix}/{case_id}/events/{seq:08d}.json"


def make_lock_table(dynamo: Any, name: str) -> None:
    dynamo.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "case_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "case_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def shared_store(moto_server: AwsEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SharedStore:
    """A fresh bucket and lease table per test; `EKSIR_S3_CACHE` in tmp_path (this machine's copy)."""
    suffix = uuid.uuid4().hex[:10]
    bucket, table = f"eksir-cases-{suffix}", f"eksir-leases-{suffix}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    make_lock_table(moto_server.client("dynamodb"), table)
    env = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": moto_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": moto_server.secret_access_key,
        "AWS_REGION": moto_server.region,
        "AWS_DEFAULT_REGION": moto_server.region,
        "EKSIR_S3_CACHE": str(tmp_path / "s3-cache"),
        "EKSIR_LOCK_TABLE": table,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return SharedStore(f"s3://{bucket}/team/cases", bucket, "team/cases", table, moto_server, env)
