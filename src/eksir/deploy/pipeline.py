"""Fleet mode's intake and storage: EventBridge rule -> SQS queue (+ DLQ), lease table, case bucket.

Why these shapes:
- The rule matches the finding types eksir handles (`models.finding.HANDLED_TYPES`: the privileged-container
  audit-log types, the runtime escapes, the attack sequences), so the queue carries little else. The worker
  still records and dead-letters whatever else arrives; the rule is a filter, not the check.
- The queue's redrive policy sends a message to the DLQ after `MaxReceiveCount` receives (a worker that keeps
  crashing on one message must not block the rest); the rule's own dead-letter config catches deliveries
  EventBridge could not make. Both queues allow `events.amazonaws.com` only for this rule (aws:SourceArn).
- The lease table has one item per case, keyed `case_key` (store/dynamo_lease.py). Its TTL attribute is
  `purge_at`, not the lease's `expires_at`: a released lease keeps its item so the fencing token only grows,
  and a TTL on `expires_at` would delete released items and reset the token. An item without `purge_at` is
  never purged.
- The case bucket is versioned with Object Lock on and a default retention, so an evidence object or an event
  of the hash chain cannot be overwritten or deleted within the retention; public access is blocked and a
  bucket policy refuses plain-HTTP requests. The bucket outlives the stack (DeletionPolicy Retain): it is
  the record.
"""

from __future__ import annotations

from typing import Any

from eksir.models.finding import HANDLED_TYPES

LEASE_KEY = "case_key"
LEASE_TTL_ATTRIBUTE = "purge_at"
GUARDDUTY_DETAIL_TYPE = "GuardDuty Finding"


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _arn(resource: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, "Arn"]}


def event_pattern() -> dict[str, Any]:
    """GuardDuty findings of every type eksir handles, sorted so two runs print the same bytes."""
    return {
        "source": ["aws.guardduty"],
        "detail-type": [GUARDDUTY_DETAIL_TYPE],
        "detail": {"type": sorted(HANDLED_TYPES)},
    }


def queues() -> dict[str, Any]:
    """The finding queue, its dead-letter queue, and the policy letting the rule send to both."""
    send = {
        "Sid": "FindingsFromTheEksirRule",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": [_arn("FindingQueue"), _arn("DeadLetterQueue")],
        "Condition": {"ArnEquals": {"aws:SourceArn": _arn("FindingRule")}},
    }
    return {
        "DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
        },
        "FindingQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": 300,
                "MessageRetentionPeriod": 1209600,
                "ReceiveMessageWaitTimeSeconds": 20,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": _arn("DeadLetterQueue"),
                    "maxReceiveCount": _ref("MaxReceiveCount"),
                },
            },
        },
        "FindingQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [_ref("FindingQueue"), _ref("DeadLetterQueue")],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [send]},
            },
        },
    }


def rule() -> dict[str, Any]:
    """The EventBridge rule on the default bus (where GuardDuty's administrator receives every member's
    findings), its target the finding queue; undeliverable events go to the dead-letter queue."""
    return {
        "FindingRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "GuardDuty findings eksir handles, to the eksir worker queue",
                "EventBusName": "default",
                "State": "ENABLED",
                "EventPattern": event_pattern(),
                "Targets": [
                    {
                        "Id": "eksir-finding-queue",
                        "Arn": _arn("FindingQueue"),
                        "DeadLetterConfig": {"Arn": _arn("DeadLetterQueue")},
                        "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
                    }
                ],
            },
        }
    }


def lease_table() -> dict[str, Any]:
    """One lease item per case (conditional writes by the worker and the CLI), on demand, recoverable."""
    return {
        "LeaseTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": LEASE_KEY, "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": LEASE_KEY, "KeyType": "HASH"}],
                "TimeToLiveSpecification": {"AttributeName": LEASE_TTL_ATTRIBUTE, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        }
    }


def case_bucket() -> dict[str, Any]:
    """The shared case store: versioned, Object Lock with a default retention, private, TLS only, retained."""
    tls_only = {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [_arn("CaseBucket"), {"Fn::Sub": "${CaseBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    block = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    return {
        "CaseBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "VersioningConfiguration": {"Status": "Enabled"},
                "ObjectLockEnabled": True,
                "ObjectLockConfiguration": {
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {
                        "DefaultRetention": {"Mode": _ref("RetentionMode"), "Days": _ref("RetentionDays")}
                    },
                },
                "PublicAccessBlockConfiguration": dict.fromkeys(block, True),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            },
        },
        "CaseBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": _ref("CaseBucket"),
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [tls_only]},
            },
        },
    }
