"""Lab imitation of EKS's IAM authenticator: a webhook token authenticator for the lab's kube-apiserver.

shared/DESIGN.md ("What the lab may imitate") allows this one piece, because no real component can do it here:
moto routes a presigned GetCallerIdentity GET to S3, and upstream aws-iam-authenticator trusts only
`sts.*.amazonaws.com`. The kube-apiserver sends each bearer token it cannot authenticate itself to this server
(`--authentication-token-webhook-config-file`, TokenReview v1), which does what EKS does:

1. checks the token's presigned URL and its SigV4 signature (eksir.lab.eks_presign), `x-k8s-aws-id` equal to
   the lab cluster's name (or one of `other_clusters`: the fleet lab's second account's cluster, served by
   the same API server), at most 15 minutes old;
2. finds the key's secret and principal in moto: `GET /moto-api/data.json` lists every IAM access key (AKIA,
   with its user) and every STS session moto issued (ASIA, with its assumed-role ARN, session name and
   token). The detached moto of `eksir lab up` answers the same for one key on a lab route
   (`eksir.lab.moto_eks.access_key_data`, milliseconds instead of data.json's 10-40 s, which the API server's
   30 s webhook timeout does not wait for); the in-process moto of the tests has only data.json. Keys the
   lab made up itself (the dummy key that seeded, and so created, the cluster) are in the configuration;
3. maps the principal like EKS in CONFIG_MAP mode: the cluster creator is `kubernetes-admin` in
   `system:masters`; otherwise kube-system/aws-auth's mapUsers (user ARN) or mapRoles (the role ARN of an
   assumed-role session, path dropped), with the `{{AccountID}}`, `{{SessionName}}` ('@' -> '-'),
   `{{SessionNameRaw}}` and `{{AccessKeyID}}` templates. Unmapped: not authenticated, hence a 401.

The configuration (`eks-authenticator.json` beside the control plane) is read at each review, so the lab
can start this server with the API server and tell it about moto and the cluster once they exist. Run as
`python -m eksir.lab.eks_authenticator --port P --config FILE`. Never imported by the product.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from eksir.lab import eks_presign
from eksir.lab.eks_presign import TokenRejected
from eksir.lab.moto_eks import KEY_ROUTE

CONFIG_FILE = "eks-authenticator.json"
CREATOR_USERNAME = "kubernetes-admin"
_MAX_BODY = 64 * 1024
_TEMPLATES = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class AuthConfig:
    """What the authenticator needs to know; written by the lab, read at every review."""

    cluster_name: str
    sts_endpoint: str  # the only STS endpoint a token may name (moto's URL in the lab)
    moto_url: str
    apiserver: str
    ca_file: str
    client_cert: str  # a client certificate allowed to read kube-system/aws-auth
    client_key: str
    creator_arn: str | None = None
    known_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # key id -> secret, arn, user_id
    other_clusters: list[str] = field(default_factory=list)
    """More EKS cluster names this API server answers for (the fleet lab's second account's cluster): a
    token may name any of them. One lab API server plays them all; EKS has one endpoint per cluster."""

    @classmethod
    def load(cls, path: Path) -> AuthConfig:
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.__dict__, indent=2), encoding="utf-8")
        partial.replace(path)


@dataclass(frozen=True)
class Caller:
    """The principal a key belongs to, as STS GetCallerIdentity would describe it."""

    access_key_id: str
    secret: str
    arn: str  # user ARN, or assumed-role session ARN
    canonical_arn: str  # user ARN, or the role's ARN without path
    user_id: str
    account: str
    session_name: str = ""
    session_token: str | None = None


def _caller_from_moto(data: dict[str, Any], key_id: str) -> Caller | None:
    """The key's principal from moto's data.json, or None when moto never issued it (or it is inactive)."""
    for session in data.get("sts", {}).get("AssumedRole", []):
        if session.get("access_key_id") == key_id:
            role_arn = str(session.get("role_arn") or "")
            role_id = next(
                (r.get("id") for r in data.get("iam", {}).get("Role", []) if r.get("arn") == role_arn), "AROA"
            )
            account = str(session.get("account_id") or role_arn.split(":")[4])
            return Caller(
                access_key_id=key_id,
                secret=str(session["secret_access_key"]),
                arn=str(session["arn"]),
                canonical_arn=f"arn:aws:iam::{account}:role/{role_arn.rsplit('/', 1)[-1]}",
                user_id=f"{role_id}:{session.get('session_name')}",
                account=account,
                session_name=str(session.get("session_name") or ""),
                session_token=str(session.get("session_token") or ""),
            )
    for key in data.get("iam", {}).get("AccessKey", []):
        if key.get("access_key_id") == key_id and key.get("user_name") and key.get("status") == "Active":
            users = data.get("iam", {}).get("User", [])
            user = next((u for u in users if u.get("name") == key["user_name"]), None)
            if user is None:
                return None
            arn, secret = str(user["arn"]), str(key["secret_access_key"])
            return Caller(key_id, secret, arn, arn, str(user["id"]), str(user["account_id"]))
    return None


def find_caller(config: AuthConfig, key_id: str) -> Caller:
    """The key's principal and secret. Raises TokenRejected for a key neither the lab nor moto issued."""
    known = config.known_keys.get(key_id)
    if known is not None:
        arn = known["arn"]
        return Caller(key_id, known["secret"], arn, arn, known.get("user_id", key_id), arn.split(":")[4])
    session = _SESSIONS.get(key_id)
    if session is not None:
        return session
    caller = _caller_from_moto(_moto_key_data(config.moto_url, key_id), key_id)
    if caller is None:
        raise TokenRejected(f"access key {key_id} is unknown or inactive")
    if caller.session_token:  # an STS session cannot be deactivated, only expire: remembered
        _SESSIONS[key_id] = caller
    return caller


def _moto_key_data(moto_url: str, key_id: str) -> dict[str, Any]:
    """moto's records of the key: the lab route of `eksir.lab.moto_eks` (milliseconds), else data.json (an
    in-process moto of the tests has no lab route). Raises TokenRejected when moto answers neither."""
    for url in (f"{moto_url}{KEY_ROUTE}?id={urllib.parse.quote(key_id)}", f"{moto_url}/moto-api/data.json"):
        try:
            with urllib.request.urlopen(url, timeout=DATA_TIMEOUT_S) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise TokenRejected(f"moto at {moto_url} did not list its keys: {exc}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TokenRejected(f"moto at {moto_url} did not list its keys: {exc}") from exc
    raise TokenRejected(f"moto at {moto_url} did not list its keys")


DATA_TIMEOUT_S = 60
"""moto's data.json of a cross-account lab (managed policies loaded in three accounts) takes ~10 s idle;
the lab route answers in milliseconds."""
_SESSIONS: dict[str, Caller] = {}
"""Assumed-role sessions already found in moto, by key id. IAM user keys are looked up every time: a key
deactivated by containment must stop authenticating at once, as on EKS. A session has no such switch (EKS
keeps accepting a revoked session's tokens, shared/DESIGN.md), so remembering it changes nothing but the
~10 s a review of a cross-account lab would otherwise wait for moto's data.json on every request."""


def authenticate(token: str, config: AuthConfig, now: datetime | None = None) -> Caller:
    """The verified caller of a token. Raises TokenRejected with the reason."""
    presigned = eks_presign.parse(token, config.sts_endpoint)
    eks_presign.check_fresh(presigned, now or datetime.now(UTC))
    caller = find_caller(config, presigned.access_key_id)
    if caller.session_token is not None and presigned.session_token != caller.session_token:
        raise TokenRejected(f"the session token does not belong to {presigned.access_key_id}")
    names = [config.cluster_name, *config.other_clusters]
    for name in names[1:]:
        try:
            eks_presign.check_signature(presigned, caller.secret, name)
        except TokenRejected:
            continue
        return caller
    eks_presign.check_signature(presigned, caller.secret, config.cluster_name)
    return caller


def read_aws_auth(config: AuthConfig) -> dict[str, str]:
    """kube-system/aws-auth's data ({} when there is none). Raises TokenRejected when it cannot be read."""
    context = ssl.create_default_context(cafile=config.ca_file)
    context.load_cert_chain(config.client_cert, config.client_key)
    url = f"{config.apiserver}/api/v1/namespaces/kube-system/configmaps/aws-auth"
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            return dict(json.loads(resp.read()).get("data") or {})
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise TokenRejected(f"reading aws-auth answered {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TokenRejected(f"cannot read aws-auth: {exc}") from exc


def _render(template: str, caller: Caller) -> str:
    values = {
        "AccountID": caller.account,
        "SessionName": caller.session_name.replace("@", "-"),
        "SessionNameRaw": caller.session_name,
        "AccessKeyID": caller.access_key_id,
    }

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise TokenRejected(f"aws-auth template {{{{{match.group(1)}}}}} is not supported by the lab")
        return values[match.group(1)]

    return _TEMPLATES.sub(one, template)


def map_caller(caller: Caller, aws_auth: dict[str, str], creator_arn: str | None) -> tuple[str, list[str]]:
    """(username, groups) for the caller. Raises TokenRejected when nothing maps it."""
    if creator_arn and caller.canonical_arn == creator_arn:
        return CREATOR_USERNAME, ["system:masters"]
    is_user = ":user/" in caller.canonical_arn
    key, arn_key = ("mapUsers", "userarn") if is_user else ("mapRoles", "rolearn")
    try:
        entries = yaml.safe_load(aws_auth.get(key) or "") or []
    except yaml.YAMLError as exc:
        raise TokenRejected(f"aws-auth {key} is not valid YAML") from exc
    for entry in entries if isinstance(entries, list) else []:
        arn = str(entry.get(arn_key) or "") if isinstance(entry, dict) else ""
        if arn and _canonical(arn) == caller.canonical_arn:
            username = _render(str(entry.get("username") or caller.canonical_arn), caller)
            return username, [_render(str(g), caller) for g in entry.get("groups") or []]
    raise TokenRejected(f"{caller.arn} is not mapped in aws-auth and is not the cluster creator")


def _canonical(arn: str) -> str:
    """A role ARN without its path, as aws-iam-authenticator compares it; anything else unchanged."""
    found = re.match(r"^(arn:[^:]+:iam::\d{12}:role/)(?:.*/)?([^/]+)$", arn)
    return found.group(1) + found.group(2) if found else arn


def review(body: dict[str, Any], config_path: Path) -> tuple[dict[str, Any], str]:
    """The TokenReview answer to a TokenReview request, and a log line (never the token)."""
    token = str((body.get("spec") or {}).get("token") or "")
    answer: dict[str, Any] = {"apiVersion": body.get("apiVersion", "authentication.k8s.io/v1")}
    answer |= {"kind": "TokenReview"}
    try:
        config = AuthConfig.load(config_path)
        caller = authenticate(token, config)
        username, groups = map_caller(caller, read_aws_auth(config), config.creator_arn)
    except (TokenRejected, OSError, ValueError, TypeError) as exc:
        answer["status"] = {"authenticated": False, "error": str(exc)}
        return answer, f"denied: {exc}"
    extra = {
        "accessKeyId": [caller.access_key_id],
        "arn": [caller.arn],
        "canonicalArn": [caller.canonical_arn],
        "principalId": [caller.user_id],
        "sessionName": [caller.session_name],
    }
    user = {"username": username, "uid": f"aws-iam-authenticator:{caller.account}:{caller.user_id}"}
    answer["status"] = {"authenticated": True, "user": user | {"groups": groups, "extra": extra}}
    return answer, f"authenticated {caller.arn} as {username} {groups}"


def _handler(config_path: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                if not 0 < length <= _MAX_BODY:
                    raise ValueError("no or oversized body")
                body = json.loads(self.rfile.read(length))
                answer, note = review(body if isinstance(body, dict) else {}, config_path)
            except ValueError as exc:
                self.send_error(400, str(exc))
                return
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            print(f"{datetime.now(UTC):%H:%M:%S} {note}", file=sys.stderr, flush=True)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per review is written above; the token is in no line

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve TokenReviews on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description="the eksir lab's EKS token authenticator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(args.config))
    print(f"eks-authenticator listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
