"""Policy-as-code equivalents of the PSA labels: Kyverno and OPA Gatekeeper, as YAML files for the case.

Why both and why as files: many clusters already run one policy engine and manage admission policy through
Git; the responder hands the file to that pipeline instead of eksir applying CRDs it does not own. Both
policies reject any pod whose containers, init containers or ephemeral containers set
`securityContext.privileged: true`, which is exactly what the `baseline` Pod Security level checks for
privileged mode. They follow the upstream libraries (kyverno/policies `disallow-privileged-containers`,
gatekeeper-library `k8spspprivilegedcontainer`, Rego v0 syntax) and are scoped to the affected namespace;
widen the match to the whole cluster (with explicit exemptions) once the owners agree.
"""

from __future__ import annotations

from typing import Any

import yaml

from eksir.actions.base import ACTION_CASE_LABEL
from eksir.actions.prevention.psa import PsaLevel, psa_labels

KYVERNO_FILE = "prevention/kyverno-disallow-privileged-containers.yaml"
GATEKEEPER_TEMPLATE_FILE = "prevention/gatekeeper-constrainttemplate.yaml"
GATEKEEPER_CONSTRAINT_FILE = "prevention/gatekeeper-constraint.yaml"
PSA_FILE = "prevention/psa-namespace-labels.yaml"

_MESSAGE = (
    "Privileged mode is disallowed. The fields spec.containers[*].securityContext.privileged, "
    "spec.initContainers[*].securityContext.privileged and "
    "spec.ephemeralContainers[*].securityContext.privileged "
    "must be unset or set to false."
)
_REGO = """package k8spspprivileged

violation[{"msg": msg, "details": {}}] {
    c := input_containers[_]
    c.securityContext.privileged
    msg := sprintf("Privileged container is not allowed: %v, securityContext: %v",
        [c.name, c.securityContext])
}

input_containers[c] {
    c := input.review.object.spec.containers[_]
}

input_containers[c] {
    c := input.review.object.spec.initContainers[_]
}

input_containers[c] {
    c := input.review.object.spec.ephemeralContainers[_]
}
"""


def _not_privileged() -> list[dict[str, Any]]:
    return [{"=(securityContext)": {"=(privileged)": "false"}}]


def kyverno_policy(namespace: str, case_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": "disallow-privileged-containers",
            "labels": {ACTION_CASE_LABEL: case_id},
            "annotations": {
                "policies.kyverno.io/title": "Disallow Privileged Containers",
                "policies.kyverno.io/category": "Pod Security Standards (Baseline)",
                "policies.kyverno.io/severity": "high",
                "policies.kyverno.io/subject": "Pod",
            },
        },
        "spec": {
            "validationFailureAction": "Enforce",
            "background": True,
            "rules": [
                {
                    "name": "privileged-containers",
                    "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": [namespace]}}]},
                    "validate": {
                        "message": _MESSAGE,
                        "pattern": {
                            "spec": {
                                "=(ephemeralContainers)": _not_privileged(),
                                "=(initContainers)": _not_privileged(),
                                "containers": _not_privileged(),
                            }
                        },
                    },
                }
            ],
        },
    }


def gatekeeper_template() -> dict[str, Any]:
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "k8spspprivilegedcontainer"},
        "spec": {
            "crd": {
                "spec": {
                    "names": {"kind": "K8sPSPPrivilegedContainer"},
                    "validation": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"exemptImages": {"type": "array", "items": {"type": "string"}}},
                        }
                    },
                }
            },
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": _REGO}],
        },
    }


def gatekeeper_constraint(namespace: str, case_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sPSPPrivilegedContainer",
        "metadata": {"name": f"disallow-privileged-{namespace}"[:63], "labels": {ACTION_CASE_LABEL: case_id}},
        "spec": {
            "enforcementAction": "deny",
            "match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}], "namespaces": [namespace]},
        },
    }


def psa_namespace_manifest(namespace: str, level: PsaLevel) -> dict[str, Any]:
    """The labels as a Namespace fragment (`kubectl apply --server-side` merges labels)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": psa_labels(level)},
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the Rego) as literal blocks so the file reads like the upstream library."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(document: dict[str, Any], comment: str) -> bytes:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    return (f"# {comment}\n" + body).encode()


def policy_files(namespace: str, level: PsaLevel, case_id: str) -> dict[str, bytes]:
    """Case-relative path -> YAML bytes for every prevention policy."""
    origin = f"generated by eksir for case {case_id}"
    return {
        PSA_FILE: _yaml(psa_namespace_manifest(namespace, level), f"Pod Security Admission labels; {origin}"),
        KYVERNO_FILE: _yaml(kyverno_policy(namespace, case_id), f"Kyverno; {origin}"),
        GATEKEEPER_TEMPLATE_FILE: _yaml(gatekeeper_template(), f"Gatekeeper template; {origin}"),
        GATEKEEPER_CONSTRAINT_FILE: _yaml(gatekeeper_constraint(namespace, case_id), f"Gatekeeper; {origin}"),
    }
