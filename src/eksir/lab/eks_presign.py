"""Lab imitation, part of the lab's EKS token authenticator: check an EKS token's presigned STS URL.

Why the lab checks the signature itself (shared/DESIGN.md, "What the lab may imitate"): EKS's authenticator
forwards the presigned GetCallerIdentity to STS, which verifies it; moto routes a presigned GET of
GetCallerIdentity to S3, and upstream aws-iam-authenticator accepts only `sts.*.amazonaws.com`. So this module
does what STS does for that one call: recompute the SigV4 query signature (RFC-style canonical request,
`x-k8s-aws-id` header set to the cluster the authenticator serves) with the secret moto issued for the key,
and compare. It follows aws-iam-authenticator's checks before that: the prefix, only the STS endpoint it
trusts, only the GetCallerIdentity parameters, the cluster header signed, and a token at most 15 minutes old.
Never imported by the product.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
MAX_AGE = timedelta(minutes=15)  # what EKS accepts after X-Amz-Date
MAX_SKEW = timedelta(minutes=5)
MAX_TOKEN_CHARS = 8192
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_ALLOWED = {
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
}


class TokenRejected(Exception):
    """The token is not a valid EKS token for this cluster; the message says why (never the token)."""


@dataclass(frozen=True)
class Presigned:
    """The parts of a presigned GetCallerIdentity URL the verification needs."""

    scheme: str
    host: str
    path: str
    params: dict[str, str]
    access_key_id: str
    scope: str
    region: str
    signed_at: datetime
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def session_token(self) -> str | None:
        return self.params.get("X-Amz-Security-Token")


def parse(token: str, sts_endpoint: str) -> Presigned:
    """Decode the token and check its form and origin. Raises TokenRejected."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        raise TokenRejected("not an EKS token (k8s-aws-v1. prefix)")
    body = token[len(TOKEN_PREFIX) :]
    try:
        url = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenRejected("the token is not base64url") from exc
    parts, trusted = urlsplit(url), urlsplit(sts_endpoint)
    if (parts.scheme, parts.netloc) != (trusted.scheme, trusted.netloc) or parts.path not in ("", "/"):
        raise TokenRejected(f"the presigned URL is not for the trusted STS endpoint {trusted.netloc}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs) or set(params) - _ALLOWED:
        raise TokenRejected("the presigned URL has repeated or unexpected parameters")
    if params.get("Action") != "GetCallerIdentity" or params.get("Version") != "2011-06-15":
        raise TokenRejected("the presigned URL is not sts:GetCallerIdentity")
    return _with_auth(parts.scheme, parts.netloc, parts.path or "/", params)


def _with_auth(scheme: str, host: str, path: str, params: dict[str, str]) -> Presigned:
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise TokenRejected("the presigned URL is not signed with AWS4-HMAC-SHA256")
    credential = params.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        raise TokenRejected("X-Amz-Credential is not an STS credential scope")
    signed = tuple(params.get("X-Amz-SignedHeaders", "").split(";"))
    if CLUSTER_ID_HEADER not in signed:
        raise TokenRejected(f"the client did not sign the {CLUSTER_ID_HEADER} header")
    if set(signed) - {"host", CLUSTER_ID_HEADER}:
        raise TokenRejected("the presigned URL signs headers the authenticator cannot reproduce")
    try:
        signed_at = datetime.strptime(params.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError as exc:
        raise TokenRejected("X-Amz-Date or X-Amz-Expires is malformed") from exc
    if not 0 < expires <= int(MAX_AGE.total_seconds()) or credential[1] != signed_at.strftime("%Y%m%d"):
        raise TokenRejected("X-Amz-Expires or the credential date is out of range")
    return Presigned(
        scheme=scheme,
        host=host,
        path=path,
        params=params,
        access_key_id=credential[0],
        scope="/".join(credential[1:]),
        region=credential[2],
        signed_at=signed_at,
        signed_headers=signed,
        signature=params.get("X-Amz-Signature", ""),
    )


def check_fresh(presigned: Presigned, now: datetime) -> None:
    """Raises TokenRejected when the token is older than EKS accepts (15 min) or dated in the future."""
    if now > presigned.signed_at + MAX_AGE:
        raise TokenRejected(f"the token expired (signed at {presigned.signed_at:%Y-%m-%dT%H:%M:%SZ})")
    if presigned.signed_at > now + MAX_SKEW:
        raise TokenRejected("the token is dated in the future")


def canonical_request(presigned: Presigned, cluster_name: str) -> str:
    """SigV4's canonical request for the presigned GET, with the cluster header as the verifier sets it."""
    query = "&".join(
        f"{_enc(k)}={_enc(v)}" for k, v in sorted(presigned.params.items()) if k != "X-Amz-Signature"
    )
    values = {"host": presigned.host, CLUSTER_ID_HEADER: cluster_name}
    names = sorted(presigned.signed_headers)
    headers = "".join(f"{name}:{' '.join(values[name].split())}\n" for name in names)
    signed = ";".join(sorted(presigned.signed_headers))
    return "\n".join(("GET", presigned.path, query, headers, signed, EMPTY_SHA256))


def signature(presigned: Presigned, secret_access_key: str, cluster_name: str) -> str:
    """The signature STS would compute for this URL and secret (AWS4-HMAC-SHA256)."""
    amz_date = presigned.params["X-Amz-Date"]
    digest = hashlib.sha256(canonical_request(presigned, cluster_name).encode()).hexdigest()
    to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, presigned.scope, digest))
    key = ("AWS4" + secret_access_key).encode()
    for part in presigned.scope.split("/")[:4]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def check_signature(presigned: Presigned, secret_access_key: str, cluster_name: str) -> None:
    """Raises TokenRejected unless the URL was signed with this secret for this cluster."""
    expected = signature(presigned, secret_access_key, cluster_name)
    if not hmac.compare_digest(expected, presigned.signature):
        raise TokenRejected(
            f"the signature does not match for cluster {cluster_name} (a token for another cluster, "
            "or altered)"
        )


def _enc(value: str) -> str:
    return quote(value, safe="-_.~")
