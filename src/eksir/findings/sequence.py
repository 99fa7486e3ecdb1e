"""The `Sequence` of a GuardDuty attack sequence (`service.detection.sequence`) as an `AttackSequence`.

An attack sequence correlates audit-log, runtime, malware and API signals of up to 24 hours into one finding
whose `Sequence` names the incident's scope: actors, up to 400 resources (clusters, workloads, containers,
instances, access keys), network endpoints, signals and indicators. The shapes are botocore's `Sequence`,
`Signal`, `Actor`, `ResourceV2` (+ `ResourceData`), `NetworkEndpoint` and `Indicator` (wire names). Every
list is bounded and every string cut (`findings.bounded`): the whole object is attacker-controlled text.
A signal, actor, resource or endpoint without its id is dropped: nothing could refer to it.
"""

from __future__ import annotations

from typing import Any

from eksir.findings.bounded import build, dicts, integer, moment, number, obj, text, texts
from eksir.models.finding import (
    AttackSequence,
    Cluster,
    SequenceActor,
    SequenceEndpoint,
    SequenceIndicator,
    SequenceResource,
    SequenceSignal,
)

MAX_RESOURCES = 400  # GuardDuty's documented maximum per sequence
MAX_SIGNALS = 1000
MAX_ACTORS = 200
MAX_ENDPOINTS = 400
MAX_INDICATORS = 200
MAX_REFS = 400


def sequence_of(service: dict[str, Any] | None) -> AttackSequence | None:
    """The finding's attack sequence, or None when it has no `detection.sequence` with a uid."""
    sequence = obj(obj(service, "detection"), "sequence")
    uid = text(sequence, "uid")
    if sequence is None or uid is None:
        return None
    return build(
        AttackSequence,
        uid=uid,
        description=text(sequence, "description"),
        signals=tuple(s for item in dicts(sequence, "signals", MAX_SIGNALS) if (s := _signal(item))),
        actors=tuple(a for item in dicts(sequence, "actors", MAX_ACTORS) if (a := _actor(item))),
        resources=tuple(r for item in dicts(sequence, "resources", MAX_RESOURCES) if (r := _resource(item))),
        endpoints=tuple(e for item in dicts(sequence, "endpoints", MAX_ENDPOINTS) if (e := _endpoint(item))),
        indicators=tuple(
            i for item in dicts(sequence, "sequenceIndicators", MAX_INDICATORS) if (i := _indicator(item))
        ),
        additional_types=texts(sequence, "additionalSequenceTypes", 32),
    )


def _signal(item: dict[str, Any]) -> SequenceSignal | None:
    uid = text(item, "uid")
    if uid is None:
        return None
    return build(
        SequenceSignal,
        uid=uid,
        type=text(item, "type"),
        name=text(item, "name"),
        description=text(item, "description"),
        severity=number(item, "severity"),
        count=integer(item, "count"),
        first_seen=moment(item, "firstSeenAt") or moment(item, "createdAt"),
        last_seen=moment(item, "lastSeenAt") or moment(item, "updatedAt"),
        resource_uids=texts(item, "resourceUids", MAX_REFS),
        actor_ids=texts(item, "actorIds", MAX_REFS),
        endpoint_ids=texts(item, "endpointIds", MAX_REFS),
    )


def _actor(item: dict[str, Any]) -> SequenceActor | None:
    actor_id = text(item, "id")
    if actor_id is None:
        return None
    user, session = obj(item, "user"), obj(item, "session")
    return build(
        SequenceActor,
        id=actor_id,
        user_name=text(user, "name"),
        user_uid=text(user, "uid"),
        user_type=text(user, "type"),
        credential_uid=text(user, "credentialUid"),
        account_uid=text(obj(user, "account"), "uid"),
        session_uid=text(session, "uid"),
        session_issuer=text(session, "issuer"),
        process_name=text(obj(item, "process"), "name"),
    )


def _resource(item: dict[str, Any]) -> SequenceResource | None:
    uid = text(item, "uid")
    if uid is None:
        return None
    data = obj(item, "data")
    workload, container = obj(data, "kubernetesWorkload"), obj(data, "container")
    key = obj(data, "accessKey")
    return build(
        SequenceResource,
        uid=uid,
        resource_type=text(item, "resourceType"),
        name=text(item, "name"),
        account_id=text(item, "accountId"),
        region=text(item, "region"),
        namespace=text(workload, "namespace"),
        workload_type=text(workload, "type"),
        container_uids=texts(workload, "containerUids", MAX_REFS),
        image=text(container, "image"),
        instance_uids=texts(obj(data, "eksCluster"), "ec2InstanceUids", MAX_REFS),
        principal_id=text(key, "principalId"),
        user_name=text(key, "userName"),
        user_type=text(key, "userType"),
    )


def _endpoint(item: dict[str, Any]) -> SequenceEndpoint | None:
    endpoint_id = text(item, "id")
    if endpoint_id is None:
        return None
    system = obj(item, "autonomousSystem")
    return build(
        SequenceEndpoint,
        id=endpoint_id,
        ip=text(item, "ip"),
        domain=text(item, "domain"),
        port=integer(item, "port"),
        country=text(obj(item, "location"), "country"),
        asn=text(system, "number") or text(system, "name"),
    )


def _indicator(item: dict[str, Any]) -> SequenceIndicator | None:
    key = text(item, "key")
    if key is None:
        return None
    return build(SequenceIndicator, key=key, title=text(item, "title"), values=texts(item, "values", 100))


def sequence_cluster(sequence: AttackSequence | None) -> Cluster | None:
    """The cluster of an attack sequence without `eksClusterDetails`: its first EKS_CLUSTER resource."""
    if sequence is None:
        return None
    for resource in sequence.resources:
        if resource.resource_type == "EKS_CLUSTER":
            arn = resource.uid if resource.uid.startswith("arn:") else None
            name = resource.name or (arn.rsplit("/", 1)[-1] if arn else resource.uid)
            return build(Cluster, name=name, arn=arn)
    return None
