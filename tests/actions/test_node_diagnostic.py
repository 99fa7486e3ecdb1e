"""`k8s.collect_node_diagnostic` against the lab's real kube-apiserver and moto's S3.

The NodeDiagnostic CRD is installed in the lab's API server with the group, version, kind and cluster scope
of the EKS node monitoring agent's type (`eks.amazonaws.com/v1alpha1`, `NodeDiagnostic`, named after the
node, `spec.logCapture.destination`, a status subresource). Limit: no node monitoring agent runs in the lab,
so the test plays its part: it reads the destination eksir wrote, PUTs a bundle to that presigned URL (a real
HTTP PUT to moto, which checks the signature) and writes the agent's status; everything eksir does is real.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from eksir.actions.evidence.node_diagnostic import (
    GROUP,
    PLURAL,
    VERSION,
    CollectNodeDiagnostic,
    NodeDiagnosticParams,
)
from eksir.errors import StepFailedError
from tests.actions.conftest import AwsEndpoint, boto_client, make_ctx

pytestmark = pytest.mark.lab
BUCKET = "eksir-evidence"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {
            "kind": "NodeDiagnostic",
            "plural": PLURAL,
            "singular": "nodediagnostic",
            "listKind": "NodeDiagnosticList",
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def crd(control_plane: Any) -> Iterator[None]:
    import time

    with control_plane.api_client() as api:
        ext = client.ApiextensionsV1Api(api)
        try:
            ext.create_custom_resource_definition(CRD)
        except ApiException as exc:
            if exc.status != 409:
                raise
        for _ in range(100):  # until the API server serves the new type
            try:
                client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, PLURAL)
                break
            except ApiException:
                time.sleep(0.1)
        yield
        ext.delete_custom_resource_definition(CRD["metadata"]["name"])


@pytest.fixture
def setup(crd: None, control_plane: Any, moto: AwsEndpoint) -> Iterator[dict[str, Any]]:
    api = control_plane.api_client()
    boto_client(moto, "s3").create_bucket(Bucket=BUCKET)
    node = f"i-{uuid.uuid4().hex[:17]}.us-east-1.compute.internal"
    ctx = make_ctx(aws=lambda service: boto_client(moto, service), k8s=lambda: api)
    params = NodeDiagnosticParams(
        node_name=node, bucket=BUCKET, key=f"eksir/case-0001/node-diagnostic/{node}.tar.gz"
    )
    try:
        yield {"api": api, "ctx": ctx, "params": params, "node": node, "moto": moto}
    finally:
        with contextlib.suppress(ApiException):
            client.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, PLURAL, node)
        api.close()


def test_a_cluster_without_the_node_monitoring_agent_fails_the_step_and_says_why(
    control_plane: Any, moto: AwsEndpoint
) -> None:
    """Runs before the module installs the CRD (tests run in file order; the CRD fixture is lazy)."""
    with control_plane.api_client() as api:
        ctx = make_ctx(aws=lambda service: boto_client(moto, service), k8s=lambda: api)
        params = NodeDiagnosticParams(node_name="n-without-agent", bucket=BUCKET, key="k/b.tar.gz")
        with pytest.raises(StepFailedError) as failed:
            CollectNodeDiagnostic().apply(ctx, params)
    assert "node monitoring agent is not installed" in failed.value.message


def _bundle() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        body = b"Dec 07 15:00:01 kubelet[1234]: started\n"
        info = tarfile.TarInfo("var_log/kubelet.log")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return data.getvalue()


def _agent(api: Any, node: str, reason: str, upload: bytes | None) -> None:
    """What the node monitoring agent does: PUT the bundle to the destination, then report its status."""
    custom = client.CustomObjectsApi(api)
    obj = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, node)
    if upload is not None:
        request = urllib.request.Request(
            obj["spec"]["logCapture"]["destination"],
            data=upload,
            method="PUT",
            headers={"Content-Type": "application/octet-stream"},  # urllib's form default hangs werkzeug
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    status = {
        "captureStatuses": [
            {"name": node, "type": "Log", "state": {"completed": {"reason": reason, "message": "done"}}}
        ]
    }
    custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, node, {"status": status})


def test_the_bundle_the_agent_uploads_through_the_presigned_url_is_verified_into_the_case(
    setup: dict[str, Any],
) -> None:
    action, ctx, params = CollectNodeDiagnostic(), setup["ctx"], setup["params"]

    assert action.check(ctx, params).already_applied is False
    applied = action.apply(ctx, params)
    pending = action.verify(ctx, params, applied)
    bundle = _bundle()
    _agent(setup["api"], setup["node"], "Success", bundle)
    done = action.verify(ctx, params, applied)

    obj = client.CustomObjectsApi(setup["api"]).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, setup["node"]
    )
    assert obj["metadata"]["labels"]["eksir.io/case-id"] == "case-0001"
    destination = obj["spec"]["logCapture"]["destination"]
    assert f"/{BUCKET}/{params.key}?" in destination
    assert "Signature=" in destination  # presigned: the agent needs no AWS credentials
    assert pending.ok is False
    assert "has not uploaded" in pending.detail
    assert done.ok, done.detail
    import hashlib

    assert done.observed["sha256"] == hashlib.sha256(bundle).hexdigest()
    assert action.check(ctx, params).already_applied is True
    assert action.apply(ctx, params)["uid"] == applied["uid"]
    action.rollback(ctx, params, applied)
    with pytest.raises(ApiException) as gone:
        client.CustomObjectsApi(setup["api"]).get_cluster_custom_object(GROUP, VERSION, PLURAL, setup["node"])
    assert gone.value.status == 404


def test_a_failed_capture_is_reported_with_the_agents_reason(setup: dict[str, Any]) -> None:
    action, ctx, params = CollectNodeDiagnostic(), setup["ctx"], setup["params"]
    applied = action.apply(ctx, params)

    _agent(setup["api"], setup["node"], "Failure", None)
    outcome = action.verify(ctx, params, applied)

    assert outcome.ok is False
    assert "the agent reports Failure: done" in outcome.detail


def test_someone_elses_node_diagnostic_is_left_alone(setup: dict[str, Any]) -> None:
    action, ctx, params = CollectNodeDiagnostic(), setup["ctx"], setup["params"]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NodeDiagnostic",
        "metadata": {"name": setup["node"]},
        "spec": {"logCapture": {"destination": "node"}},
    }
    client.CustomObjectsApi(setup["api"]).create_cluster_custom_object(GROUP, VERSION, PLURAL, body)

    outcome = action.check(ctx, params)

    assert outcome.ok is False
    assert "not this case's" in outcome.detail
