"""A realistic incident for resolution tests: real AWS objects in moto, real Kubernetes objects in the lab.

AWS: an EKS cluster, a node role with an instance profile, an Auto Scaling group whose on-demand instance
backs node `<ns>-od`, a Spot instance (RunInstances InstanceMarketOptions) attached to the same group backing
node `<ns>-spot`, an aws-auth-mapped role with a path, an IAM user with an access key, an IRSA role.
Kubernetes: both nodes with EKS labels and providerIDs; Deployment `web` (3 ready) -> ReplicaSet -> the
privileged pod the finding names (ready, with container ids) plus a PDB; an IRSA-annotated ServiceAccount;
`kube-system/aws-auth`. No controller-manager runs, so every status is written through the status subresource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from eksir.models.finding import Actor, ActorKind, Workload
from tests.factories import make_finding

ACCOUNT = "123456789012"
ZONE = "us-east-1a"


@dataclass(frozen=True)
class AwsSeed:
    cluster: str
    asg: str
    on_demand_id: str
    spot_id: str
    instance_profile_arn: str
    node_sg: str
    mapped_role_arn: str  # with its path, as IAM reports it
    mapped_role_id: str
    user_arn: str
    user_key: str
    irsa_role_arn: str


@dataclass
class Incident:
    namespace: str
    aws: AwsSeed
    node: str
    spot_node: str
    pod: str
    pod_uid: str
    replica_set: str
    deployment: str
    service_account: str
    created_nodes: list[str] = field(default_factory=list)

    def cleanup(self, api: Any) -> None:
        core = client.CoreV1Api(api)
        for name in self.created_nodes:
            _ignore_404(lambda n=name: core.delete_node(n))
        _ignore_404(lambda: core.delete_namespaced_config_map("aws-auth", "kube-system"))

    def finding(self, actor: Actor | None = None, **workload: Any) -> Any:
        """A finding for this incident's pod (override workload fields or the actor)."""
        fields: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.pod,
            "uid": self.pod_uid,
            "type": "pods",
            "service_account": self.service_account,
        }
        fields.update(workload)
        overrides: dict[str, Any] = {"workload": Workload(**fields)}
        if actor is not None:
            overrides["actor"] = actor
        base = make_finding(**overrides)
        cluster = (
            base.cluster.model_copy(update={"name": self.aws.cluster, "arn": None}) if base.cluster else None
        )
        return base.model_copy(update={"cluster": cluster})


def _ignore_404(call: Any) -> None:
    try:
        call()
    except ApiException as exc:
        if exc.status != 404:
            raise


def seed_aws(aws: Any, suffix: str = "prod") -> AwsSeed:
    ec2, iam, autoscaling, eks = aws("ec2"), aws("iam"), aws("autoscaling"), aws("eks")
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [ZONE]}])["Subnets"][0]
    sg = ec2.create_security_group(
        GroupName=f"eks-nodes-{suffix}", Description="nodes", VpcId=subnet["VpcId"]
    )
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    node_role = iam.create_role(RoleName=f"eks-node-{suffix}", AssumeRolePolicyDocument=trust)["Role"]
    profile = iam.create_instance_profile(InstanceProfileName=f"eks-node-{suffix}")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=f"eks-node-{suffix}", RoleName=node_role["RoleName"])
    template = ec2.create_launch_template(
        LaunchTemplateName=f"eks-ng-{suffix}",
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "m5.large",
            "SecurityGroupIds": [sg["GroupId"]],
            "IamInstanceProfile": {"Arn": profile["Arn"]},
        },
    )["LaunchTemplate"]
    asg = f"eks-ng-{suffix}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=1,
        MaxSize=3,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet["SubnetId"],
    )
    on_demand = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg])["AutoScalingGroups"][0]
    spot = ec2.run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.large",
        SubnetId=subnet["SubnetId"],
        SecurityGroupIds=[sg["GroupId"]],
        IamInstanceProfile={"Arn": profile["Arn"]},
        InstanceMarketOptions={"MarketType": "spot"},
    )["Instances"][0]
    autoscaling.attach_instances(InstanceIds=[spot["InstanceId"]], AutoScalingGroupName=asg)
    mapped = iam.create_role(RoleName="platform-deployer", Path="/teams/", AssumeRolePolicyDocument=trust)[
        "Role"
    ]
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    irsa = iam.create_role(RoleName="payments-irsa", AssumeRolePolicyDocument=trust)["Role"]
    eks.create_cluster(
        name=f"{suffix}-eks",
        roleArn=node_role["Arn"],
        resourcesVpcConfig={"subnetIds": [subnet["SubnetId"]], "securityGroupIds": [sg["GroupId"]]},
        logging={"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]},
    )
    return AwsSeed(
        cluster=f"{suffix}-eks",
        asg=asg,
        on_demand_id=on_demand["Instances"][0]["InstanceId"],
        spot_id=spot["InstanceId"],
        instance_profile_arn=profile["Arn"],
        node_sg=sg["GroupId"],
        mapped_role_arn=mapped["Arn"],
        mapped_role_id=mapped["RoleId"],
        user_arn=iam.get_user(UserName="alice")["User"]["Arn"],
        user_key=key,
        irsa_role_arn=irsa["Arn"],
    )


def node_body(name: str, instance_id: str | None, capacity: str, **labels: str) -> dict[str, Any]:
    all_labels = {
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": ZONE,
        "eks.amazonaws.com/nodegroup": "ng-general",
        "eks.amazonaws.com/capacityType": capacity,
        **labels,
    }
    spec = {"providerID": f"aws:///{ZONE}/{instance_id}"} if instance_id else {}
    return {"metadata": {"name": name, "labels": all_labels}, "spec": spec}


def owner_ref(kind: str, obj: Any, api_version: str = "apps/v1") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj.metadata.name,
        "uid": obj.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_template(app: str, privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": app,
        "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{app}:1",
    }
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}


def make_ready(core: Any, namespace: str, pod: Any, ready: bool = True) -> None:
    """Write the status a kubelet would: Running, Ready, container ids."""
    statuses = [
        {
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "containerID": f"containerd://{pod.metadata.uid.replace('-', '')}{i}",
            "started": True,
        }
        for i, c in enumerate(pod.spec.containers)
    ]
    body = {
        "status": {
            "phase": "Running",
            "podIP": "10.0.12.34",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": statuses,
        }
    }
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, body)


def create_deployment(api: Any, namespace: str, app: str, replicas: int, ready: int, privileged: bool) -> Any:
    """Deployment -> ReplicaSet (owned), with the status a controller would have written; returns both."""
    apps = client.AppsV1Api(api)
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": app}},
        "template": pod_template(app, privileged),
    }
    deployment = apps.create_namespaced_deployment(namespace, {"metadata": {"name": app}, "spec": spec})
    status = {"status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}}
    apps.patch_namespaced_deployment_status(app, namespace, status)
    rs_body = {
        "metadata": {"name": f"{app}-5d9c7b", "ownerReferences": [owner_ref("Deployment", deployment)]},
        "spec": spec,
    }
    replica_set = apps.create_namespaced_replica_set(namespace, rs_body)
    apps.patch_namespaced_replica_set_status(replica_set.metadata.name, namespace, status)
    return deployment, replica_set


def create_pod(
    api: Any, namespace: str, name: str, node: str, owner: dict[str, Any] | None, app: str, **spec: Any
) -> Any:
    template = pod_template(app, spec.pop("privileged", False))
    metadata: dict[str, Any] = {"name": name, "labels": template["metadata"]["labels"]}
    if owner:
        metadata["ownerReferences"] = [owner]
    body = {"metadata": metadata, "spec": {**template["spec"], "nodeName": node, **spec}}
    return client.CoreV1Api(api).create_namespaced_pod(namespace, body)


def create_pdb(api: Any, namespace: str, app: str, min_available: int, allowed: int) -> None:
    policy = client.PolicyV1Api(api)
    body = {
        "metadata": {"name": f"{app}-pdb"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
    }
    policy.create_namespaced_pod_disruption_budget(namespace, body)
    status = {
        "status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    }
    policy.patch_namespaced_pod_disruption_budget_status(f"{app}-pdb", namespace, status)


def write_aws_auth(api: Any, map_roles: list[dict[str, Any]], map_users: list[dict[str, Any]]) -> None:
    core = client.CoreV1Api(api)
    _ignore_404(lambda: core.delete_namespaced_config_map("aws-auth", "kube-system"))
    data = {"mapRoles": _yaml(map_roles), "mapUsers": _yaml(map_users)}
    core.create_namespaced_config_map("kube-system", {"metadata": {"name": "aws-auth"}, "data": data})


def _yaml(entries: list[dict[str, Any]]) -> str:
    import yaml

    return str(yaml.safe_dump(entries, sort_keys=False))


def seed_incident(api: Any, namespace: str, seed: AwsSeed) -> Incident:
    core = client.CoreV1Api(api)
    node, spot_node = f"{namespace}-od", f"{namespace}-spot"
    core.create_node(node_body(node, seed.on_demand_id, "ON_DEMAND"))
    core.create_node(node_body(spot_node, seed.spot_id, "SPOT"))
    annotations = {"eks.amazonaws.com/role-arn": seed.irsa_role_arn}
    core.create_namespaced_service_account(
        namespace, {"metadata": {"name": "payments", "annotations": annotations}}
    )
    deployment, replica_set = create_deployment(api, namespace, "web", replicas=3, ready=3, privileged=True)
    owner = owner_ref("ReplicaSet", replica_set)
    pod = create_pod(
        api, namespace, "web-5d9c7b-x1", node, owner, "web", privileged=True, serviceAccountName="payments"
    )
    make_ready(core, namespace, pod)
    create_pdb(api, namespace, "web", min_available=1, allowed=2)
    write_aws_auth(
        api,
        map_roles=[
            {
                "rolearn": f"arn:aws:iam::{ACCOUNT}:role/eks-node-prod",
                "username": "system:node:{{EC2PrivateDNSName}}",
                "groups": ["system:bootstrappers", "system:nodes"],
            },
            {
                "rolearn": f"arn:aws:iam::{ACCOUNT}:role/platform-deployer",
                "username": "deployer-{{SessionName}}",
                "groups": ["platform-admins"],
            },
        ],
        map_users=[{"userarn": seed.user_arn, "username": "alice", "groups": ["developers"]}],
    )
    return Incident(
        namespace=namespace,
        aws=seed,
        node=node,
        spot_node=spot_node,
        pod=pod.metadata.name,
        pod_uid=pod.metadata.uid,
        replica_set=replica_set.metadata.name,
        deployment=deployment.metadata.name,
        service_account="payments",
        created_nodes=[node, spot_node],
    )


def role_actor(seed: AwsSeed, session: str = "jenkins@ci") -> Actor:
    """The aws-auth-mapped role, as GuardDuty reports it: templated username, ASIA key, AROA principal id."""
    return Actor(
        kind=ActorKind.IAM_ROLE,
        username=f"deployer-{session.replace('@', '-')}",
        uid=f"aws-iam-authenticator:{ACCOUNT}:{seed.mapped_role_id}",
        groups=("platform-admins", "system:authenticated"),
        session_name=session,
        access_key_id="ASIAQEXAMPLE7EXAMPLE",
        principal_id=f"{seed.mapped_role_id}:{session}",
        user_name="platform-deployer",
        user_type="AssumedRole",
    )
