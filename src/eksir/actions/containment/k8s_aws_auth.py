"""`k8s.remove_aws_auth_entry`: stop an IAM principal authenticating to the cluster through aws-auth.

Why surgical text edits: `mapRoles`/`mapUsers` are YAML documents inside a ConfigMap, maintained by hand, by
eksctl and by Terraform, often with comments. Re-serialising the whole list would rewrite every other entry
(and drop comments) for a one-entry change, which reviewers and drift detectors then flag. So the block list
is split into one text chunk per top-level item, the chunks are proven to parse to exactly the parsed list,
and only the matching chunk is cut out; every other byte stays. Only a document that cannot be split that
way (flow style, JSON) is re-serialised, and the record says so.

Why `resourceVersion`: aws-auth is shared; a replace carrying the version we read fails with 409 if anyone
wrote in between, and we re-read and recompute instead of overwriting their change. Why an annotation: the
removed chunk is written onto the ConfigMap in the same update, so a crash before the engine persists the
applied record cannot lose what rollback must re-add. The full ConfigMap is also kept in the record, so
rollback can re-create it if it was deleted meanwhile. Node-group / Fargate mappings are refused: removing
them takes nodes off the cluster (the field guide: do not remove EKS-created entries).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import require_live, strip_server_fields, to_json
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import ConflictError, core, k8s_write
from eksir.errors import NotFoundError, RefusedError, TemporaryError

NAMESPACE, NAME = "kube-system", "aws-auth"
REMOVED_ANNOTATION = "eksir.io/aws-auth-removed"
CONFLICT_RETRIES = 5
NODE_GROUPS = frozenset({"system:nodes", "system:bootstrappers", "system:node-proxier"})
ARN_PATTERN = r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(role|user|assumed-role)/[\w+=,.@/-]+$"
ACCESS_ENTRY_WARNING = (
    "an EKS access entry for the same principal overrides aws-auth: removing this entry alone revokes "
    "nothing if one exists (delete the access entry too)"
)


class AwsAuthEntryParams(ActionParams):
    map: Literal["mapRoles", "mapUsers"]
    arn: str = Field(pattern=ARN_PATTERN, max_length=2048)
    username: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _arn_fits_map(self) -> AwsAuthEntryParams:
        is_user = ":user/" in self.arn
        if (self.map == "mapUsers") != is_user:
            raise ValueError(f"{self.map} holds {'user' if self.map == 'mapUsers' else 'role'} ARNs")
        return self


def canonical_arn(arn: str) -> str:
    """The ARN aws-iam-authenticator matches: roles without path, assumed-role sessions as their role."""
    found = re.match(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(role|assumed-role)/(.+)$", arn)
    if not found:
        return arn
    partition, _svc, account, kind, rest = found.groups()
    role = rest.split("/")[0] if kind == "assumed-role" else rest.rsplit("/", 1)[-1]
    return f"arn:{partition}:iam::{account}:role/{role}"


def _arn_key(map_name: str) -> str:
    return "rolearn" if map_name == "mapRoles" else "userarn"


def split_entries(text: str) -> tuple[str, list[str]] | None:
    """(header, chunks) with header + "".join(chunks) == text, one chunk per top-level list item.

    None when the document is not a block list that splits cleanly (each chunk must parse to exactly one
    item and together to the whole parsed document).
    """
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.lstrip(" ").startswith("-")), None)
    if first is None:
        return ("", []) if not (yaml.safe_load(text) or []) else None
    indent = len(lines[first]) - len(lines[first].lstrip(" "))
    if any(line.strip() and not line.lstrip().startswith("#") for line in lines[:first]):
        return None
    starts = [
        i
        for i, line in enumerate(lines)
        if i >= first and line[:indent].strip() == "" and re.match(r"^-(\s|$)", line[indent:])
    ]
    for k in range(1, len(starts)):  # comment lines just above an item belong to that item
        while starts[k] - 1 > starts[k - 1] and lines[starts[k] - 1].lstrip().startswith("#"):
            starts[k] -= 1
    bounds = [*starts, len(lines)]
    chunks = ["".join(lines[bounds[k] : bounds[k + 1]]) for k in range(len(starts))]
    try:
        parsed = [yaml.safe_load(chunk) for chunk in chunks]
        whole = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if any(not isinstance(p, list) or len(p) != 1 or not isinstance(p[0], dict) for p in parsed):
        return None
    if [p[0] for p in parsed] != whole:
        return None
    return "".join(lines[:first]), chunks


def parse_map(text: str | None) -> list[dict[str, Any]]:
    try:
        parsed = yaml.safe_load(text or "") or []
    except yaml.YAMLError:
        return []
    return [e for e in parsed if isinstance(e, dict)] if isinstance(parsed, list) else []


def matching(entries: list[dict[str, Any]], params: AwsAuthEntryParams) -> list[int]:
    key, wanted = _arn_key(params.map), canonical_arn(params.arn)
    return [i for i, e in enumerate(entries) if canonical_arn(str(e.get(key, ""))) == wanted]


def _notes(cm: dict[str, Any]) -> list[dict[str, Any]]:
    raw = (cm["metadata"].get("annotations") or {}).get(REMOVED_ANNOTATION)
    return list(json.loads(raw)) if raw else []


def _set_notes(cm: dict[str, Any], notes: list[dict[str, Any]]) -> None:
    annotations = dict(cm["metadata"].get("annotations") or {})
    annotations.pop(REMOVED_ANNOTATION, None)
    if notes:
        annotations[REMOVED_ANNOTATION] = json.dumps(notes, sort_keys=True)
    cm["metadata"]["annotations"] = annotations


def _ours(note: dict[str, Any], ctx: ActionContext, params: AwsAuthEntryParams) -> bool:
    return bool(
        note.get("case_id") == ctx.case_id
        and note.get("map") == params.map
        and note.get("arn") == canonical_arn(params.arn)
    )


def read_aws_auth(ctx: ActionContext) -> dict[str, Any]:
    """kube-system/aws-auth as JSON. Raises NotFoundError (no ConfigMap: access entries only?)."""
    api = ctx.k8s()
    with k8s_call(f"read ConfigMap {NAMESPACE}/{NAME}"):
        return dict(to_json(api, core(api).read_namespaced_config_map(NAME, NAMESPACE)))


def update_with_retry(
    ctx: ActionContext, mutate: Callable[[dict[str, Any]], dict[str, Any] | None], doing: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read, mutate, replace with the read resourceVersion; on 409 re-read and recompute.

    Returns (the ConfigMap as read, the ConfigMap written or None when mutate had nothing to change).
    Raises TemporaryError after CONFLICT_RETRIES conflicts in a row, NotFoundError, PermissionDeniedError.
    """
    for _attempt in range(CONFLICT_RETRIES):
        current = read_aws_auth(ctx)
        desired = mutate(json.loads(json.dumps(current)))
        if desired is None:
            return current, None
        try:
            with k8s_write(f"{doing} in {NAMESPACE}/{NAME}"):
                core(ctx.k8s()).replace_namespaced_config_map(NAME, NAMESPACE, desired)
        except ConflictError:
            continue
        return current, desired
    raise TemporaryError(f"{doing}: {NAMESPACE}/{NAME} kept changing ({CONFLICT_RETRIES} conflicts); retry")


def _remove(text: str, indexes: list[int]) -> tuple[str, list[str | None]]:
    """The document without the items at `indexes`, and each removed item's exact text (None: reformatted)."""
    split = split_entries(text)
    if split is not None:
        header, chunks = split
        kept = "".join(c for i, c in enumerate(chunks) if i not in indexes)
        return header + kept, [chunks[i] for i in indexes]
    entries = parse_map(text)
    remaining = [e for i, e in enumerate(entries) if i not in indexes]
    return yaml.safe_dump(remaining, sort_keys=False, default_flow_style=False), [None] * len(indexes)


def _reinsert(text: str, removed: list[dict[str, Any]]) -> str:
    """Put removed items back at their original positions (exact text where it was kept)."""
    split = split_entries(text)
    if split is None or any(r.get("text") is None for r in removed):
        entries = parse_map(text)
        for note in sorted(removed, key=lambda r: int(r["index"])):
            entries.insert(min(int(note["index"]), len(entries)), note["entry"])
        return yaml.safe_dump(entries, sort_keys=False, default_flow_style=False)
    header, chunks = split
    for note in sorted(removed, key=lambda r: int(r["index"])):
        at = min(int(note["index"]), len(chunks))
        if at > 0 and not chunks[at - 1].endswith("\n"):
            chunks[at - 1] += "\n"
        chunks.insert(at, str(note["text"]))
    return header + "".join(chunks)


@register_action
class RemoveAwsAuthEntry(Action[AwsAuthEntryParams]):
    spec = ActionSpec(
        id="k8s.remove_aws_auth_entry",
        phase=Phase.CONTAINMENT,
        title="Remove the principal's aws-auth mapping so it can no longer authenticate to the cluster",
        rbac=(RbacRule(("",), ("configmaps",), ("get", "update", "create")),),
        destructive=True,
        reversible=True,
        description="Edits kube-system/aws-auth (optimistic concurrency); only the matching entry changes. "
        "create is only used by rollback when the ConfigMap was deleted after the removal.",
    )
    params_type = AwsAuthEntryParams

    def _warnings(self, cm: dict[str, Any], params: AwsAuthEntryParams, found: list[int]) -> list[str]:
        warnings = [ACCESS_ENTRY_WARNING]
        entries = parse_map(cm.get("data", {}).get(params.map))
        names = {str(entries[i].get("username")) for i in found}
        if params.username and found and params.username not in names:
            warnings.append(f"the entry maps to username {sorted(names)}, not {params.username}")
        account = params.arn.split(":")[4]
        if account in str(cm.get("data", {}).get("mapAccounts", "")):
            warnings.append(f"mapAccounts lists {account}: the principal still authenticates (no groups)")
        return warnings

    def _refusal(self, entries: list[dict[str, Any]], found: list[int]) -> str | None:
        for i in found:
            if NODE_GROUPS & set(entries[i].get("groups") or []):
                return f"entry {i} maps node groups {sorted(NODE_GROUPS & set(entries[i]['groups']))}: "
        return None

    def check(self, ctx: ActionContext, params: AwsAuthEntryParams) -> CheckOutcome:
        try:
            cm = read_aws_auth(ctx)
        except NotFoundError:
            return CheckOutcome(
                ok=True, detail="no aws-auth ConfigMap: nothing to remove", already_applied=True
            )
        entries = parse_map(cm.get("data", {}).get(params.map))
        found = matching(entries, params)
        refusal = self._refusal(entries, found)
        if refusal:
            return CheckOutcome(ok=False, detail=refusal + "removing it takes nodes off the cluster; refused")
        return CheckOutcome(
            ok=True,
            detail=f"{len(found)} {params.map} entr{'y' if len(found) == 1 else 'ies'} for {params.arn}",
            warnings=tuple(self._warnings(cm, params, found)),
            already_applied=not found,
        )

    def plan(self, ctx: ActionContext, params: AwsAuthEntryParams) -> PlannedChange:
        cm = read_aws_auth(ctx)
        text = str(cm.get("data", {}).get(params.map) or "")
        found = matching(parse_map(text), params)
        if not found:
            return PlannedChange(summary=f"Nothing to do: no {params.map} entry for {params.arn}")
        _new, removed = _remove(text, found)
        diff = [f"- {line}" for chunk in removed if chunk for line in chunk.splitlines()]
        if any(chunk is None for chunk in removed):
            diff.append(f"~ {params.map} cannot be edited in place: it is re-serialised (same entries)")
        return PlannedChange(
            summary=f"Remove {params.map} entry for {params.arn} from {NAMESPACE}/{NAME}",
            diff=tuple(diff),
            blast_radius=(f"only {params.arn}; the other {params.map} entries are kept byte for byte",),
            warnings=tuple(self._warnings(cm, params, found)),
        )

    def apply(self, ctx: ActionContext, params: AwsAuthEntryParams) -> dict[str, Any]:
        """Remove the entry; the record holds the removed text, its position and the ConfigMap before."""
        require_live(ctx, self.spec)
        removed: list[dict[str, Any]] = []

        def mutate(cm: dict[str, Any]) -> dict[str, Any] | None:
            removed.clear()
            text = str(cm.get("data", {}).get(params.map) or "")
            entries = parse_map(text)
            found = matching(entries, params)
            if not found:
                removed.extend(n for n in _notes(cm) if _ours(n, ctx, params))
                return None
            refusal = self._refusal(entries, found)
            if refusal:
                raise RefusedError(f"{self.spec.id}: {refusal}refusing to remove a node mapping")
            new_text, chunks = _remove(text, found)
            for index, chunk in zip(found, chunks, strict=True):
                removed.append(
                    {"case_id": ctx.case_id, "map": params.map, "arn": canonical_arn(params.arn)}
                    | {"index": index, "text": chunk, "entry": entries[index]}
                )
            cm["data"][params.map] = new_text
            _set_notes(cm, _notes(cm) + removed)
            return cm

        try:
            before, _after = update_with_retry(ctx, mutate, f"remove {params.map} entry {params.arn}")
        except NotFoundError:
            return {"map": params.map, "arn": params.arn, "removed": [], "backup": None}
        return {
            "map": params.map,
            "arn": params.arn,
            "removed": list(removed),
            "backup": strip_server_fields(before) if removed and _after is not None else None,
        }

    def verify(
        self, ctx: ActionContext, params: AwsAuthEntryParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        try:
            cm = read_aws_auth(ctx)
        except NotFoundError:
            return VerifyOutcome(ok=True, detail="no aws-auth ConfigMap: the principal has no mapping")
        entries = parse_map(cm.get("data", {}).get(params.map))
        left = matching(entries, params)
        return VerifyOutcome(
            ok=not left,
            detail=f"{params.arn} still mapped ({len(left)} entries)" if left else f"{params.arn} not mapped",
            observed={"entries": len(entries), "matching": len(left)},
        )

    def rollback(self, ctx: ActionContext, params: AwsAuthEntryParams, applied: dict[str, Any]) -> None:
        """Re-add exactly the removed entries at their positions; re-create the ConfigMap if it is gone."""
        require_live(ctx, self.spec)
        recorded = list(applied.get("removed") or [])

        def mutate(cm: dict[str, Any]) -> dict[str, Any] | None:
            notes = _notes(cm)
            ours = [n for n in notes if _ours(n, ctx, params)] or recorded
            text = str((cm.get("data") or {}).get(params.map) or "")
            if not ours or matching(parse_map(text), params):
                return None if not any(_ours(n, ctx, params) for n in notes) else _drop_notes(cm, ctx, params)
            cm.setdefault("data", {})[params.map] = _reinsert(text, ours)
            return _drop_notes(cm, ctx, params)

        try:
            update_with_retry(ctx, mutate, f"re-add {params.map} entry {params.arn}")
        except NotFoundError:
            self._recreate(ctx, applied)

    def _recreate(self, ctx: ActionContext, applied: dict[str, Any]) -> None:
        backup = applied.get("backup")
        if not backup:
            return
        body = json.loads(json.dumps(backup))
        _set_notes(body, [])
        with k8s_call(f"re-create ConfigMap {NAMESPACE}/{NAME} from the backup"):
            core(ctx.k8s()).create_namespaced_config_map(NAMESPACE, body)


def _drop_notes(cm: dict[str, Any], ctx: ActionContext, params: AwsAuthEntryParams) -> dict[str, Any]:
    _set_notes(cm, [n for n in _notes(cm) if not _ours(n, ctx, params)])
    return cm
