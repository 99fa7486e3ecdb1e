"""Which credentials reach the cluster: `--kubeconfig`, then `KUBECONFIG`, then an EKS token, as kubectl and
the AWS CLI users expect.

Why this order and not "kubeconfig if it happens to exist": a responder who passes `--kubeconfig` means it;
one who exported `KUBECONFIG` (as `eval "$(eksir lab env)"` or `aws eks update-kubeconfig` setups do) expects
every tool to honour it; one who did neither has AWS credentials and a finding naming the cluster, which is
all an EKS token needs (DescribeCluster gives the endpoint and CA). `KUBECONFIG` may list several files
separated by ':' (';' on Windows); files that do not exist are skipped, as kubectl skips them, but a list
naming none that exists is an error rather than a silent fall-through to another identity. `~/.kube/config` is
not read implicitly: it often points at another cluster than the finding's, and acting on the wrong cluster is
the worst mistake a responder can make; `--context` alone still selects one
of its contexts, since that is explicit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from eksir.errors import BadInputError

KUBECONFIG_ENV = "KUBECONFIG"


class SourceKind(StrEnum):
    KUBECONFIG = "kubeconfig"
    EKS_TOKEN = "eks-token"


@dataclass(frozen=True)
class KubeSource:
    """Where the Kubernetes credentials come from; `origin` says why, for messages and the case record."""

    kind: SourceKind
    origin: str
    kubeconfig: str | None = None  # one path, or several joined by os.pathsep
    context: str | None = None


def choose_source(
    kubeconfig: Path | None, context: str | None, environ: Mapping[str, str] | None = None
) -> KubeSource:
    """`--kubeconfig` > `KUBECONFIG` > EKS token.

    Raises BadInputError for a named file that does not exist.
    """
    env = os.environ if environ is None else environ
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise BadInputError(f"--kubeconfig {kubeconfig}: no such file")
        return KubeSource(SourceKind.KUBECONFIG, "--kubeconfig", str(kubeconfig), context)
    listed = env.get(KUBECONFIG_ENV, "")
    if listed.strip():
        paths = [p for p in listed.split(os.pathsep) if p.strip()]
        existing = [p for p in paths if Path(p).expanduser().is_file()]
        if not existing:
            raise BadInputError(
                f"{KUBECONFIG_ENV}={listed[:200]} names no existing file: fix or unset it "
                "(without it eksir uses an EKS token from your AWS credentials)"
            )
        joined = os.pathsep.join(str(Path(p).expanduser()) for p in existing)
        return KubeSource(SourceKind.KUBECONFIG, f"{KUBECONFIG_ENV} environment variable", joined, context)
    if context is not None:
        return KubeSource(SourceKind.KUBECONFIG, "--context in ~/.kube/config", None, context)
    return KubeSource(SourceKind.EKS_TOKEN, "EKS token from AWS credentials")
