"""Issue 14 items 1 and 5, from the command line: `eksir plan` reaches the lab cluster as it reaches EKS,
and a responder the cluster does not know gets break-glass access planned, granted and removed.

One `eksir lab up` (the detached moto with the lab's EKS endpoint route, the authenticator process) and
eksir run as a responder runs it, in a subprocess: with no kubeconfig (an EKS token from the lab's AWS
credentials, those of the cluster creator), with `KUBECONFIG`, with `--kubeconfig` beside it, and as a new IAM
user with no mapping. Effects are checked through the API server and the authenticator, not through eksir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from kubernetes.client import RbacAuthorizationV1Api
from kubernetes.config import new_client_from_config

from eksir.actions.permissions import all_specs, cluster_role
from eksir.errors import ExitCode
from eksir.lab import lab as lab_module
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab_module.LabState]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("eks-auth-cli")
    state = lab_module.up(lab_dir, "iam-user", seed=20240611)
    try:
        yield state
    finally:
        lab_module.down(lab_dir)


def _plan(
    state: lab_module.LabState, tmp_path: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return _eksir(state, "plan", state.finding, "--cases-dir", str(tmp_path), *extra, **env)


def _eksir(state: lab_module.LabState, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """eksir as a responder runs it: the lab's AWS endpoint, no KUBECONFIG unless given, `env` on top."""
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("AWS_")}
    command = [sys.executable, "-m", "eksir", *args]
    return subprocess.run(
        command,
        env={**base, **state.endpoint.env(), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _authenticator_log(state: lab_module.LabState) -> str:
    return (Path(state.lab_dir) / "k8s" / "eks-authenticator.log").read_text(encoding="utf-8")


def test_plan_with_no_kubeconfig_uses_an_eks_token_the_lab_authenticates(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    done = _plan(lab_state, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "authenticated arn:aws:iam::123456789012:user/moto as kubernetes-admin" in _authenticator_log(
        lab_state
    )


def test_plan_honours_kubeconfig_and_the_option_wins_over_it(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    responder = lab_state.responder_kubeconfig  # a client certificate bound to nothing: 403 on every read
    from_env = _plan(lab_state, tmp_path, KUBECONFIG=responder)
    assert from_env.returncode == ExitCode.PERMISSION_DENIED, from_env.stderr
    assert "forbidden" in from_env.stderr
    flag = _plan(lab_state, tmp_path / "2", "--kubeconfig", lab_state.admin_kubeconfig, KUBECONFIG=responder)
    assert flag.returncode == 0, flag.stderr


def test_a_kubeconfig_variable_naming_no_file_is_bad_input_in_one_line(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    done = _plan(lab_state, tmp_path, KUBECONFIG=str(tmp_path / "missing"))
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("eksir: error: KUBECONFIG=")


def _aws_auth(state: lab_module.LabState) -> dict[str, str]:
    with new_client_from_config(state.admin_kubeconfig) as admin:
        cm = admin.call_api(
            "/api/v1/namespaces/kube-system/configmaps/aws-auth",
            "GET",
            response_type="object",
            _return_http_data_only=True,
            auth_settings=["BearerToken"],
        )
    return {"annotations": json.dumps(cm["metadata"].get("annotations") or {}), **cm["data"]}


def test_a_responder_unknown_to_the_cluster_gets_break_glass_access_planned_granted_and_removed(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    iam = lab_state.endpoint.client("iam")
    iam.create_user(UserName="oncall")
    key = iam.create_access_key(UserName="oncall")["AccessKey"]
    me = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    with new_client_from_config(lab_state.admin_kubeconfig) as admin:  # the cluster's standing RBAC for the
        rbac = RbacAuthorizationV1Api(
            admin
        )  # responder group (eksir permissions), set up before the incident
        rbac.create_cluster_role(cluster_role(all_specs()))
        subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eksir-responders"}
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "eksir-responder"}
        rbac.create_cluster_role_binding(
            {"metadata": {"name": "eksir-responders"}, "roleRef": role_ref, "subjects": [subject]}
        )
    before = _aws_auth(lab_state)
    cases, admin_kubeconfig = str(tmp_path), lab_state.admin_kubeconfig
    glass = ["--break-glass-kubeconfig", admin_kubeconfig]

    planned = _plan(lab_state, tmp_path, *glass, "--output", "json", **me)
    assert planned.returncode == 0, planned.stderr
    steps = json.loads(planned.stdout)["plan"]["steps"]
    assert [(s["id"], s["action_id"], s["requires_approval"]) for s in steps] == [
        ("break-glass-access", "eks.grant_responder_access", True)
    ]
    arn = "arn:aws:iam::123456789012:user/oncall"
    assert steps[0]["params"]["mode"] == "aws-auth"  # moto's cluster has no accessConfig: CONFIG_MAP
    assert steps[0]["params"]["principal_arn"] == arn
    assert "401" in steps[0]["rationale"]
    assert _aws_auth(lab_state) == before  # a plan changes nothing

    respond = ["respond", lab_state.finding, "--cases-dir", cases, *glass, "--approve", "all", "--yes"]
    granted = _eksir(lab_state, *respond, "--trust-finding-file", **me)
    assert granted.returncode == 0, granted.stderr
    mapped = yaml.safe_load(_aws_auth(lab_state)["mapUsers"])
    assert {"userarn": arn, "username": "eksir-responder", "groups": ["eksir-responders"]} in mapped
    assert _aws_auth(lab_state)["mapUsers"].startswith(
        before["mapUsers"]
    )  # earlier entries kept byte for byte

    full = _plan(lab_state, tmp_path, *glass, "--output", "json", **me)  # now resolvable as the responder
    assert full.returncode == 0, full.stderr
    ids = [s["id"] for s in json.loads(full.stdout)["plan"]["steps"]]
    assert ids[0] == "break-glass-access"
    assert len(ids) > 1
    log = (Path(lab_state.lab_dir) / "k8s" / "eks-authenticator.log").read_text(encoding="utf-8")
    assert f"authenticated {arn} as eksir-responder ['eksir-responders']" in log

    case_id = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    refused = _eksir(lab_state, "case", "close", case_id, "--cases-dir", cases, **me)
    assert refused.returncode == ExitCode.REFUSED
    assert f"eksir rollback {case_id} --step break-glass-access --yes" in refused.stderr
    assert "--revoke-break-glass" in refused.stderr
    assert _aws_auth(lab_state)["mapUsers"] != before["mapUsers"]  # a refused close changes nothing
    closing = _eksir(lab_state, "case", "close", case_id, "--cases-dir", cases, "--revoke-break-glass", **me)
    assert "break-glass access removed (rolled back and verified)" in closing.stderr
    assert "still in place" not in closing.stderr  # whatever else close wants (the report), not the grant
    assert _aws_auth(lab_state)["mapUsers"] == before["mapUsers"]
    assert "eksir.io/break-glass" not in _aws_auth(lab_state)["annotations"]
    status = _eksir(lab_state, "status", case_id, "--cases-dir", cases, "-o", "json", **me)
    assert '"rolled-back"' in status.stdout  # the removal is on the case's record


def _aws_cli(state: lab_module.LabState, *args: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI of the venv (the lock pins it), pointed at the lab like `eval "$(eksir lab env)"` does."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG"))}
    env |= {**state.endpoint.env(), "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [f"{venv_bin}/aws", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_aws_cli_token_and_eksirs_have_the_same_shape_and_both_pass_the_lab_authenticator(
    lab_state: lab_module.LabState,
) -> None:
    """`aws eks get-token` is the reference implementation: eksir's token must look like it, and the lab
    authenticator must accept it as well as eksir's (so the lab does not merely accept its own product)."""
    from eksir.clients.eks_token import decode_token, eks_bearer_token
    from eksir.lab.eks_authenticator import AuthConfig, authenticate

    done = _aws_cli(lab_state, "eks", "get-token", "--cluster-name", lab_state.cluster, "--output", "json")
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)["status"]["token"]
    ours = eks_bearer_token(lab_state.endpoint.client("sts"), lab_state.cluster)
    config = AuthConfig.load(Path(lab_state.lab_dir) / "k8s" / "eks-authenticator.json")
    for token in (theirs, ours):
        assert authenticate(token, config).arn == "arn:aws:iam::123456789012:user/moto"

    def shape(token: str) -> tuple[str, list[str], str, str]:
        url = urlsplit(decode_token(token))
        query = dict(parse_qsl(url.query))
        return url.netloc, sorted(query), query["X-Amz-SignedHeaders"], query["X-Amz-Expires"]

    assert shape(ours) == shape(theirs)


def test_plan_works_with_a_kubeconfig_written_by_aws_eks_update_kubeconfig(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    done = _aws_cli(
        lab_state, "eks", "update-kubeconfig", "--name", lab_state.cluster, "--kubeconfig", str(kubeconfig)
    )
    assert done.returncode == 0, done.stderr
    venv_bin = str(Path(sys.executable).parent)  # the exec plugin runs `aws eks get-token`
    planned = _plan(
        lab_state, tmp_path, KUBECONFIG=str(kubeconfig), PATH=f"{venv_bin}:{os.environ.get('PATH', '')}"
    )
    assert planned.returncode == 0, planned.stderr


def test_a_command_without_break_glass_reports_an_unknown_identitys_401_in_one_line_exit_8(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    iam = lab_state.endpoint.client("iam")
    iam.create_user(UserName="stranger")
    key = iam.create_access_key(UserName="stranger")["AccessKey"]
    me = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    triaged = _eksir(lab_state, "triage", lab_state.finding, "--cases-dir", str(tmp_path), "-o", "json", **me)
    case_id = json.loads(triaged.stdout)["case"]["id"]
    done = _eksir(lab_state, "prevent", case_id, "--cases-dir", str(tmp_path), **me)
    assert done.returncode == ExitCode.PERMISSION_DENIED, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("eksir: error: ")
    assert "401" in line
    assert "no access entry or aws-auth mapping" in line
