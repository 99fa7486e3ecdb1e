"""The `--checkpoint` preflight's rules, each on its own (the node proxy path itself is tested against the
lab's API server in tests/actions/test_checkpoint.py). `Configz` stands in for KubeReader's one GET of the
kubelet's /configz, answering what a kubelet would (or an error, as the API server's proxy does)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from eksir.errors import TemporaryError
from eksir.models.resolution import NodeCompute, NodeKind, NodeOs
from eksir.resolve.checkpoint import checkpoint_preflight
from eksir.resolve.node_kind import detect_node_kind


class Configz:
    def __init__(self, gates: dict[str, bool] | None = None, fail: bool = False) -> None:
        self.gates, self.fail, self.paths = gates or {}, fail, []

    def get(self, path: str, doing: str) -> Any:
        self.paths.append(path)
        if self.fail:
            raise TemporaryError(f"{doing}: API server answered 503 Service Unavailable; retry")
        return {"kubeletconfig": {"featureGates": self.gates}}


def _node(kubelet: str, runtime: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    info = {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime}
    return {"metadata": {"name": "n1", "labels": labels or {}}, "status": {"nodeInfo": info}}


UBUNTU = NodeKind(os=NodeOs.OTHER)


def test_kubelet_1_30_with_containerd_2_on_a_custom_image_may_checkpoint() -> None:
    kube = Configz()
    result = checkpoint_preflight(kube, _node("v1.30.4", "containerd://2.0.4"), UBUNTU)  # type: ignore[arg-type]
    assert result.available, result.reasons
    assert kube.paths == ["/api/v1/nodes/n1/proxy/configz"]


def test_before_1_30_the_alpha_gate_must_be_on() -> None:
    off = checkpoint_preflight(Configz(), _node("v1.29.9", "cri-o://1.29.1"), UBUNTU)  # type: ignore[arg-type]
    on = checkpoint_preflight(
        Configz({"ContainerCheckpoint": True}),  # type: ignore[arg-type]
        _node("v1.29.9", "cri-o://1.29.1"),
        UBUNTU,
    )
    assert not off.available
    assert any("alpha before 1.30" in r for r in off.reasons)
    assert on.available, on.reasons


def test_a_stock_eks_ami_needs_the_operators_criu_label() -> None:
    al2023 = NodeKind(os=NodeOs.AL2023)
    node = _node("v1.31.2", "containerd://2.0.4")
    labelled = _node("v1.31.2", "containerd://2.0.4", {"eksir.io/criu": "installed"})
    assert not checkpoint_preflight(Configz(), node, al2023).available  # type: ignore[arg-type]
    assert checkpoint_preflight(Configz(), labelled, al2023).available  # type: ignore[arg-type]


def test_an_unreachable_kubelet_and_fargate_say_why_not() -> None:
    unreachable = checkpoint_preflight(
        Configz(fail=True),  # type: ignore[arg-type]
        _node("v1.31.2", "containerd://2.0.4"),
        UBUNTU,
    )
    fargate_kube = Configz()
    fargate = checkpoint_preflight(
        fargate_kube, _node("v1.31.2", "containerd://2.0.4"), NodeKind(compute=NodeCompute.FARGATE)
    )  # type: ignore[arg-type]
    assert not unreachable.available
    assert any("not reachable through the node proxy" in r for r in unreachable.reasons)
    assert not fargate.available
    assert fargate_kube.paths == []


_text = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.lists(st.text(max_size=5), max_size=2))


@given(
    labels=st.dictionaries(
        st.sampled_from(["eks.amazonaws.com/compute-type", "karpenter.sh/nodepool", "x"]), _text
    ),
    provider=_text,
    name=_text,
    os_image=_text,
    auto_mode=st.one_of(st.none(), st.booleans()),
)
def test_detection_never_raises_on_any_node_json(
    labels: dict[str, Any], provider: Any, name: Any, os_image: Any, auto_mode: bool | None
) -> None:
    raw = {
        "metadata": {"name": name, "labels": labels},
        "spec": {"providerID": provider},
        "status": {"nodeInfo": {"osImage": os_image}},
    }
    kind = detect_node_kind(raw, auto_mode)
    assert kind.compute in NodeCompute
    assert kind.os in NodeOs
