"""Typed accessors for the Kubernetes API groups eksir uses, so that actions never import the SDK themselves.

Why: clients/ is the only layer that knows the kubernetes package (DESIGN.md), so that swapping or pinning the
SDK, or faking it in a test, touches one folder. Actions get an API group from the `ApiClient` their context
hands them (`core(ctx.k8s()).read_node(name)`), build delete options with `delete_options`, and write with
`k8s_write`, which turns a 409 (the object changed since it was read) into `ConflictError` so a
read-modify-write loop can read again, and any other API error into the eksir error of `k8s_call`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    AuthorizationV1Api,
    CoreV1Api,
    CustomObjectsApi,
    NetworkingV1Api,
    RbacAuthorizationV1Api,
    V1DeleteOptions,
    V1Preconditions,
)
from kubernetes.client.exceptions import ApiException

from eksir.clients.k8s import translate_api_exception
from eksir.errors import TemporaryError

CONFLICT = 409


class ConflictError(TemporaryError):
    """409 Conflict: the object changed since it was read (resourceVersion or uid precondition failed)."""


def core(api: ApiClient) -> CoreV1Api:
    """Pods, nodes, namespaces, ServiceAccounts, Secrets, ConfigMaps."""
    return CoreV1Api(api)


def apps(api: ApiClient) -> AppsV1Api:
    """ReplicaSets, DaemonSets."""
    return AppsV1Api(api)


def networking(api: ApiClient) -> NetworkingV1Api:
    """NetworkPolicies."""
    return NetworkingV1Api(api)


def rbac(api: ApiClient) -> RbacAuthorizationV1Api:
    """Roles, ClusterRoles and their bindings."""
    return RbacAuthorizationV1Api(api)


def custom(api: ApiClient) -> CustomObjectsApi:
    """Custom resources (EKS's NodeDiagnostic)."""
    return CustomObjectsApi(api)


def authorization(api: ApiClient) -> AuthorizationV1Api:
    """SubjectAccessReviews."""
    return AuthorizationV1Api(api)


def delete_options(uid: str, resource_version: str | None = None) -> V1DeleteOptions:
    """Delete only this very object (uid) and, with a resourceVersion, only if unchanged since it was read."""
    return V1DeleteOptions(preconditions=V1Preconditions(uid=uid, resource_version=resource_version))


@contextmanager
def k8s_write(doing: str) -> Iterator[None]:
    """`with k8s_write("replace aws-auth"):`: ConflictError on 409, the `k8s_call` error on any other status.

    Only API answers are translated: a connection error passes through unchanged, for the caller to report.
    """
    try:
        yield
    except ApiException as exc:
        if exc.status == CONFLICT:
            raise ConflictError(
                f"{doing}: the object changed since it was read (409); read it again"
            ) from exc
        raise translate_api_exception(exc, doing) from exc
