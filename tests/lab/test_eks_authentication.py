"""Issue 14 item 1: reaching the lab's real kube-apiserver as on EKS, with no kubeconfig.

The product's K8s client factory (KubeProvider) asks moto's EKS for the endpoint and CA, mints an EKS token
from AWS credentials, and the kube-apiserver sends the token to the lab's EKS authenticator webhook, which
checks the SigV4 presign against the keys moto issued and maps the principal through kube-system/aws-auth.
Whether the request is then allowed is the API server's own RBAC decision. The aws-auth ConfigMap is shared by
the session's control plane: the fixture saves it and puts it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
import yaml
from kubernetes.client import AuthenticationV1Api, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException

from eksir.clients.aws import AwsClients
from eksir.clients.eks_token import eks_bearer_token
from eksir.clients.k8s import api_client_from_eks, k8s_call
from eksir.engine.context import KubeProvider
from eksir.errors import ExitCode, PermissionDeniedError
from eksir.lab import eks_auth_setup, eks_presign
from eksir.lab.controlplane import ControlPlane
from eksir.lab.eks_authenticator import AuthConfig, authenticate
from eksir.lab.moto_server import AwsEndpoint

pytestmark = pytest.mark.lab
CLUSTER = "h14-auth"
GROUP = "h14-viewers"


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret: str
    token: str | None = None


@dataclass(frozen=True)
class EksLab:
    plane: ControlPlane
    moto: AwsEndpoint
    config: AuthConfig
    viewer: Keys
    stranger: Keys
    oncall: Keys

    def provider(self, keys: Keys | None, **kwargs: Any) -> KubeProvider:
        key = keys or Keys(self.moto.access_key_id, self.moto.secret_access_key)
        session = boto3.session.Session(
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret,
            aws_session_token=key.token,
            region_name=self.moto.region,
        )
        aws = AwsClients(region=self.moto.region, endpoint_url=self.moto.url, _session=session)
        return KubeProvider(aws=aws, cluster_name=CLUSTER, environ=kwargs.pop("environ", {}), **kwargs)


def _whoami(api: Any) -> dict[str, Any]:
    review = AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1"})
    info = review.status.user_info
    return {"username": info.username, "groups": info.groups or [], "extra": info.extra or {}}


def _user_keys(iam: Any, name: str) -> Keys:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _aws_auth(core: CoreV1Api, body: dict[str, Any] | None) -> dict[str, Any] | None:
    """Replace kube-system/aws-auth with `body` (None: delete); returns what was there."""
    try:
        before = core.read_namespaced_config_map("aws-auth", "kube-system").to_dict()
        core.delete_namespaced_config_map("aws-auth", "kube-system")
    except ApiException as exc:
        if exc.status != 404:
            raise
        before = None
    if body is not None:
        core.create_namespaced_config_map("kube-system", body)
    return before


@pytest.fixture(scope="module")
def eks_lab(control_plane: ControlPlane, moto_server: AwsEndpoint) -> Iterator[EksLab]:
    iam = moto_server.client("iam")
    moto_server.client("eks").create_cluster(
        name=CLUSTER, roleArn="arn:aws:iam::123456789012:role/h14-cluster", resourcesVpcConfig={}
    )
    config = eks_auth_setup.connect(control_plane, moto_server, CLUSTER, in_process=True)
    viewer, stranger = _user_keys(iam, "h14-viewer"), _user_keys(iam, "h14-stranger")
    role = iam.create_role(RoleName="h14-oncall", Path="/responders/", AssumeRolePolicyDocument="{}")["Role"]
    creds = moto_server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="jane@example.com")
    oncall = Keys(*(creds["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")))
    map_users = [
        {"userarn": "arn:aws:iam::123456789012:user/h14-viewer", "username": "viewer", "groups": [GROUP]}
    ]
    map_roles = [{"rolearn": role["Arn"], "username": "oncall:{{SessionName}}", "groups": [GROUP]}]
    data = {"mapUsers": yaml.safe_dump(map_users), "mapRoles": yaml.safe_dump(map_roles)}
    with control_plane.api_client() as admin:
        core, rbac = CoreV1Api(admin), RbacAuthorizationV1Api(admin)
        before = _aws_auth(core, {"metadata": {"name": "aws-auth"}, "data": data})
        rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
        rbac.create_cluster_role({"metadata": {"name": GROUP}, "rules": [rule]})  # `view` is aggregated by a
        binding = {  # controller the lab does not run, so it grants nothing here
            "metadata": {"name": GROUP},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": GROUP},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}],
        }
        rbac.create_cluster_role_binding(binding)
        try:
            yield EksLab(control_plane, moto_server, config, viewer, stranger, oncall)
        finally:
            rbac.delete_cluster_role_binding(GROUP)
            rbac.delete_cluster_role(GROUP)
            if before is not None:
                before["metadata"] = {"name": "aws-auth"}
            _aws_auth(core, before)


def test_describe_cluster_gives_the_lab_api_server_endpoint_and_ca(eks_lab: EksLab) -> None:
    cluster = eks_lab.moto.client("eks").describe_cluster(name=CLUSTER)["cluster"]
    assert cluster["endpoint"] == eks_lab.plane.server
    assert cluster["certificateAuthority"]["data"]


def test_with_no_kubeconfig_the_cluster_creator_gets_an_eks_token_that_the_api_server_accepts(
    eks_lab: EksLab,
) -> None:
    provider = eks_lab.provider(None)
    assert provider.source().origin == "EKS token from AWS credentials"
    api = provider()
    assert api.configuration.host == eks_lab.plane.server
    assert api.configuration.get_api_key_with_prefix("authorization").startswith("Bearer k8s-aws-v1.")
    me = _whoami(api)
    assert (me["username"], me["groups"][:1]) == ("kubernetes-admin", ["system:masters"])
    assert CoreV1Api(api).list_namespace(limit=1).items


def test_an_aws_auth_mapped_user_is_authenticated_and_rbac_decides_what_it_may_do(eks_lab: EksLab) -> None:
    api = eks_lab.provider(eks_lab.viewer)()
    me = _whoami(api)
    assert me["username"] == "viewer"
    assert GROUP in me["groups"]
    assert me["extra"]["accessKeyId"] == [eks_lab.viewer.access_key_id]
    assert (
        CoreV1Api(api).list_namespaced_pod("kube-system").items is not None
    )  # the bound ClusterRole: allowed
    with pytest.raises(PermissionDeniedError, match="403"), k8s_call("delete a ConfigMap"):
        CoreV1Api(api).delete_namespaced_config_map("aws-auth", "kube-system")  # not granted: 403 from RBAC


def test_an_assumed_role_session_is_mapped_by_its_role_without_path_and_the_session_name_template(
    eks_lab: EksLab,
) -> None:
    me = _whoami(eks_lab.provider(eks_lab.oncall)())
    assert me["username"] == "oncall:jane-example.com"
    assert me["extra"]["sessionName"] == ["jane@example.com"]
    assert me["extra"]["canonicalArn"] == ["arn:aws:iam::123456789012:role/h14-oncall"]


def test_an_unmapped_principal_gets_401_as_a_one_line_permission_error(eks_lab: EksLab) -> None:
    api = eks_lab.provider(eks_lab.stranger)()
    with pytest.raises(PermissionDeniedError) as caught, k8s_call("list namespaces"):
        CoreV1Api(api).list_namespace(limit=1)
    assert caught.value.exit_code is ExitCode.PERMISSION_DENIED
    assert "401" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_token_for_another_cluster_or_altered_is_refused_with_401(eks_lab: EksLab) -> None:
    cluster = eks_lab.moto.client("eks").describe_cluster(name=CLUSTER)["cluster"]
    sts = eks_lab.moto.client("sts")
    for token in (eks_bearer_token(sts, "another-cluster"), eks_bearer_token(sts, CLUSTER)[:-4] + "AAAA"):
        api = api_client_from_eks(cluster["endpoint"], cluster["certificateAuthority"]["data"], token)
        with pytest.raises(ApiException) as caught:
            CoreV1Api(api).list_namespace(limit=1)
        assert caught.value.status == 401


def test_an_expired_token_is_refused_by_the_authenticator(eks_lab: EksLab) -> None:
    token = eks_bearer_token(eks_lab.moto.client("sts"), CLUSTER)
    signed_at = eks_presign.parse(token, eks_lab.config.sts_endpoint).signed_at
    assert authenticate(token, eks_lab.config, now=signed_at + timedelta(minutes=14)).arn.endswith(
        "user/moto"
    )
    with pytest.raises(eks_presign.TokenRejected, match="expired"):
        authenticate(token, eks_lab.config, now=signed_at + timedelta(minutes=16))


def test_kubeconfig_variable_is_honoured_and_the_kubeconfig_option_wins_over_it(eks_lab: EksLab) -> None:
    env = {"KUBECONFIG": str(eks_lab.plane.admin_kubeconfig)}
    from_env = eks_lab.provider(eks_lab.stranger, environ=env)
    assert _whoami(from_env())["username"] == "eksir-admin"
    flag = eks_lab.provider(None, environ=env, kubeconfig=eks_lab.plane.responder_kubeconfig)
    assert _whoami(flag())["username"] == "eksir-responder"


def test_the_authenticator_logs_who_was_let_in_but_never_the_token(eks_lab: EksLab) -> None:
    token = eks_bearer_token(eks_lab.moto.client("sts"), CLUSTER)
    _whoami(eks_lab.provider(None)())
    log = (eks_lab.plane.workdir / "eks-authenticator.log").read_text(encoding="utf-8")
    assert "authenticated arn:aws:iam::123456789012:user/moto as kubernetes-admin" in log
    assert token[len("k8s-aws-v1.") : len("k8s-aws-v1.") + 40] not in log
    assert json.dumps(eks_lab.config.known_keys)  # the config holds the lab's own dummy key, not a real one


def test_the_responder_principal_is_the_iam_user_or_the_role_with_its_path(eks_lab: EksLab) -> None:
    from eksir.cli.break_glass import responder_principal

    def principal(keys: Keys) -> str:
        return responder_principal(eks_lab.provider(keys).aws)

    assert principal(eks_lab.viewer) == "arn:aws:iam::123456789012:user/h14-viewer"
    assert principal(eks_lab.oncall) == "arn:aws:iam::123456789012:role/responders/h14-oncall"


def test_on_a_cluster_that_takes_access_entries_break_glass_plans_an_access_entry(
    eks_lab: EksLab, tmp_path: Any
) -> None:
    """DescribeCluster is stubbed (moto has no accessConfig; Stubber checks the request against the EKS model)
    to say API_AND_CONFIG_MAP, with the lab API server's real endpoint and CA; the token (moto's STS), the 401
    (the real API server and lab authenticator) and the principal (moto's STS) are real."""
    from botocore.stub import Stubber

    from eksir.cli.break_glass import grant_plan
    from tests.actions.case_helpers import empty_case
    from tests.factories import make_finding

    real = eks_lab.moto.client("eks").describe_cluster(name=CLUSTER)
    cluster = {**real["cluster"], "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}
    provider = eks_lab.provider(eks_lab.stranger)
    eks = provider.aws("eks")
    stub = Stubber(eks)
    for _ in range(2):  # the client's endpoint and CA, then the authentication mode
        stub.add_response("describe_cluster", {"cluster": cluster}, {"name": CLUSTER})
    with stub:
        plan = grant_plan(make_finding(), provider.aws, provider, empty_case(tmp_path / "case"), None)
        stub.assert_no_pending_responses()
    assert plan is not None
    [step] = plan.steps
    assert step.params == {
        "cluster_name": CLUSTER,
        "principal_arn": "arn:aws:iam::123456789012:user/h14-stranger",
        "mode": "access-entry",
    }
    assert step.requires_approval
