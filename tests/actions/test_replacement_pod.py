"""The replacement pod recovery starts is not the attacker's pod again, and its owner cannot adopt it: the
owner's selector labels, ephemeral containers and host ports are gone (on the real kube-apiserver)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from eksir.actions.recovery.workload import fixed_pod, owner_selector_keys

pytestmark = pytest.mark.lab


def _pod(owner: dict[str, Any] | None) -> dict[str, Any]:
    container = {
        "name": "shell",
        "image": "busybox",
        "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
        "ports": [{"containerPort": 8080, "hostPort": 8080}],
    }
    return {
        "metadata": {
            "name": "web-abc12",
            "namespace": "shop",
            "labels": {"app": "web", "tier": "front", "pod-template-hash": "abc12", "eksir.io/case-id": "c"},
            "ownerReferences": [owner] if owner else [],
            "uid": "u",
        },
        "spec": {
            "hostPID": True,
            "containers": [container],
            "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        },
    }


def test_the_fixed_pod_keeps_nothing_the_attack_used_nor_what_would_let_its_owner_adopt_it() -> None:
    body, changes = fixed_pod(_pod(None), "web-replacement", frozenset({"app"}))
    assert body["metadata"]["labels"] == {"tier": "front"}
    assert "ownerReferences" not in body["metadata"]
    spec = body["spec"]
    assert "ephemeralContainers" not in spec
    assert "hostPID" not in spec
    container = spec["containers"][0]
    assert container["securityContext"]["privileged"] is False
    assert "hostPort" not in container["ports"][0]
    assert spec["volumes"][0] == {"name": "root", "emptyDir": {}}
    assert "labels app, pod-template-hash removed (the owner would adopt the pod otherwise)" in changes
    assert "ephemeral containers removed" in changes
    assert "container shell: hostPort removed" in changes


def test_the_owners_selector_is_read_from_the_live_replicaset(k8s_admin: Any, k8s_namespace: str) -> None:
    apps = client.AppsV1Api(k8s_admin)
    template = {
        "metadata": {"labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    replica_set = apps.create_namespaced_replica_set(
        k8s_namespace,
        {
            "metadata": {"name": "web-abc12"},
            "spec": {
                "replicas": 1,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
                },
                "template": template,
            },
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": replica_set.metadata.name,
        "uid": replica_set.metadata.uid,
        "controller": True,
    }
    pod = _pod(owner)
    pod["metadata"]["namespace"] = k8s_namespace
    keys = owner_selector_keys(k8s_admin, pod)
    assert keys == {"app", "tier"}
    body, _ = fixed_pod(pod, "web-replacement", keys)
    selector = replica_set.spec.selector
    labels = body["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in selector.match_labels.items())  # not adoptable
    assert owner_selector_keys(k8s_admin, _pod(None)) == frozenset()
