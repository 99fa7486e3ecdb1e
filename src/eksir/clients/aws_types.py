"""Typed boto3 clients: which client class each service name gives, for mypy (nothing here runs).

Why: every AWS call eksir makes is checked by mypy against the service's own model (operation names,
parameter names and types, response shapes) through the `types-boto3` stubs (dev extra). A factory typed
`ClientFactory` returns `EC2Client` for `"ec2"`, and so on for every service eksir calls; a service name
not listed is a type error: adding a service means adding its stub (pyproject's dev extra) and its overload.
The stub packages are imported only while type-checking: an installed eksir does not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, overload

if TYPE_CHECKING:
    from types_boto3_athena.client import AthenaClient
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_cloudtrail.client import CloudTrailClient
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_eks.client import EKSClient
    from types_boto3_guardduty.client import GuardDutyClient
    from types_boto3_iam.client import IAMClient
    from types_boto3_kms.client import KMSClient
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_logs.client import CloudWatchLogsClient
    from types_boto3_resourcegroupstaggingapi.client import ResourceGroupsTaggingAPIClient
    from types_boto3_s3.client import S3Client
    from types_boto3_security_ir.client import SecurityIncidentResponseClient
    from types_boto3_securityhub.client import SecurityHubClient
    from types_boto3_sns.client import SNSClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_sts.client import STSClient


class ClientFactory(Protocol):
    """`factory("ec2")` -> a typed EC2 client (the case's account and region, the one Config)."""

    @overload
    def __call__(self, service: Literal["athena"], /) -> AthenaClient: ...
    @overload
    def __call__(self, service: Literal["autoscaling"], /) -> AutoScalingClient: ...
    @overload
    def __call__(self, service: Literal["cloudtrail"], /) -> CloudTrailClient: ...
    @overload
    def __call__(self, service: Literal["dynamodb"], /) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["ec2"], /) -> EC2Client: ...
    @overload
    def __call__(self, service: Literal["eks"], /) -> EKSClient: ...
    @overload
    def __call__(self, service: Literal["guardduty"], /) -> GuardDutyClient: ...
    @overload
    def __call__(self, service: Literal["iam"], /) -> IAMClient: ...
    @overload
    def __call__(self, service: Literal["kms"], /) -> KMSClient: ...
    @overload
    def __call__(self, service: Literal["lambda"], /) -> LambdaClient: ...
    @overload
    def __call__(self, service: Literal["logs"], /) -> CloudWatchLogsClient: ...
    @overload
    def __call__(self, service: Literal["resourcegroupstaggingapi"], /) -> ResourceGroupsTaggingAPIClient: ...
    @overload
    def __call__(self, service: Literal["s3"], /) -> S3Client: ...
    @overload
    def __call__(self, service: Literal["security-ir"], /) -> SecurityIncidentResponseClient: ...
    @overload
    def __call__(self, service: Literal["securityhub"], /) -> SecurityHubClient: ...
    @overload
    def __call__(self, service: Literal["sns"], /) -> SNSClient: ...
    @overload
    def __call__(self, service: Literal["ssm"], /) -> SSMClient: ...
    @overload
    def __call__(self, service: Literal["sts"], /) -> STSClient: ...


class RegionalClientFactory(Protocol):
    """`factory("s3", region="eu-west-1")`: like `ClientFactory`, in another region when asked (the hunt)."""

    @overload
    def __call__(self, service: Literal["athena"], /, region: str | None = None) -> AthenaClient: ...
    @overload
    def __call__(
        self, service: Literal["autoscaling"], /, region: str | None = None
    ) -> AutoScalingClient: ...
    @overload
    def __call__(self, service: Literal["cloudtrail"], /, region: str | None = None) -> CloudTrailClient: ...
    @overload
    def __call__(self, service: Literal["ec2"], /, region: str | None = None) -> EC2Client: ...
    @overload
    def __call__(self, service: Literal["eks"], /, region: str | None = None) -> EKSClient: ...
    @overload
    def __call__(self, service: Literal["guardduty"], /, region: str | None = None) -> GuardDutyClient: ...
    @overload
    def __call__(self, service: Literal["iam"], /, region: str | None = None) -> IAMClient: ...
    @overload
    def __call__(self, service: Literal["kms"], /, region: str | None = None) -> KMSClient: ...
    @overload
    def __call__(self, service: Literal["lambda"], /, region: str | None = None) -> LambdaClient: ...
    @overload
    def __call__(self, service: Literal["logs"], /, region: str | None = None) -> CloudWatchLogsClient: ...
    @overload
    def __call__(
        self, service: Literal["resourcegroupstaggingapi"], /, region: str | None = None
    ) -> ResourceGroupsTaggingAPIClient: ...
    @overload
    def __call__(self, service: Literal["s3"], /, region: str | None = None) -> S3Client: ...
    @overload
    def __call__(
        self, service: Literal["securityhub"], /, region: str | None = None
    ) -> SecurityHubClient: ...
    @overload
    def __call__(self, service: Literal["sns"], /, region: str | None = None) -> SNSClient: ...
    @overload
    def __call__(self, service: Literal["ssm"], /, region: str | None = None) -> SSMClient: ...
    @overload
    def __call__(self, service: Literal["sts"], /, region: str | None = None) -> STSClient: ...
