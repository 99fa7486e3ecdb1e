"""Whether the identity eksir runs as may work in the cluster at all, asked before anything else.

Why a SelfSubjectAccessReview ("may I list pods in every namespace?"): it is the question resolution needs
answered, every authenticated identity may ask it (system:basic-user), and it distinguishes the two ways a
responder is locked out: 401 (EKS knows no access entry or aws-auth mapping for the AWS identity) and an
authenticated identity without the rights. Both are what break-glass access fixes.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import AuthorizationV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from eksir.clients.k8s import translate_api_exception

_REVIEW = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SelfSubjectAccessReview",
    "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}},
}


def access_gap(api: Any) -> str | None:
    """None when the identity may list pods cluster-wide; otherwise why it may not, in one line.

    Raises UnreachableError, TemporaryError or another eksir error for anything but 401/403.
    """
    try:
        review = AuthorizationV1Api(api).create_self_subject_access_review(_REVIEW, _request_timeout=(5, 30))
    except ApiException as exc:
        if exc.status == 401:
            return "the API server does not know this AWS identity (401: no access entry or aws-auth mapping)"
        if exc.status == 403:
            return "the API server refused even an access review (403)"
        raise translate_api_exception(exc, "check the responder's Kubernetes access") from exc
    except (HTTPError, OSError) as exc:
        raise translate_api_exception(exc, "check the responder's Kubernetes access") from exc
    if review.status.allowed:
        return None
    return "the identity is authenticated but RBAC does not let it list pods"
