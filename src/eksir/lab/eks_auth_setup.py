"""Wiring the lab's EKS token authenticator: start it with the API server, then tell it about moto and the
cluster, and point moto's cluster record at the lab API server.

Why in two steps: the API server needs the webhook's address at start, while moto, the cluster and its
creator exist only later (the lab starts moto and the control plane in parallel). The authenticator reads
its configuration at each review, so until `connect` writes it every token is refused, as EKS refuses
tokens for a cluster that is still creating. The webhook cache TTL is 0: an aws-auth change (a break-glass
mapping, its rollback) takes effect at the next request, which the tests rely on; EKS caches for minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from eksir.lab import processes
from eksir.lab.eks_authenticator import CONFIG_FILE, AuthConfig
from eksir.lab.moto_eks import ClusterEndpoint, ca_data, publish_cluster_endpoint, set_cluster_endpoint

if TYPE_CHECKING:  # controlplane starts the authenticator through this module
    from eksir.lab.controlplane import ControlPlane
    from eksir.lab.moto_server import AwsEndpoint

WEBHOOK_KUBECONFIG = "eks-authenticator-webhook.kubeconfig"
PROCESS_NAME = "eks-authenticator"


def apiserver_flags(workdir: Path, port: int) -> list[str]:
    """kube-apiserver flags sending unknown bearer tokens to the authenticator (TokenReview v1)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "authenticator", "cluster": {"server": f"http://127.0.0.1:{port}/authenticate"}}
        ],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "authenticator", "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }
    path = workdir / WEBHOOK_KUBECONFIG
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return [
        f"--authentication-token-webhook-config-file={path}",
        "--authentication-token-webhook-version=v1",
        "--authentication-token-webhook-cache-ttl=0s",
    ]


def start(workdir: Path, port: int) -> processes.ProcessRecord:
    """Start the authenticator on 127.0.0.1:`port`, recorded with the lab's other processes."""
    argv = [
        sys.executable,
        "-m",
        "eksir.lab.eks_authenticator",
        "--port",
        str(port),
        "--config",
        str(workdir / CONFIG_FILE),
    ]
    return processes.start_process(workdir, PROCESS_NAME, argv, port, workdir / f"{PROCESS_NAME}.log")


def _client_cert(kubeconfig: Path) -> tuple[str, str]:
    user = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))["users"][0]["user"]
    return str(user["client-certificate"]), str(user["client-key"])


def connect(plane: ControlPlane, aws: AwsEndpoint, cluster: str, *, in_process: bool) -> AuthConfig:
    """Point moto's cluster at the lab API server and configure the authenticator; returns what it was told.

    `aws` is the lab's AwsEndpoint (its dummy key created the cluster, so it is the cluster creator).
    `in_process`: moto runs in this process (tests) rather than as `python -m eksir.lab.moto_eks`.
    Raises LabError, or botocore errors from moto.
    """
    eks = aws.client("eks")
    name = cluster
    arn = eks.describe_cluster(name=name)["cluster"]["arn"]
    target = ClusterEndpoint(arn.split(":")[4], arn.split(":")[3], name, plane.server, ca_data(plane.ca_file))
    if in_process:
        set_cluster_endpoint(target)
    else:
        publish_cluster_endpoint(aws.url, target)
    caller = aws.client("sts").get_caller_identity()
    creator = str(caller["Arn"]).replace(":sts::", ":iam::", 1)
    cert, key = _client_cert(plane.admin_kubeconfig)
    config = AuthConfig(
        cluster_name=name,
        sts_endpoint=aws.url,
        moto_url=aws.url,
        apiserver=plane.server,
        ca_file=str(plane.ca_file),
        client_cert=cert,
        client_key=key,
        creator_arn=creator,
        known_keys={
            aws.access_key_id: {"secret": aws.secret_access_key, "arn": creator, "user_id": caller["UserId"]}
        },
    )
    config.save(plane.workdir / CONFIG_FILE)
    return config


def add_cluster(workdir: Path, aws: AwsEndpoint, cluster: str) -> None:
    """Another account's cluster served by the same lab API server (the fleet lab's second member account):
    moto's record of `cluster` in `aws`'s account points at the API server, and the authenticator accepts
    tokens naming it. `workdir`: the control plane's (where `connect` wrote the configuration); moto is the
    lab's detached server. Raises LabError, OSError, or botocore errors from moto.
    """
    from dataclasses import replace  # noqa: PLC0415

    path = workdir / CONFIG_FILE
    config = AuthConfig.load(path)
    arn = aws.client("eks").describe_cluster(name=cluster)["cluster"]["arn"]
    target = ClusterEndpoint(
        arn.split(":")[4], arn.split(":")[3], cluster, config.apiserver, ca_data(Path(config.ca_file))
    )
    publish_cluster_endpoint(aws.url, target)
    replace(config, other_clusters=[*config.other_clusters, cluster]).save(path)
