"""Kubernetes objects for the action tests, created through the real API server.

There is no scheduler in the lab, so pods are bound by setting nodeName.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, NetworkingV1Api


def create_pod(
    api: ApiClient, namespace: str, name: str, labels: dict[str, str], owner: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": "ip-10-0-1-23.ec2.internal",
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner]
    created = CoreV1Api(api).create_namespaced_pod(namespace, body)
    return dict(api.sanitize_for_serialization(created))


def read_pod(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(api.sanitize_for_serialization(CoreV1Api(api).read_namespaced_pod(name, namespace)))


def create_replica_set(api: ApiClient, namespace: str, name: str, selector: dict[str, str]) -> dict[str, Any]:
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }
    created = AppsV1Api(api).create_namespaced_replica_set(namespace, body)
    return dict(api.sanitize_for_serialization(created))


def owner_ref(rs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": rs["metadata"]["name"],
        "uid": rs["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def create_allow_policy(
    api: ApiClient, namespace: str, name: str, selector: dict[str, str]
) -> dict[str, Any]:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "annotations": {"team": "web"}},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
        },
    }
    created = NetworkingV1Api(api).create_namespaced_network_policy(namespace, body)
    return dict(api.sanitize_for_serialization(created))


def read_policy(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    policy = NetworkingV1Api(api).read_namespaced_network_policy(name, namespace)
    return dict(api.sanitize_for_serialization(policy))


def list_policies(api: ApiClient, namespace: str) -> list[str]:
    return sorted(
        p.metadata.name for p in NetworkingV1Api(api).list_namespaced_network_policy(namespace).items
    )
