"""Issue 14 item 1: the EKS bearer token is what `aws eks get-token` builds (it crashed with a TypeError
before), its cluster header is signed, and a client refreshes it before EKS stops accepting it.

The signature is checked by the lab authenticator's own SigV4 code (eksir.lab.eks_presign), written from the
SigV4 rules, not by botocore's signer that made it: agreement between the two is what proves the header is
covered. No network: presigning is local.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from eksir.clients.eks_token import (
    EKS_TOKEN_PREFIX,
    REFRESH_AFTER_S,
    TokenSource,
    decode_token,
    eks_bearer_token,
)
from eksir.clients.k8s import api_client_from_eks
from eksir.lab import eks_presign

STS_URL = "https://sts.eu-west-1.amazonaws.com"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _sts(token: str | None = None) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="ASIAEXAMPLE0000000" if token else "AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        region_name="eu-west-1",
    )
    return session.client("sts", endpoint_url=STS_URL)


def test_the_token_is_the_prefix_and_an_unpadded_base64url_presigned_get_caller_identity() -> None:
    token = eks_bearer_token(_sts(), "prod-eks")
    assert token.startswith(EKS_TOKEN_PREFIX)
    body = token[len(EKS_TOKEN_PREFIX) :]
    assert not {"=", "+", "/"} & set(body)
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert url == decode_token(token)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == STS_URL
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert "x-k8s-aws-id" not in query  # a header, signed, never a query parameter


def test_the_cluster_header_is_a_signed_header_bound_to_the_cluster_name() -> None:
    presigned = eks_presign.parse(eks_bearer_token(_sts(), "prod-eks"), STS_URL)
    assert presigned.signed_headers == ("host", "x-k8s-aws-id")
    eks_presign.check_signature(presigned, SECRET, "prod-eks")
    with pytest.raises(eks_presign.TokenRejected, match="another cluster"):
        eks_presign.check_signature(presigned, SECRET, "other-cluster")
    with pytest.raises(eks_presign.TokenRejected):
        eks_presign.check_signature(presigned, "not-the-secret", "prod-eks")


def test_a_session_token_travels_in_the_url_and_is_covered_by_the_signature() -> None:
    presigned = eks_presign.parse(eks_bearer_token(_sts("FwoGZXIvYXdzEXAMPLE"), "prod-eks"), STS_URL)
    assert presigned.session_token == "FwoGZXIvYXdzEXAMPLE"
    eks_presign.check_signature(presigned, SECRET, "prod-eks")
    forged = eks_presign.Presigned(
        **{**presigned.__dict__, "params": {**presigned.params, "X-Amz-Security-Token": "other"}}
    )
    with pytest.raises(eks_presign.TokenRejected):
        eks_presign.check_signature(forged, SECRET, "prod-eks")


def test_eks_accepts_the_token_for_fifteen_minutes_after_signing_and_not_after() -> None:
    presigned = eks_presign.parse(eks_bearer_token(_sts(), "prod-eks"), STS_URL)
    eks_presign.check_fresh(presigned, presigned.signed_at + timedelta(minutes=14, seconds=59))
    with pytest.raises(eks_presign.TokenRejected, match="expired"):
        eks_presign.check_fresh(presigned, presigned.signed_at + timedelta(minutes=15, seconds=1))
    assert abs(presigned.signed_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_tokens_minted_in_parallel_for_two_clusters_on_one_client_each_carry_their_own_cluster() -> None:
    sts = _sts()
    results: dict[str, list[str]] = {"a": [], "b": []}

    def mint(cluster: str) -> None:
        for _ in range(20):
            results[cluster].append(eks_bearer_token(sts, cluster))

    threads = [threading.Thread(target=mint, args=(c,)) for c in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cluster, tokens in results.items():
        for token in tokens:
            eks_presign.check_signature(eks_presign.parse(token, STS_URL), SECRET, cluster)


def test_a_token_source_mints_again_only_once_the_token_is_old() -> None:
    now = [0.0]
    minted: list[str] = []

    def mint() -> str:
        minted.append(f"token-{len(minted)}")
        return minted[-1]

    source = TokenSource(mint, clock=lambda: now[0])
    assert source.current() == "token-0"
    now[0] = REFRESH_AFTER_S - 1
    assert source.current() == "token-0"
    now[0] = REFRESH_AFTER_S
    assert source.current() == "token-1"
    assert eks_presign.MAX_AGE.total_seconds() > REFRESH_AFTER_S


def test_the_kubernetes_client_asks_the_token_source_before_each_request() -> None:
    now = [0.0]
    count = [0]

    def mint() -> str:
        count[0] += 1
        return f"k8s-aws-v1.t{count[0]}"

    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").decode()
    api = api_client_from_eks("https://127.0.0.1:1", ca, TokenSource(mint, clock=lambda: now[0]))
    config = api.configuration
    assert config.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.t1"
    now[0] = REFRESH_AFTER_S + 1
    assert config.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.t2"
