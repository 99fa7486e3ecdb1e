"""The plan says from where a private-only cluster endpoint can be reached (resolve/endpoint.py says why).

Checked only when eksir itself will reach the cluster with an EKS token: with a kubeconfig the responder
chose the route (a bastion, a tunnel) and DescribeCluster's view of the endpoint does not apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eksir.clients.aws import AwsClients
from eksir.clients.kubeconfig import SourceKind
from eksir.engine.context import KubeProvider
from eksir.errors import UnreachableError
from eksir.resolve.endpoint import endpoint_reach
from eksir.safetext import plain_console
from eksir.store import CaseHandle

REACH_EVENT = "cluster.endpoint-reach"


def reach_note(cluster: str | None, aws: AwsClients, kube: KubeProvider, case: CaseHandle) -> str | None:
    """The endpoint note (recorded in the case and printed to stderr), or None when nothing is in the way.

    Raises the eksir error of DescribeCluster.
    """
    if not cluster or kube.source().kind is not SourceKind.EKS_TOKEN:
        return None
    reach = endpoint_reach(aws("eks"), cluster)
    note = reach.note()
    if note:
        case.append(REACH_EVENT, {"cluster": cluster, "private_only": reach.private_only, "note": note})
        plain_console(stderr=True).print(f"eksir: {note}", markup=False, highlight=False)
    return note


@contextmanager
def explained(note: str | None) -> Iterator[None]:
    """An unreachable cluster's error names the route to it (exit 7 as before, with the why)."""
    try:
        yield
    except UnreachableError as exc:
        if not note:
            raise
        raise UnreachableError(f"{exc.message}; {note}") from exc
