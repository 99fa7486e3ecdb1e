"""The lab as a folder: start the servers, seed one incident, record where everything is, stop it all.

`eksir lab up` returns while the servers keep running and `eksir lab down` runs later in another process, so
the folder is the only shared state: `lab.json` (endpoints, account, region, cluster, scenario, kubeconfigs),
`k8s/` (etcd + kube-apiserver, owned by eksir.lab.controlplane), `aws/` (the moto server), `cloudtrail/`,
`finding.json` and `ground-truth.json`. Any failure during `up` stops what was started before it reports,
so a failed start never leaves an orphan process.
"""

from __future__ import annotations

import json
import random
import secrets
import shlex
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from eksir.errors import BadInputError, EksirError, LabError
from eksir.lab import (
    aws_seed,
    eks_auth_setup,
    iam_enforcement,
    k8s_seed,
    karpenter,
    node_runtime,
    node_teardown,
    organisation,
    processes,
    ssm_agent,
)
from eksir.lab.attack_aws import AttackLog, AwsAttacker, begin, finish
from eksir.lab.build import LabBinaries, ensure_binaries
from eksir.lab.cloudtrail_gen import background_records, log_files, routines, upload_tree, write_tree
from eksir.lab.controlplane import ControlPlane, start_control_plane
from eksir.lab.finding_gen import build_finding
from eksir.lab.moto_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, AwsEndpoint, spawn_detached
from eksir.lab.scenarios import Scenario, get_scenario

DEFAULT_LAB_DIR = Path(".eksir-lab")
LAB_FILE = "lab.json"
SERVER_DIRS = ("k8s", "aws", node_runtime.NODE_DIR)
Progress = Callable[[str], None]
SEED_ERRORS = (ApiException, ClientError, BotoCoreError, HTTPError, OSError, KeyError, ValueError)


@dataclass
class LabState:
    """What `lab.json` holds: enough for another process to reach every server of the lab."""

    lab_dir: str
    scenario: str
    cluster: str
    account_id: str
    region: str
    aws_endpoint: str
    aws_access_key_id: str
    aws_secret_access_key: str
    k8s_server: str
    admin_kubeconfig: str
    responder_kubeconfig: str
    audit_log: str
    finding: str
    ground_truth: str
    cloudtrail_dir: str
    cloudtrail_bucket: str
    evidence_bucket: str
    log_group: str
    topic_arn: str
    created_at: str
    timings: dict[str, float] = field(default_factory=dict)
    kubectl: str = ""  # the version-matched kubectl the lab built ("" in a lab.json written before it did)
    node_runtime: dict[str, Any] = field(default_factory=dict)
    """The attacked node's real containerd (lab.node_runtime.NodeRuntime), empty when it is simulated."""
    node_runtime_reason: str = "the lab did not record a node runtime"
    """Why the attacked node is simulated ("" when its containerd is real)."""
    organisation: dict[str, str] = field(default_factory=dict)
    """Cross-account scenario (lab/organisation.py): the account ids, the operator's and the management
    account's keys, the external id; empty for a one-account lab (whose keys act in the member account)."""

    @property
    def endpoint(self) -> AwsEndpoint:
        """The lab's AWS endpoint with its dummy credentials."""
        return AwsEndpoint(self.aws_endpoint, self.region, self.aws_access_key_id, self.aws_secret_access_key)


def load_state(lab_dir: Path) -> LabState:
    """Read `lab.json`; raises LabError when there is no lab in `lab_dir` or the file is damaged."""
    path = lab_dir / LAB_FILE
    try:
        return LabState(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise LabError(f"no lab in {lab_dir}: start one with `eksir lab up`") from None
    except (OSError, ValueError, TypeError) as exc:
        raise LabError(
            f"{path} is unreadable ({exc}); run `eksir lab down` and `eksir lab up` again"
        ) from exc


def process_status(lab_dir: Path) -> list[processes.ProcessStatus]:
    """Every recorded server of the lab (etcd, kube-apiserver, moto), running or exited."""
    return [s for sub in SERVER_DIRS for s in processes.status(lab_dir / sub)]


def down(lab_dir: Path) -> int:
    """Stop every recorded server of the lab and verify it is gone; returns how many were running.

    Idempotent: a second call finds nothing to stop. Raises LabError if a process survives SIGKILL.
    """
    running = sum(1 for s in process_status(lab_dir) if s.state is processes.ProcState.RUNNING)
    node_teardown.stop(lab_dir / node_runtime.NODE_DIR)
    for sub in SERVER_DIRS:
        processes.stop_all(lab_dir / sub)
    return running


def build(progress: Progress | None = None, cache_dir: Path | None = None) -> LabBinaries:
    """Build (or find cached) kube-apiserver and etcd. Raises LabError from the build."""
    return ensure_binaries(cache_dir, progress)


@contextmanager
def _phase(timings: dict[str, float], name: str, progress: Progress) -> Iterator[None]:
    progress(f"{name}...")
    start = time.monotonic()
    yield
    timings[name] = round(time.monotonic() - start, 2)


def _one_line(exc: BaseException) -> str:
    """A failure as one line: Kubernetes API errors carry headers and a JSON body we do not want."""
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except ValueError:
            message = ""
        return f"Kubernetes API {exc.status} {exc.reason}: {message}".strip()
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _refuse_if_up(lab_dir: Path) -> None:
    if any(s.state is processes.ProcState.RUNNING for s in process_status(lab_dir)):
        raise LabError(f"lab already running in {lab_dir}; `eksir lab down` first")
    down(lab_dir)  # forget records of servers that already died


def up(
    lab_dir: Path,
    scenario_name: str = "iam-user",
    *,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    seed: int | None = None,
    fleet_incidents: int = 8,
    enforce_iam: bool | None = None,
) -> LabState:
    """Build if needed, start etcd + kube-apiserver + moto, seed the scenario, write lab.json.

    `enforce_iam` (None: the scenario's default, on for cross-account): an organisation lab's moto enforces
    IAM once everything is seeded, so eksir runs as the responder role under the generated policy's actions
    (lab/iam_enforcement.py). Raises BadInputError for an unknown scenario or enforcement asked of a
    one-account lab (whose every key is moto's default), LabError when a lab already runs in `lab_dir` or when
    anything fails (after stopping every server it started).
    """
    scenario = get_scenario(scenario_name)
    enforce = scenario.enforce_iam if enforce_iam is None else enforce_iam
    if enforce and not scenario.organisation:
        raise BadInputError(f"--enforce-iam applies to the organisation scenarios, not {scenario.name.value}")
    report = progress or (lambda _msg: None)
    lab_dir = lab_dir.resolve()
    lab_dir.mkdir(parents=True, exist_ok=True)
    _refuse_if_up(lab_dir)
    timings: dict[str, float] = {}
    started = time.monotonic()
    with _phase(timings, "build", report):
        binaries = build(report, cache_dir)
    try:
        state = _start_and_seed(lab_dir, scenario, binaries, timings, report, seed=seed, enforce_iam=enforce)
    except BaseException as exc:
        down(lab_dir)
        if isinstance(exc, EksirError):
            raise
        if isinstance(exc, SEED_ERRORS):
            raise LabError(f"lab seeding failed and the lab was stopped: {_one_line(exc)}") from exc
        raise
    if scenario.name.value == "fleet":
        with _phase(timings, "fleet", report):
            _seed_fleet(lab_dir, state, fleet_incidents, seed)
    if enforce:  # last: from here on only IAM principals moto knows get in (the lab's own moto server)
        with _phase(timings, "iam enforcement", report):
            _enforce(lab_dir, state)
    timings["total"] = round(time.monotonic() - started, 2)
    state.timings = timings
    state.kubectl = str(binaries.kubectl)
    (lab_dir / LAB_FILE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    return state


def _enforce(lab_dir: Path, state: LabState) -> None:
    """Switch the lab's moto to IAM enforcement; stops the lab on failure."""
    try:
        iam_enforcement.enforce(state.aws_endpoint)
    except BaseException:
        down(lab_dir)
        raise


def _seed_fleet(lab_dir: Path, state: LabState, incidents: int, seed: int | None) -> None:
    """The fleet scenario's pods, event pipeline and fleet.json (lab/fleet.py); stops the lab on failure."""
    from eksir.lab import fleet  # noqa: PLC0415

    try:
        fleet.seed_fleet(lab_dir, state, incidents, seed if seed is not None else secrets.randbits(32))
    except BaseException as exc:
        down(lab_dir)
        if isinstance(exc, SEED_ERRORS):
            raise LabError(f"fleet seeding failed and the lab was stopped: {_one_line(exc)}") from exc
        raise


def _start_and_seed(
    lab_dir: Path,
    scenario: Scenario,
    binaries: LabBinaries,
    timings: dict[str, float],
    report: Progress,
    *,
    seed: int | None,
    enforce_iam: bool = False,
) -> LabState:
    """Control plane in a worker thread while moto starts and the AWS side is seeded, then the rest."""
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    with ThreadPoolExecutor(max_workers=1) as pool:
        plane_future: Future[ControlPlane] = pool.submit(start_control_plane, lab_dir / "k8s", binaries)
        try:
            with _phase(timings, "moto start", report):
                moto = spawn_detached(lab_dir / "aws")
            with _phase(timings, "aws seed", report):
                org = (
                    organisation.seed_organisation(moto.endpoint, enforce_iam=enforce_iam)
                    if scenario.organisation
                    else None
                )
                endpoint = org.member_endpoint if org else moto.endpoint
                inv = aws_seed.seed_all(endpoint)
        finally:
            with _phase(timings, "control plane start", report):
                plane = plane_future.result()
    with _phase(timings, "eks authentication", report):
        eks_auth_setup.connect(plane, endpoint, inv.cluster_name, in_process=False)
    log = AttackLog()
    with _phase(timings, "k8s seed", report), plane.api_client() as admin:
        k8s_seed.seed_cluster(admin, inv)
        if org:
            organisation.grant_responder(admin, org)
    with _phase(timings, "attack", report):
        attacker_pod, access_key = _attack(endpoint, inv, scenario, plane, log=log, rng=rng)
    with _phase(timings, "karpenter", report), plane.api_client() as admin:
        karpenter.install_nodeclaim_crd(admin)
        karpenter.seed_nodeclaim(admin, attacker_pod.node)
    with _phase(timings, "node runtime", report):
        runtime, why = _start_node(lab_dir, endpoint, attacker_pod, report)
    with _phase(timings, "logs + finding", report):
        run = Run(scenario, inv, plane, endpoint, log, attacker_pod, access_key, rng, org)
        state = _write_outputs(lab_dir, run)
    state.node_runtime, state.node_runtime_reason = runtime, why
    return state


def _start_node(
    lab_dir: Path, endpoint: AwsEndpoint, pod: k8s_seed.AttackerPod, report: Progress
) -> tuple[dict[str, Any], str]:
    """The attacked node's containerd with the attacker's container, and the lab's SSM agent stand-in.

    Returns (the runtime's record, "") or ({}, why the node stays simulated). Raises LabError when the
    runtime should run here but does not start.
    """
    why = node_runtime.reason()
    if why is not None:
        report(f"attacked node simulated: {why}; capture and pause will be unavailable in the lab")
        return {}, why
    node_dir = lab_dir / node_runtime.NODE_DIR
    runtime = node_runtime.start(node_dir, pod.node.instance_id, node_runtime.pod_container(pod.pod))
    ssm_agent.start(
        ssm_agent.AgentConfig(
            instance_id=pod.node.instance_id,
            endpoint=endpoint.url,
            region=endpoint.region,
            access_key_id=endpoint.access_key_id,
            secret_access_key=endpoint.secret_access_key,
            containerd_socket=runtime.socket,
            node_dir=str(node_dir),
        )
    )
    return runtime.to_json(), ""


def _attack(
    endpoint: AwsEndpoint,
    inv: aws_seed.AwsInventory,
    scenario: Scenario,
    plane: ControlPlane,
    *,
    log: AttackLog,
    rng: random.Random,
) -> tuple[k8s_seed.AttackerPod, dict[str, str] | None]:
    """AWS recon, the privileged pod through the API as the attacker, then AWS persistence."""
    foothold = begin(endpoint, inv, scenario, log)
    if foothold.creds is not None:
        AwsAttacker(endpoint, inv, foothold.creds, log, rng).recon()
    node = inv.nodes[1]
    token = None
    with plane.api_client() as admin:
        if foothold.k8s_user is None:
            token = k8s_seed.service_account_token(admin, scenario.namespace, scenario.service_account)
            attacker = k8s_seed.token_client(plane.server, plane.ca_file, token)
            username = f"system:serviceaccount:{scenario.namespace}:{scenario.service_account}"
        else:
            user = foothold.k8s_user
            attacker = plane.identity_api_client(user.username, user.groups, user.uid, user.extra)
            username = user.username
        with k8s_seed.as_attacker(attacker):
            pod = k8s_seed.attack(admin, attacker, scenario, node)
    create_event, events = k8s_seed.attacker_events(plane.audit_log, username, scenario)
    finish(
        endpoint, inv, scenario, foothold, node_instance_id=node.instance_id, sa_token=token, log=log, rng=rng
    )
    attacker_pod = k8s_seed.AttackerPod(pod, node, username, create_event, events, token)
    return attacker_pod, foothold.access_key_details


@dataclass(frozen=True)
class Run:
    """Everything the seeding produced, for writing the lab's outputs."""

    scenario: Scenario
    inv: aws_seed.AwsInventory
    plane: ControlPlane
    endpoint: AwsEndpoint
    log: AttackLog
    pod: k8s_seed.AttackerPod
    access_key: dict[str, str] | None
    rng: random.Random
    org: organisation.Organisation | None = None


def _write_outputs(lab_dir: Path, run: Run) -> LabState:
    """CloudTrail tree (local + S3), audit events to CloudWatch Logs, finding.json, ground-truth.json."""
    inv, rng = run.inv, run.rng
    now = datetime.now(UTC)
    haystack = background_records(
        routines(inv), start=now - timedelta(days=3), end=now, region=inv.region, rng=rng
    )
    files = log_files(haystack + run.log.records, inv.account_id, inv.region, rng)
    write_tree(files, lab_dir / "cloudtrail")
    upload_tree(run.endpoint.client("s3"), inv.cloudtrail_bucket, files)
    events = [e for e in k8s_seed.read_audit_log(run.plane.audit_log) if e.get("stage") == "ResponseComplete"]
    aws_seed.put_audit_events(run.endpoint, inv, events, f"kube-apiserver-audit-{rng.getrandbits(128):032x}")
    finding = build_finding(inv, run.pod.pod, run.pod.create_event, run.access_key, rng)
    if run.org:  # delivered in the security account (GuardDuty's administrator) about the member's cluster
        finding["account"] = run.org.security
    (lab_dir / "finding.json").write_text(json.dumps(finding, indent=2), encoding="utf-8")
    truth = ground_truth(run, finding)
    (lab_dir / "ground-truth.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return LabState(
        lab_dir=str(lab_dir),
        scenario=run.scenario.name.value,
        cluster=inv.cluster_name,
        account_id=inv.account_id,
        region=inv.region,
        aws_endpoint=run.endpoint.url,
        aws_access_key_id=run.endpoint.access_key_id,
        aws_secret_access_key=run.endpoint.secret_access_key,
        k8s_server=run.plane.server,
        admin_kubeconfig=str(run.plane.admin_kubeconfig),
        responder_kubeconfig=str(run.plane.responder_kubeconfig),
        audit_log=str(run.plane.audit_log),
        finding=str(lab_dir / "finding.json"),
        ground_truth=str(lab_dir / "ground-truth.json"),
        cloudtrail_dir=str(lab_dir / "cloudtrail"),
        cloudtrail_bucket=inv.cloudtrail_bucket,
        evidence_bucket=inv.evidence_bucket,
        log_group=inv.log_group,
        topic_arn=inv.topic_arn,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        organisation=organisation.state_of(run.org) if run.org else {},
    )


def ground_truth(run: Run, finding: dict[str, Any]) -> dict[str, Any]:
    """What really happened, for scoring the hunt (recall/precision) and recovery (completeness)."""
    pod, meta = run.pod, run.pod.pod["metadata"]
    user = pod.create_event["user"]
    return {
        "scenario": run.scenario.name.value,
        "summary": run.scenario.summary,
        "attacker": {
            "source_ip": pod.create_event["sourceIPs"][0],
            "k8s_username": user["username"],
            "k8s_groups": user.get("groups", []),
            "k8s_uid": user.get("uid"),
            "aws_principals": run.log.principals,
        },
        "cloudtrail_event_ids": [r["eventID"] for r in run.log.records],
        "audit_ids": [e["auditID"] for e in pod.audit_events if e.get("stage") == "ResponseComplete"],
        "resources": {
            "created": [
                {"type": "Kubernetes::Pod", "id": meta["uid"], "name": meta["name"]},
                *run.log.created,
            ],
            "changed": run.log.changed,
            "deleted": run.log.deleted,
            "accessed": run.log.accessed,
        },
        "pod": {
            "uid": meta["uid"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "node": pod.node.private_dns,
            "instance_id": pod.node.instance_id,
            "provider_id": pod.node.provider_id,
            "audit_id": pod.create_event["auditID"],
        },
        "finding_id": finding["detail"]["id"],
        **({"accounts": organisation.accounts_of(run.org)} if run.org else {}),
    }


def env_exports(state: LabState, *, eks_token: bool = False, admin: bool = False) -> str:
    """Shell `export` lines pointing the AWS CLI, kubectl and ctr at the lab, its kubectl first on PATH.

    `eks_token`: no KUBECONFIG (it is unset), so eksir reaches the cluster as on EKS without a kubeconfig:
    DescribeCluster's endpoint and CA and a token from the lab's AWS credentials (the cluster creator's).
    A cross-account lab exports the security account's operator instead, with EKSIR_ASSUME_ROLE and
    EKSIR_EXTERNAL_ID and no KUBECONFIG (eksir reaches the member's cluster through the role and an EKS
    token); `admin`: the management account's admin user instead (the organisation's administrator; moto's
    default keys in a lab.json written before the lab made that user).
    """
    org = state.organisation
    values = {**state.endpoint.env()}
    if org:
        keys = (
            (
                org.get("admin_access_key_id", DUMMY_ACCESS_KEY_ID),
                org.get("admin_secret_access_key", DUMMY_SECRET_ACCESS_KEY),
            )
            if admin
            else (
                org["operator_access_key_id"],
                org["operator_secret_access_key"],
            )
        )
        values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"] = keys
        if not admin:
            values["EKSIR_ASSUME_ROLE"], values["EKSIR_EXTERNAL_ID"] = (
                org["role_template"],
                org["external_id"],
            )
    elif admin:
        raise LabError("--admin applies to a cross-account lab (`eksir lab up --scenario cross-account`)")
    unset = eks_token or bool(org)
    if not unset:
        values["KUBECONFIG"] = state.admin_kubeconfig
    if state.node_runtime:  # `ctr -n k8s.io tasks ls` reaches the attacked node's containerd
        values["CONTAINERD_ADDRESS"] = str(state.node_runtime["socket"])
    lines = [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    if unset:
        lines.append("unset KUBECONFIG")
    if state.kubectl:
        lines.append(f'export PATH={shlex.quote(str(Path(state.kubectl).parent))}:"$PATH"')
    return "\n".join(lines)
