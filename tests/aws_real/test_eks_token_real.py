"""The EKS bearer token against a real EKS API server: accepted for its cluster, refused for another.

The lab checks eksir's token with its own imitation of the authenticator (shared/DESIGN.md, "What the lab may
imitate"); only a real cluster proves the token is what EKS itself accepts. Read-only: a SelfSubjectReview
(who the API server thinks we are) and a namespace read. Needs EKSIR_TEST_AWS_CLUSTER, a cluster in the
sandbox account where the maintainer's identity has an access entry or aws-auth mapping.
"""

from __future__ import annotations

import pytest
from kubernetes.client import AuthenticationV1Api, CoreV1Api, V1SelfSubjectReview
from kubernetes.client.exceptions import ApiException

from eksir.clients.eks_token import TokenSource, eks_bearer_token
from eksir.clients.k8s import api_client_from_eks
from tests.aws_real.conftest import Sandbox, require

pytestmark = pytest.mark.aws_real


def _client(sandbox: Sandbox, cluster: str, token_cluster: str) -> object:
    described = sandbox.client("eks").describe_cluster(name=cluster)["cluster"]
    sts = sandbox.client("sts")
    source = TokenSource(lambda: eks_bearer_token(sts, token_cluster))
    return api_client_from_eks(described["endpoint"], described["certificateAuthority"]["data"], source)


def test_the_token_authenticates_the_callers_identity_to_the_real_cluster(sandbox: Sandbox) -> None:
    cluster = require(sandbox.config.cluster, "EKSIR_TEST_AWS_CLUSTER")
    api = _client(sandbox, cluster, cluster)
    review = AuthenticationV1Api(api).create_self_subject_review(V1SelfSubjectReview())
    user = review.status.user_info
    assert user.username, "EKS mapped the token to a Kubernetes user"
    # EKS puts the caller's STS ARN in the user's extra info (aws-iam-authenticator's `arn`)
    assert sandbox.caller_arn in (user.extra or {}).get("arn", []), user.extra
    assert CoreV1Api(api).read_namespace("kube-system").metadata.name == "kube-system"


def test_a_token_minted_for_another_cluster_name_is_refused(sandbox: Sandbox) -> None:
    cluster = require(sandbox.config.cluster, "EKSIR_TEST_AWS_CLUSTER")
    api = _client(sandbox, cluster, f"{cluster}-not-this-one")
    with pytest.raises(ApiException) as refused:
        CoreV1Api(api).read_namespace("kube-system")
    assert refused.value.status == 401
