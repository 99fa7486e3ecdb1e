"""The real game day's finding, offline: eksir reads it as the handled finding of the attacker's pod.

The game day writes the finding itself (world.py says why), so a finding eksir would refuse or misread would
only show in a run against AWS; this runs in every `make test`, with the shapes the API server and EKS return.
"""

from __future__ import annotations

import json

from eksir.findings.family import require_handled
from eksir.findings.reader import read_findings
from eksir.models.finding import FindingFamily
from tests.aws_real.world import FINDING_TYPE, Attack, finding

POD = {
    "metadata": {
        "name": "debug-tools",
        "namespace": "eksir-test-0a1b2c3d",
        "uid": "6f1c3e0a-9d1b-4c5e-8f7a-2b3c4d5e6f70",
    },
    "spec": {
        "containers": [{"name": "shell", "image": "busybox:1.36", "securityContext": {"privileged": True}}]
    },
}
CLUSTER = {
    "name": "sandbox",
    "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/sandbox",
    "resourcesVpcConfig": {"vpcId": "vpc-0abc"},
}
ATTACK = Attack(
    POD,
    CLUSTER,
    "111122223333",
    "eu-west-1",
    "arn:aws:iam::111122223333:user/eksir-test-0a1b2c3d",
    "eksir-test-0a1b2c3d",
    "AKIAEXAMPLEEXAMPLE12",
)


def test_eksir_reads_the_written_finding_as_the_attackers_privileged_pod() -> None:
    (read,) = require_handled(read_findings(json.dumps(finding(ATTACK)).encode()))
    assert (read.type, read.family) == (FINDING_TYPE, FindingFamily.PRIVILEGED_CONTAINER)
    assert (read.account_id, read.region) == ("111122223333", "eu-west-1")
    assert read.cluster is not None
    assert read.cluster.name == "sandbox"
    assert read.workload is not None
    assert (read.workload.namespace, read.workload.uid) == ("eksir-test-0a1b2c3d", POD["metadata"]["uid"])
    assert read.actor is not None
    assert (read.actor.access_key_id, read.actor.user_name) == ("AKIAEXAMPLEEXAMPLE12", "eksir-test-0a1b2c3d")
