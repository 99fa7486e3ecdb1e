"""Imported by the action registry: registers every recovery action."""

from eksir.recovery import aws_resources, iam_other, iam_user, k8s_objects, workload

__all__ = ["aws_resources", "iam_other", "iam_user", "k8s_objects", "workload"]
