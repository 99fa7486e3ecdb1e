"""Start the lab's control plane: etcd and kube-apiserver on random loopback ports, with a fresh PKI.

Why this configuration: it reproduces what an incident responder meets on EKS and what eksir depends on —
RBAC (`--authorization-mode=Node,RBAC`), Pod Security Admission (a default admission plugin in v1.34),
privileged pods allowed by the API server (so an attacker's pod can exist), an IR audit policy writing
`audit.k8s.io/v1` JSON lines, and a front-proxy (request-header) authenticator through which the lab makes
calls as any user, uid, groups and extra — the way EKS's IAM authenticator presents IAM principals — so the
audit log shows that user itself, not an impersonation.

What the lab does NOT run: kubelet, scheduler, controller-manager. Hence pods stay Pending unless created
with `spec.nodeName`; deleted namespaces stay Terminating; garbage collection never runs; and no controller
creates `default` ServiceAccounts, so `create_namespace` and the start-up bootstrap create them (the
ServiceAccount admission plugin refuses pods without one). Every start is a fresh cluster: the etcd data
and the audit log of an earlier start in the same folder are removed. Linux only (reads /proc).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kubernetes import client, config
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from eksir.errors import LabError
from eksir.lab import eks_auth_setup, processes
from eksir.lab.build import LabBinaries, log_tail
from eksir.lab.certs import FRONT_PROXY_CLIENT_NAME, LabPki, generate_pki
from eksir.lab.eks_authenticator import CONFIG_FILE as AUTH_CONFIG
from eksir.lab.kubeconfig import make_identity_client, write_kubeconfig

DEFAULT_SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
STATE_FILE = "controlplane.json"
_READY_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3
_BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass(frozen=True)
class LabPorts:
    """The loopback ports of one lab."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    authenticator: int = 0  # the lab's EKS token authenticator (0: pick a free port at start)


@dataclass(frozen=True)
class ControlPlane:
    """A running lab control plane and everything a client needs to reach it."""

    workdir: Path
    server: str
    ca_file: Path
    admin_kubeconfig: Path
    responder_kubeconfig: Path
    audit_log: Path
    ports: LabPorts
    pids: Mapping[str, int] = field(hash=False)
    front_proxy_cert: Path
    front_proxy_key: Path
    authenticator_config: Path | None = None  # eks-authenticator.json, written by eks_auth_setup.connect

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """A kubernetes ApiClient from a kubeconfig (the admin one by default)."""
        return config.new_client_from_config(config_file=str(kubeconfig or self.admin_kubeconfig))

    def identity_api_client(
        self,
        username: str,
        groups: Sequence[str] = (),
        uid: str | None = None,
        extra: Mapping[str, Sequence[str]] | None = None,
    ) -> ApiClient:
        """An ApiClient whose requests the API server attributes to this user, uid, groups and extra.

        It authenticates with the front-proxy client certificate and sends X-Remote-* headers; the
        audit log records the given user directly (no impersonatedUser), exactly as for an EKS IAM principal.
        Extra keys keep their case (EKS uses accessKeyId, canonicalArn, ...). Raises LabError for values that
        cannot travel in an HTTP header.
        """
        return make_identity_client(
            self.server,
            self.ca_file,
            (self.front_proxy_cert, self.front_proxy_key),
            username=username,
            groups=groups,
            uid=uid,
            extra=extra or {},
        )

    def status(self) -> list[processes.ProcessStatus]:
        """Each lab process as running or exited (crashed), with its last log lines."""
        return processes.status(self.workdir)

    def stop(self) -> None:
        """Stop kube-apiserver and etcd and verify they are gone; raises LabError if one survives."""
        processes.stop_all(self.workdir)


def start_control_plane(
    workdir: Path,
    binaries: LabBinaries,
    *,
    ports: LabPorts | None = None,
    service_account_issuer: str = DEFAULT_SA_ISSUER,
    apiserver_args: Sequence[str] = (),
    ready_timeout: float = _READY_TIMEOUT_S,
) -> ControlPlane:
    """Start etcd and kube-apiserver in `workdir` and wait for /readyz; leave nothing running on failure.

    `ports` fixes the ports (default: random free ones; a lost race for one is retried). `apiserver_args`
    are appended to the API server's flags. Raises LabError when a lab already runs in `workdir`, a port is
    taken, a server exits during start (with its last log lines), or /readyz is not reached in time.
    """
    workdir = workdir.resolve()
    _refuse_if_running(workdir)
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = ports or LabPorts(*processes.free_ports(4))
        try:
            return _start_once(
                workdir,
                binaries,
                chosen,
                issuer=service_account_issuer,
                extra_args=list(apiserver_args),
                ready_timeout=ready_timeout,
            )
        except LabError as exc:
            # Free ports are picked, released, then bound: another process (a parallel test session) can take
            # one in between, seen either by the pre-check or by the server's own bind.
            lost_race = isinstance(exc, processes.PortInUseError) or "address already in use" in exc.message
            if ports is not None or not lost_race or attempt == _START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def load_control_plane(workdir: Path) -> ControlPlane:
    """Describe the lab started earlier in `workdir` (possibly by another process) from its state file."""
    path = workdir.resolve() / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ControlPlane(
            workdir=Path(raw["workdir"]),
            server=str(raw["server"]),
            ca_file=Path(raw["ca_file"]),
            admin_kubeconfig=Path(raw["admin_kubeconfig"]),
            responder_kubeconfig=Path(raw["responder_kubeconfig"]),
            audit_log=Path(raw["audit_log"]),
            ports=LabPorts(**raw["ports"]),
            pids={str(k): int(v) for k, v in raw["pids"].items()},
            front_proxy_cert=Path(raw["front_proxy_cert"]),
            front_proxy_key=Path(raw["front_proxy_key"]),
            authenticator_config=Path(raw.get("authenticator_config") or Path(raw["workdir"]) / AUTH_CONFIG),
        )
    except FileNotFoundError:
        raise LabError(f"no lab in {workdir}: start one with `eksir lab up`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path} is unreadable ({exc}); stop the lab and start a new one") from exc


def create_namespace(api: ApiClient, name: str, labels: Mapping[str, str] | None = None) -> None:
    """Create a namespace and its `default` ServiceAccount (no controller-manager creates it here).

    Raises LabError when the API server refuses (e.g. HTTP 409: the namespace exists).
    """
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})))
        )
    except ApiException as exc:
        raise LabError(f"could not create namespace {name}: HTTP {exc.status} {exc.reason}") from exc
    _ensure_default_service_account(core, name)


def _refuse_if_running(workdir: Path) -> None:
    running = [s.record for s in processes.status(workdir) if s.state is processes.ProcState.RUNNING]
    if running:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in running)
        raise LabError(f"a lab is already running in {workdir}: {names}; stop it first (`eksir lab down`)")
    processes.stop_all(workdir)  # clears the records of processes that are already gone


def _start_once(
    workdir: Path,
    binaries: LabBinaries,
    ports: LabPorts,
    *,
    issuer: str,
    extra_args: list[str],
    ready_timeout: float,
) -> ControlPlane:
    """One start attempt; on any failure (or Ctrl-C) stop whatever was started before re-raising."""
    if not ports.authenticator:
        ports = dataclasses.replace(ports, authenticator=processes.free_ports(1)[0])
    for port, name in (
        (ports.etcd_client, "etcd"),
        (ports.etcd_peer, "etcd peer"),
        (ports.apiserver, "kube-apiserver"),
        (ports.authenticator, "eks-authenticator"),
    ):
        processes.ensure_port_free(port, name)
    try:
        shutil.rmtree(workdir / "etcd", ignore_errors=True)
        (workdir / "audit.log").unlink(missing_ok=True)
        pki = generate_pki(workdir / "pki")
        policy = workdir / "audit-policy.yaml"
        policy.write_bytes(resources.files("eksir.lab").joinpath("audit-policy.yaml").read_bytes())
    except OSError as exc:
        raise LabError(f"cannot prepare the lab folder {workdir}: {exc.strerror or exc}") from exc
    try:
        etcd = processes.start_process(
            workdir,
            "etcd",
            _etcd_cmdline(binaries.etcd, workdir, ports),
            ports.etcd_client,
            workdir / "etcd.log",
        )
        authenticator = eks_auth_setup.start(workdir, ports.authenticator)
        kas_cmd = [
            *_apiserver_cmdline(binaries.kube_apiserver, workdir, pki, ports, issuer=issuer, policy=policy),
            *eks_auth_setup.apiserver_flags(workdir, ports.authenticator),
            *extra_args,
        ]
        kas = processes.start_process(
            workdir, "kube-apiserver", kas_cmd, ports.apiserver, workdir / "kube-apiserver.log"
        )
        pids = {"etcd": etcd.pid, "kube-apiserver": kas.pid, "eks-authenticator": authenticator.pid}
        plane = _describe(workdir, pki, ports, pids)
        _wait_ready(plane, pki, [etcd, authenticator, kas], ready_timeout)
        _bootstrap(plane)
    except BaseException:
        processes.stop_all(workdir)
        raise
    _save(plane)
    return plane


def _etcd_cmdline(binary: Path, workdir: Path, ports: LabPorts) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=lab",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=lab={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",  # a disposable lab: durability is not worth the latency
        "--log-level=warn",
    ]


def _apiserver_cmdline(
    binary: Path, workdir: Path, pki: LabPki, ports: LabPorts, *, issuer: str, policy: Path
) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={pki.ca.parent}",
        f"--tls-cert-file={pki.serving.cert}",
        f"--tls-private-key-file={pki.serving.key}",
        f"--client-ca-file={pki.client_ca}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--endpoint-reconciler-type=none",  # a loopback address may not be an endpoint of `kubernetes`
        f"--service-account-issuer={issuer}",
        f"--service-account-key-file={pki.sa_public_key}",
        f"--service-account-signing-key-file={pki.sa_private_key}",
        f"--requestheader-client-ca-file={pki.front_proxy_ca}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_NAME}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-uid-headers=X-Remote-Uid",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--audit-policy-file={policy}",
        f"--audit-log-path={workdir / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxsize=100",
        "--audit-log-maxbackup=5",
        "--audit-log-maxage=30",
        "--profiling=false",
    ]


def _describe(workdir: Path, pki: LabPki, ports: LabPorts, pids: dict[str, int]) -> ControlPlane:
    server = f"https://127.0.0.1:{ports.apiserver}"
    admin = workdir / "admin.kubeconfig"
    responder = workdir / "responder.kubeconfig"
    write_kubeconfig(
        admin,
        server=server,
        ca_file=pki.ca,
        cert_file=pki.admin.cert,
        key_file=pki.admin.key,
        user="eksir-admin",
    )
    write_kubeconfig(
        responder,
        server=server,
        ca_file=pki.ca,
        cert_file=pki.responder.cert,
        key_file=pki.responder.key,
        user="eksir-responder",
    )
    return ControlPlane(
        workdir=workdir,
        server=server,
        ca_file=pki.ca,
        admin_kubeconfig=admin,
        responder_kubeconfig=responder,
        audit_log=workdir / "audit.log",
        ports=ports,
        pids=pids,
        front_proxy_cert=pki.front_proxy_client.cert,
        front_proxy_key=pki.front_proxy_client.key,
        authenticator_config=workdir / AUTH_CONFIG,
    )


def _wait_ready(
    plane: ControlPlane, pki: LabPki, started: list[processes.ProcessRecord], timeout: float
) -> None:
    """Poll /readyz until it answers 200; fail fast, with the log's end, if a server exits meanwhile."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        for record in started:
            if not processes.is_running(record):
                raise LabError(
                    f"{record.name} exited during start; last lines of {record.log}:\n"
                    + log_tail(Path(record.log), 20)
                )
        try:
            with urllib.request.urlopen(f"{plane.server}/readyz", context=context, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.2)
    raise LabError(
        f"kube-apiserver was not ready within {timeout:.0f} s (last /readyz: {last}); see "
        f"{plane.workdir / 'kube-apiserver.log'}:\n" + log_tail(plane.workdir / "kube-apiserver.log", 15)
    )


def _bootstrap(plane: ControlPlane) -> None:
    """Create the `default` ServiceAccounts a controller-manager would have created."""
    with plane.api_client() as api:
        core = client.CoreV1Api(api)
        for namespace in _BOOTSTRAP_NAMESPACES:
            _ensure_default_service_account(core, namespace)


def _ensure_default_service_account(core: CoreV1Api, namespace: str) -> None:
    try:
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise LabError(f"could not create ServiceAccount {namespace}/default: {exc.reason}") from exc


def _save(plane: ControlPlane) -> None:
    data = {
        "workdir": str(plane.workdir),
        "server": plane.server,
        "ca_file": str(plane.ca_file),
        "admin_kubeconfig": str(plane.admin_kubeconfig),
        "responder_kubeconfig": str(plane.responder_kubeconfig),
        "audit_log": str(plane.audit_log),
        "ports": {
            "etcd_client": plane.ports.etcd_client,
            "etcd_peer": plane.ports.etcd_peer,
            "apiserver": plane.ports.apiserver,
            "authenticator": plane.ports.authenticator,
        },
        "pids": dict(plane.pids),
        "front_proxy_cert": str(plane.front_proxy_cert),
        "front_proxy_key": str(plane.front_proxy_key),
        "authenticator_config": str(plane.authenticator_config or ""),
    }
    (plane.workdir / STATE_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")
