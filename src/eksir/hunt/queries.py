"""The hunt as query text, for when the logs are too big to download: Athena, CloudTrail Lake, Logs Insights.

The text is built from the same principal set and window as the local scan, kept in the hunt result (so the
report shows exactly what was asked), and printed for the responder to run when eksir is not allowed to.
Values are SQL-quoted here, never interpolated raw. Always bounding the partition column lets Athena
partition projection prune to the window's days.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from eksir.hunt.principals import PrincipalSet
from eksir.hunt.window import TimeWindow

_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")
_PLACEHOLDER_ACCOUNT = "111122223333"

_COLUMNS = """  eventversion STRING,
  useridentity STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING, invokedby: STRING,
    accesskeyid: STRING, username: STRING, sessioncontext: STRUCT<attributes: STRUCT<mfaauthenticated: STRING,
    creationdate: STRING>, sessionissuer: STRUCT<type: STRING, principalid: STRING, arn: STRING,
    accountid: STRING, username: STRING>, sourceidentity: STRING>>,
  eventtime STRING, eventsource STRING, eventname STRING, awsregion STRING, sourceipaddress STRING,
  useragent STRING, errorcode STRING, errormessage STRING, requestparameters STRING, responseelements STRING,
  additionaleventdata STRING, requestid STRING, eventid STRING, readonly STRING,
  resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>, eventtype STRING,
  apiversion STRING, recipientaccountid STRING, sharedeventid STRING, vpcendpointid STRING,
  eventcategory STRING, tlsdetails STRUCT<tlsversion: STRING, ciphersuite: STRING,
    clientprovidedhostheader: STRING>"""


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, values: frozenset[str]) -> str | None:
    if not values:
        return None
    return f"{column} IN ({', '.join(sql_literal(v) for v in sorted(values))})"


def accounts_of(principals: PrincipalSet) -> list[str]:
    """Account ids named in the principals' ARNs (the accounts whose trails to query)."""
    arns = principals.user_arns | principals.role_arns | principals.session_arns
    return sorted({m.group(1) for a in arns if (m := _ACCOUNT.match(a))})


def principal_predicate(principals: PrincipalSet, *, lake: bool = False) -> str:
    """The OR of every identity test, in Athena (lowercase) or CloudTrail Lake (camelCase) column names."""
    ui = "userIdentity" if lake else "useridentity"
    issuer = f"{ui}.{'sessionContext.sessionIssuer' if lake else 'sessioncontext.sessionissuer'}"
    key, pid, name = (
        ("accessKeyId", "principalId", "userName") if lake else ("accesskeyid", "principalid", "username")
    )
    parts = [
        _in(f"{ui}.{key}", principals.access_key_ids),
        _in(f"{ui}.arn", principals.user_arns | principals.session_arns),
        _in(f"{issuer}.arn", principals.role_arns),
        _in(f"{issuer}.{name}", principals.role_names),
        _in(f"{ui}.{pid}", principals.principal_ids),
    ]
    for value in sorted(principals.principal_ids):
        if ":" not in value:
            parts.append(f"{ui}.{pid} LIKE {sql_literal(value + ':%')}")
    if principals.user_names:
        parts.append(f"({ui}.type = 'IAMUser' AND {_in(f'{ui}.{name}', principals.user_names)})")
    if principals.k8s_usernames:
        parts.append(f"({ui}.type = 'WebIdentityUser' AND {_in(f'{ui}.{name}', principals.k8s_usernames)})")
    for session in sorted(principals.session_names):
        parts.append(f"{ui}.arn LIKE {sql_literal('%:assumed-role/%/' + session)}")
    parts += _instance_sessions(
        principals, f"{ui}.type", f"{ui}.arn", "sourceIPAddress" if lake else "sourceipaddress"
    )
    present = [p for p in parts if p]
    return "(\n    " + "\n    OR ".join(present) + "\n  )" if present else "(1 = 0)"


def _instance_sessions(principals: PrincipalSet, kind: str, arn: str, source_ip: str) -> list[str]:
    """A node's instance-role session (session name = instance id) used from anywhere but the node itself:
    `PrincipalSet.match`'s off-host rule, so credentials stolen from IMDS are hunted where they were used."""
    own = _in(source_ip, principals.instance_ips)
    return [
        f"({kind} = 'AssumedRole' AND {arn} LIKE {sql_literal('%:assumed-role/%/' + instance)}"
        + (f" AND NOT {own})" if own else ")")
        for instance in sorted(principals.instance_sessions)
    ]


def athena_ddl(
    table: str, bucket_prefix: str, accounts: list[str], regions: list[str], org_id: str | None = None
) -> str:
    """CREATE TABLE for a trail bucket with partition projection over account, region and day.

    `bucket_prefix` is `s3://bucket/optional/prefix` (the folder that holds `AWSLogs/`); an organisation
    trail (`org_id`, `o-...`) writes under `AWSLogs/<org id>/<account>/`. Only the enumerated accounts and
    regions are ever read: an account missing from `accounts` is silently outside the table, so an org
    hunt lists the trail's accounts (`sources.files.trail_accounts`) rather than trusting the principals.
    """
    root = bucket_prefix.rstrip("/") + ("/AWSLogs/" + org_id if org_id else "/AWSLogs")
    account_values = ",".join(accounts or [_PLACEHOLDER_ACCOUNT])
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS {table} (
{_COLUMNS}
)
PARTITIONED BY (account STRING, region STRING, `timestamp` STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{root}/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.account.type'='enum',
  'projection.account.values'='{account_values}',
  'projection.region.type'='enum',
  'projection.region.values'='{",".join(regions)}',
  'projection.timestamp.type'='date',
  'projection.timestamp.format'='yyyy/MM/dd',
  'projection.timestamp.range'='2015/01/01,NOW',
  'projection.timestamp.interval'='1',
  'projection.timestamp.interval.unit'='DAYS',
  'storage.location.template'='{root}/${{account}}/CloudTrail/${{region}}/${{timestamp}}'
)"""


def athena_query(table: str, principals: PrincipalSet, window: TimeWindow) -> str:
    """The principal/time hunt over the projected table; the day bounds prune partitions.

    The partition bound runs to the day after the window (a call at 23:58 is delivered after midnight, in
    the next day's folder); `cost.partitions` must select the same days. The identity and the resources
    come back as JSON (`json_format(CAST(... AS JSON))`) so `hunt.athena.rows_to_records` rebuilds the
    record the local scan would have read: same matching, same classification, same owners.
    """
    first = f"{window.since:%Y/%m/%d}"
    last = f"{window.until + timedelta(days=1):%Y/%m/%d}"
    return f"""SELECT eventtime, eventsource, eventname, awsregion, recipientaccountid, sourceipaddress,
  useragent, errorcode, errormessage, json_format(CAST(useridentity AS JSON)) AS useridentity_json,
  requestparameters, responseelements, json_format(CAST(resources AS JSON)) AS resources_json, eventid,
  account, region
FROM {table}
WHERE "timestamp" BETWEEN {sql_literal(first)} AND {sql_literal(last)}
  AND eventtime BETWEEN {sql_literal(_iso(window.since))} AND {sql_literal(_iso(window.until))}
  AND {principal_predicate(principals)}
ORDER BY eventtime"""


def lake_query(event_data_store: str, principals: PrincipalSet, window: TimeWindow) -> str:
    """The same hunt for CloudTrail Lake (StartQuery); the event data store id goes in FROM."""
    return f"""SELECT eventTime, eventSource, eventName, awsRegion, recipientAccountId, sourceIPAddress,
  userAgent, errorCode, errorMessage, userIdentity.arn, userIdentity.accessKeyId, userIdentity.principalId,
  requestParameters, responseElements, resources, eventID
FROM {event_data_store}
WHERE eventTime >= {sql_literal(f"{window.since:%Y-%m-%d %H:%M:%S}")}
  AND eventTime <= {sql_literal(f"{window.until:%Y-%m-%d %H:%M:%S}")}
  AND {principal_predicate(principals, lake=True)}
ORDER BY eventTime"""


def logs_insights_query(principals: PrincipalSet, limit: int = 10000) -> str:
    """Logs Insights text for EKS audit logs: a regex on @message (field discovery caps at 100-200 fields)."""
    values = sorted(
        principals.k8s_usernames
        | principals.access_key_ids
        | principals.session_arns
        | principals.user_arns
        | principals.role_arns
    )
    pattern = "|".join(_regex_literal(v) for v in values) or "^$"
    return (
        "fields @timestamp, @message, @logStream\n"
        "| filter @logStream like /kube-apiserver-audit/\n"
        f"| filter @message like /{pattern}/\n"
        "| sort @timestamp asc\n"
        f"| limit {limit}"
    )


def _regex_literal(value: str) -> str:
    """Escape regex metacharacters and the `/` delimiter, leaving names readable (`-`, `:` as is)."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\/" else c for c in value)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _ocsf_predicate(principals: PrincipalSet) -> str:
    """The identity tests over Security Lake's OCSF columns (CloudTrail `userIdentity` as OCSF 1.1 maps it:
    arn -> actor.user.uid, principalId -> actor.user.uid_alt, accessKeyId -> actor.user.credential_uid,
    userName -> actor.user.name, sessionIssuer.arn -> actor.session.issuer). OCSF keeps no issuer name,
    so a role name is matched as the issuer ARN's last segment."""
    user = "actor.user"
    parts = [
        _in(f"{user}.credential_uid", principals.access_key_ids),
        _in(f"{user}.uid", principals.user_arns | principals.session_arns),
        _in("actor.session.issuer", principals.role_arns),
        _in(f"{user}.uid_alt", principals.principal_ids),
    ]
    parts += [
        f"actor.session.issuer LIKE {sql_literal('%/' + name)}" for name in sorted(principals.role_names)
    ]
    parts += [
        f"{user}.uid_alt LIKE {sql_literal(v + ':%')}"
        for v in sorted(principals.principal_ids)
        if ":" not in v
    ]
    if principals.user_names:
        parts.append(f"({user}.type = 'IAMUser' AND {_in(f'{user}.name', principals.user_names)})")
    if principals.k8s_usernames:
        parts.append(f"({user}.type = 'WebIdentityUser' AND {_in(f'{user}.name', principals.k8s_usernames)})")
    parts += [
        f"{user}.uid LIKE {sql_literal('%:assumed-role/%/' + s)}" for s in sorted(principals.session_names)
    ]
    parts += _instance_sessions(principals, f"{user}.type", f"{user}.uid", "src_endpoint.ip")
    present = [p for p in parts if p]
    return "(\n    " + "\n    OR ".join(present) + "\n  )" if present else "(1 = 0)"


def security_lake_query(table: str, principals: PrincipalSet, window: TimeWindow) -> str:
    """The hunt over a Security Lake CloudTrail management-events table (OCSF 1.1 API Activity, source
    version 2), such as `amazon_security_lake_glue_db_us_east_1.
    amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0`.

    Security Lake partitions by `region`, `accountid` and `eventday` (yyyyMMdd of the event's time, not of
    delivery): bounding `eventday` prunes to the window's days. The columns are every CloudTrail member the
    OCSF mapping keeps that the hunt reads, so `hunt.athena.lake_rows_to_records` can rebuild the record
    (OCSF keeps no `resources` list and only the session issuer's ARN).
    """
    return f"""SELECT metadata.uid AS eventid, time AS time_ms, api.operation AS eventname,
  api.service.name AS eventsource, cloud.region AS awsregion, cloud.account.uid AS recipientaccountid,
  actor.user.uid AS arn, actor.user.uid_alt AS principalid, actor.user.credential_uid AS accesskeyid,
  actor.user.name AS username, actor.user.type AS usertype, actor.user.account.uid AS useraccountid,
  actor.session.issuer AS issuer_arn, actor.invoked_by AS invokedby, api.response.error AS errorcode,
  api.response.message AS errormessage, src_endpoint.ip AS sourceipaddress,
  http_request.user_agent AS useragent, api.request.data AS requestparameters,
  api.response.data AS responseelements, accountid, region
FROM {table}
WHERE eventday BETWEEN {sql_literal(f"{window.since:%Y%m%d}")} AND {sql_literal(f"{window.until:%Y%m%d}")}
  AND time_dt BETWEEN TIMESTAMP {sql_literal(f"{window.since:%Y-%m-%d %H:%M:%S}")}
    AND TIMESTAMP {sql_literal(f"{window.until:%Y-%m-%d %H:%M:%S}")}
  AND {_ocsf_predicate(principals)}
ORDER BY time_dt"""
