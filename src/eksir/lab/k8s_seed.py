"""Seed the real kube-apiserver with an EKS-shaped cluster and the attacker's privileged pod.

No scheduler, controller-manager or kubelet runs in the lab, so this module does their part: it creates the
ReplicaSets and pods a Deployment would have, binds pods to nodes with `spec.nodeName`, and writes pod and
node status through the status subresources. Node names, provider ids and labels repeat the EC2 instances moto
holds, so a responder can walk from a pod to its instance exactly as on EKS. The attacker's requests go
through the API as the attacker (front-proxy identity or a real service-account token), so the audit log
records them as EKS would. Raises kubernetes ApiException unchanged; the orchestrator reports it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from eksir.errors import LabError
from eksir.lab.aws_seed import AwsInventory, NodeInstance
from eksir.lab.scenarios import ATTACKER_IMAGE, ATTACKER_IP, ATTACKER_KUBECTL_UA, Scenario

KUBELET_VERSION = "v1.31.2-eks-94953ac"
WORKLOADS: tuple[tuple[str, str, int, str, str], ...] = (
    # namespace, name, replicas, image, service account
    (
        "payments",
        "payments-api",
        2,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments-api:1.14.2",
        "payments-api",
    ),
    ("shop", "storefront", 3, "public.ecr.aws/nginx/nginx:1.27", "storefront"),
    ("monitoring", "prometheus", 1, "quay.io/prometheus/prometheus:v2.54.1", "default"),
    (
        "kube-system",
        "coredns",
        2,
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.11.3",
        "default",
    ),
)
IRSA_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    # namespace, service account, IRSA role: both have a pod on the attacked node (nodes[1])
    ("payments", "payments-api", "payments-api-irsa"),
    ("shop", "storefront", "storefront-irsa"),
)
NAMESPACES = {
    "payments": {},
    "shop": {"pod-security.kubernetes.io/enforce": "baseline"},
    "monitoring": {},
}


def _node_body(node: NodeInstance, region: str, nodegroup: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": node.private_dns,
            "labels": {
                "kubernetes.io/hostname": node.private_dns,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": node.instance_type,
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": node.az,
                "eks.amazonaws.com/nodegroup": nodegroup,
                "eks.amazonaws.com/capacityType": node.capacity_type,
                "eks.amazonaws.com/nodegroup-image": "ami-0c1e3f5a7b9d2e4f6",
            },
            "annotations": {"alpha.kubernetes.io/provided-node-ip": node.private_ip},
        },
        "spec": {"providerID": node.provider_id},
    }


def create_node(core: client.CoreV1Api, node: NodeInstance, region: str, nodegroup: str) -> None:
    """The Node object of an EC2 instance, Ready, as its kubelet registers it."""
    core.create_node(_node_body(node, region, nodegroup))
    core.patch_node_status(node.private_dns, _node_status(node))


def _node_status(node: NodeInstance) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": node.private_ip},
                {"type": "InternalDNS", "address": node.private_dns},
                {"type": "Hostname", "address": node.private_dns},
            ],
            "capacity": {"cpu": "2", "memory": "7910Mi", "pods": "29"},
            "allocatable": {"cpu": "1930m", "memory": "7220Mi", "pods": "29"},
            "nodeInfo": {
                "machineID": hashlib.md5(node.instance_id.encode()).hexdigest(),
                "systemUUID": f"ec2{hashlib.sha1(node.instance_id.encode()).hexdigest()[3:32]}",
                "bootID": hashlib.sha256(node.instance_id.encode()).hexdigest()[:36],
                "kernelVersion": "6.1.112-122.189.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241010",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    }


def aws_auth_data(inv: AwsInventory) -> dict[str, str]:
    """The `data` of kube-system/aws-auth: node role, ops role, the mapped user, in EKS's YAML layout."""
    map_roles = [
        {
            "rolearn": inv.node_role.arn,
            "username": "system:node:{{EC2PrivateDNSName}}",
            "groups": ["system:bootstrappers", "system:nodes"],
        },
        {
            "rolearn": inv.roles["ops-admin"].arn,
            "username": "ops-admin:{{SessionName}}",
            "groups": ["system:masters"],
        },
        {
            "rolearn": inv.roles["github-actions-deploy"].arn,
            "username": "github-actions:{{SessionName}}",
            "groups": ["deployers"],
        },
    ]
    map_users = [{"userarn": inv.users["bob"].arn, "username": "bob", "groups": ["platform-admins"]}]
    return {
        "mapRoles": yaml.safe_dump(map_roles, sort_keys=False),
        "mapUsers": yaml.safe_dump(map_users, sort_keys=False),
    }


def _ip_for(node: NodeInstance, index: int) -> str:
    prefix = node.private_ip.rsplit(".", 1)[0]
    return f"{prefix}.{100 + index}"


@dataclass
class _Seeder:
    api: ApiClient
    inv: AwsInventory
    ip_counter: int = 0

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def next_ip(self, node: NodeInstance) -> str:
        self.ip_counter += 1
        return _ip_for(node, self.ip_counter)

    def run_pod(self, namespace: str, body: dict[str, Any], node: NodeInstance) -> dict[str, Any]:
        """Create a pod bound to `node` and mark it Running, as the kubelet would."""
        body["spec"]["nodeName"] = node.private_dns
        pod = self.core.create_namespaced_pod(namespace, body)
        self.mark_running(pod.metadata.name, namespace, node)
        return dict(self.api.sanitize_for_serialization(pod))

    def mark_running(self, name: str, namespace: str, node: NodeInstance) -> None:
        """Patch the pod Running as the kubelet would, with the next free pod IP on the node."""
        mark_running(self.core, name, namespace, node, self.next_ip(node))


def mark_running(core: client.CoreV1Api, name: str, namespace: str, node: NodeInstance, ip: str) -> None:
    """Patch pod status through the status subresource: Running, Ready, with pod and host IPs."""
    pod = core.read_namespaced_pod(name, namespace)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = [
        {
            "name": c.name,
            "image": c.image,
            "imageID": f"{c.image.split(':')[0]}@sha256:{hashlib.sha256(c.image.encode()).hexdigest()}",
            "containerID": f"containerd://{hashlib.sha256((name + c.name).encode()).hexdigest()}",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for c in pod.spec.containers
    ]
    ip = node.private_ip if pod.spec.host_network else ip
    status = {
        "phase": "Running",
        "hostIP": node.private_ip,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "qosClass": "BestEffort",
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": statuses,
    }
    core.patch_namespaced_pod_status(name, namespace, {"status": status})


def _labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app}


def _pod_template(app: str, image: str, sa: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": _labels(app)},
        "spec": {
            "serviceAccountName": sa,
            "containers": [
                {
                    "name": app,
                    "image": image,
                    "ports": [{"containerPort": 8080}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }


def _owner(kind: str, api_version: str, obj: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj.metadata.name,
        "uid": obj.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _deploy(seeder: _Seeder, namespace: str, app: str, replicas: int, *, image: str, sa: str) -> None:
    """Deployment -> ReplicaSet -> pods (spread over the nodes), plus a Service and a PodDisruptionBudget."""
    apps = client.AppsV1Api(seeder.api)
    template = _pod_template(app, image, sa)
    selector = {"matchLabels": _labels(app)}
    deployment = apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": app, "labels": _labels(app)},
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        },
    )
    template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    rs_labels = {**_labels(app), "pod-template-hash": template_hash}
    rs_template = {**template, "metadata": {"labels": rs_labels}}
    replica_set = apps.create_namespaced_replica_set(
        namespace,
        {
            "metadata": {
                "name": f"{app}-{template_hash}",
                "labels": rs_labels,
                "ownerReferences": [_owner("Deployment", "apps/v1", deployment)],
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": rs_labels}, "template": rs_template},
        },
    )
    for index in range(replicas):
        node = seeder.inv.nodes[index % len(seeder.inv.nodes)]
        suffix = hashlib.sha256(f"{app}{index}".encode()).hexdigest()[:5]
        body = {
            "metadata": {
                "name": f"{app}-{template_hash}-{suffix}",
                "labels": rs_labels,
                "ownerReferences": [_owner("ReplicaSet", "apps/v1", replica_set)],
            },
            "spec": json.loads(json.dumps(rs_template["spec"])),
        }
        seeder.run_pod(namespace, body, node)
    _controller_status(seeder, namespace, deployment, replica_set, replicas)
    seeder.core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": app},
            "spec": {"selector": _labels(app), "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    policy = client.PolicyV1Api(seeder.api)
    budget = policy.create_namespaced_pod_disruption_budget(
        namespace, {"metadata": {"name": app}, "spec": {"minAvailable": 1, "selector": selector}}
    )
    status = {
        "observedGeneration": budget.metadata.generation,
        "currentHealthy": replicas,
        "desiredHealthy": 1,
        "expectedPods": replicas,
        "disruptionsAllowed": max(replicas - 1, 0),
    }
    policy.patch_namespaced_pod_disruption_budget_status(app, namespace, {"status": status})


def _controller_status(
    seeder: _Seeder, namespace: str, deployment: Any, replica_set: Any, replicas: int
) -> None:
    """Write the status the Deployment and ReplicaSet controllers would (every seeded pod is Ready).

    Why: the lab runs no kube-controller-manager (without kubelets it would mark every pod NotReady and
    evict them, the attacker's pod and its evidence included), so without this every workload would read as
    0 ready replicas and the outage check would raise false alarms that real clusters never show.
    """
    apps = client.AppsV1Api(seeder.api)
    counts = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
    rs_status = {
        **counts,
        "fullyLabeledReplicas": replicas,
        "observedGeneration": replica_set.metadata.generation,
    }
    apps.patch_namespaced_replica_set_status(replica_set.metadata.name, namespace, {"status": rs_status})
    dep_status = {**counts, "updatedReplicas": replicas, "observedGeneration": deployment.metadata.generation}
    apps.patch_namespaced_deployment_status(deployment.metadata.name, namespace, {"status": dep_status})


def _daemonset_pods(seeder: _Seeder) -> None:
    """aws-node (VPC CNI) as a DaemonSet with one host-network pod per node."""
    image = "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.18.5-eksbuild.1"
    labels = {"k8s-app": "aws-node"}
    template = {
        "metadata": {"labels": labels},
        "spec": {
            "hostNetwork": True,
            "serviceAccountName": "aws-node",
            "containers": [
                {
                    "name": "aws-node",
                    "image": image,
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                }
            ],
        },
    }
    seeder.core.create_namespaced_service_account("kube-system", {"metadata": {"name": "aws-node"}})
    ds = client.AppsV1Api(seeder.api).create_namespaced_daemon_set(
        "kube-system",
        {
            "metadata": {"name": "aws-node", "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": template},
        },
    )
    for node in seeder.inv.nodes:
        body = {
            "metadata": {
                "name": f"aws-node-{hashlib.sha256(node.instance_id.encode()).hexdigest()[:5]}",
                "labels": labels,
                "ownerReferences": [_owner("DaemonSet", "apps/v1", ds)],
            },
            "spec": json.loads(json.dumps(template["spec"])),
        }
        seeder.run_pod("kube-system", body, node)
    count = len(seeder.inv.nodes)
    status = {
        "desiredNumberScheduled": count,
        "currentNumberScheduled": count,
        "numberReady": count,
        "numberAvailable": count,
        "updatedNumberScheduled": count,
        "numberMisscheduled": 0,
        "observedGeneration": ds.metadata.generation,
    }
    client.AppsV1Api(seeder.api).patch_namespaced_daemon_set_status(
        "aws-node", "kube-system", {"status": status}
    )


def _rbac_and_identities(seeder: _Seeder) -> None:
    """aws-auth, the IRSA service account, and the bindings the mapped identities rely on."""
    core, rbac = seeder.core, client.RbacAuthorizationV1Api(seeder.api)
    core.create_namespaced_config_map(
        "kube-system", {"metadata": {"name": "aws-auth"}, "data": aws_auth_data(seeder.inv)}
    )
    for namespace, account, role in IRSA_ACCOUNTS:
        role_arn = seeder.inv.roles[role].arn
        core.create_namespaced_service_account(
            namespace,
            {"metadata": {"name": account, "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        )
    admin_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
    for name, group in (
        ("platform-admins", "platform-admins"),
        ("oidc-platform-admins", "oidc:platform-admins"),
    ):
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": admin_ref,
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
            }
        )
    rbac.create_namespaced_role(
        "payments",
        {
            "metadata": {"name": "payments-deployer"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "services", "configmaps"], "verbs": ["*"]},
                {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["*"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        "payments",
        {
            "metadata": {"name": "payments-api-deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "payments-deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "payments-api", "namespace": "payments"}],
        },
    )


def seed_cluster(api: ApiClient, inv: AwsInventory) -> None:
    """Nodes, namespaces, identities, RBAC and workloads: the cluster before the attack."""
    from eksir.lab.controlplane import create_namespace  # noqa: PLC0415 - avoid a start-up import cycle

    seeder = _Seeder(api, inv)
    for node in inv.nodes:
        create_node(seeder.core, node, inv.region, inv.nodegroup)
    for name, labels in NAMESPACES.items():
        create_namespace(api, name, labels)
    _rbac_and_identities(seeder)
    _daemonset_pods(seeder)
    for namespace, app, replicas, image, sa in WORKLOADS:
        _deploy(seeder, namespace, app, replicas, image=image, sa=sa)


@dataclass(frozen=True)
class AttackerPod:
    """The privileged pod as the API returned it, its node, and the attacker's audit events."""

    pod: dict[str, Any]
    node: NodeInstance
    username: str
    create_event: dict[str, Any]
    audit_events: list[dict[str, Any]]
    sa_token: str | None


def _attacker_pod_body(scenario: Scenario) -> dict[str, Any]:
    return {
        "metadata": {"name": scenario.pod_name, "labels": {"app": scenario.pod_name}},
        "spec": {
            "serviceAccountName": scenario.service_account,
            "hostPID": True,
            "containers": [
                {
                    "name": "shell",
                    "image": ATTACKER_IMAGE,
                    "command": ["/bin/sh", "-c", "sleep infinity"],
                    "securityContext": {"privileged": True},
                    "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                }
            ],
            "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
        },
    }


def service_account_token(api: ApiClient, namespace: str, name: str) -> str:
    """A real token for the service account from the TokenRequest API (what the attacker stole)."""
    body = {"spec": {"expirationSeconds": 86400}}
    token = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, body)
    return str(token.status.token)


def token_client(server: str, ca_file: Path, token: str) -> ApiClient:
    """An ApiClient that authenticates with a bearer token, as a pod's service account does."""
    configuration = client.Configuration()
    configuration.host = server
    configuration.ssl_ca_cert = str(ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def as_attacker(api: ApiClient) -> ApiClient:
    """Make requests look like kubectl from the attacker's machine (the API server trusts X-Forwarded-For)."""
    api.user_agent = ATTACKER_KUBECTL_UA
    api.set_default_header("X-Forwarded-For", ATTACKER_IP)
    return api


def attack(
    seed_api: ApiClient, attacker: ApiClient, scenario: Scenario, node: NodeInstance
) -> dict[str, Any]:
    """The attacker looks around, then creates the privileged pod on `node`; the lab plays kubelet."""
    core = client.CoreV1Api(attacker)
    for call in (lambda: core.list_namespaced_pod(scenario.namespace), core.list_node):
        try:
            call()
        except client.ApiException as exc:  # a service account may not list nodes: a 403 in the audit log
            if exc.status != 403:
                raise
    body = _attacker_pod_body(scenario)
    body["spec"]["nodeName"] = node.private_dns
    pod = core.create_namespaced_pod(scenario.namespace, body)
    mark_running(client.CoreV1Api(seed_api), pod.metadata.name, scenario.namespace, node, _ip_for(node, 77))
    fresh = client.CoreV1Api(seed_api).read_namespaced_pod(pod.metadata.name, scenario.namespace)
    return dict(seed_api.sanitize_for_serialization(fresh))


def read_audit_log(path: Path) -> list[dict[str, Any]]:
    """Every event in the API server's JSON audit log (torn last lines are skipped)."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def attacker_events(
    audit_log: Path, username: str, scenario: Scenario, timeout: float = 10.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The attacker's pod-create audit event and all of the attacker's events, waiting for the log flush.

    Raises LabError when the create event does not appear within `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in read_audit_log(audit_log) if e.get("user", {}).get("username") == username]
        for event in events:
            ref = event.get("objectRef", {})
            if (
                event.get("verb") == "create"
                and ref.get("resource") == "pods"
                and not ref.get("subresource")
                and ref.get("name") == scenario.pod_name
                and ref.get("namespace") == scenario.namespace
            ):
                return event, events
        if time.monotonic() > deadline:
            raise LabError(f"the audit log {audit_log} has no pod create by {username} after {timeout:.0f}s")
        time.sleep(0.1)
