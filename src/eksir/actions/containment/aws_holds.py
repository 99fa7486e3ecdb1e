"""Marks on an EC2 instance or an Auto Scaling group that several cases share: one value, one tag per case.

Why: in fleet mode several incidents sit on one node, each with its own case, and every case protects the same
instance (termination protection, scale-in protection, metadata endpoint off) and the same group (suspended
processes). Each of those is one value per instance or group, which cannot say which case wants it: the
last case to write it used to win, and the first case's rollback switched it off under every other case (or
restored another case's value). Here, as for the Kubernetes node marks (shared_marks.py):

- the mark itself is case-independent (`DisableApiTermination: true`, `ProtectedFromScaleIn: true`, ...);
- each case owns one tag of its own on the instance (or group, or subnet), `eksir.io/hold/<case-id>` = the
  marks it holds there, space-separated (`termination-protection scale-in-protection`), so holds of different
  cases never touch each other, `describe-tags` shows who holds what, and a node shared by N cases spends N
  of its 50 tags on holds, not N per mark;
- the value before eksir's first case is noted once, in a tag of its own per mark
  (`eksir.io/termination-protection-before`, `eksir.io/metadata-options-before`, ...) written in the same
  CreateTags call as that case's hold and *before* the mark changes, so a crash cannot lose it; a later case
  finds the note and keeps it;
- apply is idempotent (the hold and the note are written only when missing, the mark only when not set);
  verify asks for the mark and this case's hold; rollback removes this case's hold and restores the noted
  value only when no other case's hold remains.

Races. EC2 and Auto Scaling tags have no compare-and-swap, so the order of calls does the work:
- one case is serialised by its case lease (so only one process ever writes a case's hold tag), and one
  process's steps on one target by a lock here (a case's parallel steps share its hold tag);
- a rollback deletes its own hold, *then* reads the holds again and restores only when none is left, then
  reads them once more and sets the mark again if a hold appeared meanwhile (keeping the note); an apply
  writes its hold, *then* reads the mark and sets it when it is not set. Whichever of a concurrent apply and
  rollback reads second sees the other's write, so the mark ends set while any hold exists; two rollbacks at
  once both find no hold and restore the same noted value (the same call twice).
- an apply reads the mark, the tags, the mark again and (when they had no note) the tags again, and writes
  the note only when that last read has none. A case that sets the mark writes its note first, and a rollback
  restores the value before it drops the note. So a mark set by a concurrent first hold before our second
  mark read shows its note in our second tag read (we keep that note), and with no note in sight our first
  mark read can only be wrong by seeing a mark that a rollback was about to restore, which our second read
  then shows restored: of two reads that differ, the one showing the mark not set is the value from before
  eksir, and that is noted.
What remains possible (no compare-and-swap): the last rollback reads the holds a final time, then deletes the
note; a case whose hold lands between those two calls keeps its hold without a note, and a case holding after
it (seeing a holder, no note, the mark on) notes the mark as already on, so it stays on after every case is
rolled back (the safe direction: the node stays protected; the note tag shows it). Tags read right after a
write may also lag on AWS (eventual consistency). Measured on moto (one instance, two processes cycling four
cases through apply, verify and rollback 80 times with 0-20 ms pauses, a call every 20-50 ms): the mark ended
on in each run and one verify in 80 found it off once; an incident's rollback is a person's decision,
minutes apart, not this churn.
A hold whose note went missing (a case that applied, finding the note, while the last rollback was deleting
it) falls back to the value that case's own record noted, which is the same original.
An instance or group carries at most 50 tags: a hold that would pass that is refused before anything changes.

Node isolation (isolation_holds.py) and the subnet NACL (ec2_nacl.py) use the same hold tags and order of
calls; their "mark" is which case's group or ACL the ENIs or subnet sit in, so they hand it over instead.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eksir.actions.base import ActionContext
from eksir.clients.aws import aws_call
from eksir.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    from types_boto3_autoscaling.type_defs import FilterTypeDef as AsgFilterTypeDef
    from types_boto3_autoscaling.type_defs import TagTypeDef as AsgTagTypeDef
    from types_boto3_ec2.type_defs import FilterTypeDef

HOLD_PREFIX = "eksir.io/hold/"
MAX_TAGS = 50
"""EC2 resources and Auto Scaling groups both take at most 50 user tags."""
MAX_KEY = 128
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def hold_key(case_id: str) -> str:
    """`eksir.io/hold/<case-id>`; BadInputError when the case id cannot be part of a tag key.

    eksir's own ids (`eksir-YYYYMMDD-<10 hex>`) always fit; an id given from outside is refused before
    anything changes when it has characters other than letters, digits, `.`, `_`, `-` or makes the key pass
    128.
    """
    key = f"{HOLD_PREFIX}{case_id}"
    if not _CASE_ID.match(case_id) or len(key) > MAX_KEY:
        raise BadInputError(
            f"case id {case_id!r} cannot name the tag {HOLD_PREFIX}<case-id>: it must be letters, digits, "
            f"'.', '_' or '-' (starting with a letter or digit) and the key at most {MAX_KEY} characters"
        )
    return key


def held_marks(tags: dict[str, str], case_id: str) -> set[str]:
    """The marks this case holds on the target (its hold tag's value: mark names, space-separated)."""
    return set(tags.get(f"{HOLD_PREFIX}{case_id}", "").split())


def holders(tags: dict[str, str], mark: str) -> list[str]:
    """The case ids holding `mark`, from a target's tags."""
    return sorted(
        k[len(HOLD_PREFIX) :] for k, v in tags.items() if k.startswith(HOLD_PREFIX) and mark in v.split()
    )


def target_lock(target: TagTarget) -> threading.Lock:
    """One lock per target: this process's steps on one target take turns (a worker runs several cases at
    once, and one case's steps run in parallel and share the case's hold tag)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(target.label, threading.Lock())


class TagTarget(ABC):
    """Where the holds and the note live: an instance's EC2 tags or a group's Auto Scaling tags."""

    label: str
    """A name for messages, unique per target (`instance i-...`, `Auto Scaling group ...`)."""

    @abstractmethod
    def read(self) -> dict[str, str]:
        """Every tag of the target, as key -> value."""

    @abstractmethod
    def put(self, tags: dict[str, str]) -> None:
        """Create or overwrite these tags in one call."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete these tags (absent ones are no error)."""


class Ec2Tags(TagTarget):
    """The tags of one EC2 resource (instance, subnet, ...)."""

    def __init__(self, ctx: ActionContext, resource_id: str, kind: str) -> None:
        self.ctx, self.resource_id, self.label = ctx, resource_id, f"{kind} {resource_id}"

    def read(self) -> dict[str, str]:
        filters: list[FilterTypeDef] = [{"Name": "resource-id", "Values": [self.resource_id]}]
        with aws_call(f"read the tags of {self.label}"):
            pages = self.ctx.aws("ec2").get_paginator("describe_tags").paginate(Filters=filters)
            return {t["Key"]: t["Value"] for page in pages for t in page["Tags"]}

    def put(self, tags: dict[str, str]) -> None:
        with aws_call(f"tag {self.label}"):
            self.ctx.aws("ec2").create_tags(
                Resources=[self.resource_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    def delete(self, keys: list[str]) -> None:
        with aws_call(f"untag {self.label}"):
            self.ctx.aws("ec2").delete_tags(Resources=[self.resource_id], Tags=[{"Key": k} for k in keys])


class InstanceTags(Ec2Tags):
    def __init__(self, ctx: ActionContext, instance_id: str) -> None:
        super().__init__(ctx, instance_id, "instance")


class GroupTags(TagTarget):
    def __init__(self, ctx: ActionContext, group: str) -> None:
        self.ctx, self.group, self.label = ctx, group, f"Auto Scaling group {group}"

    def read(self) -> dict[str, str]:
        filters: list[AsgFilterTypeDef] = [{"Name": "auto-scaling-group", "Values": [self.group]}]
        with aws_call(f"read the tags of {self.label}"):
            pages = self.ctx.aws("autoscaling").get_paginator("describe_tags").paginate(Filters=filters)
            return {t["Key"]: t.get("Value", "") for page in pages for t in page["Tags"]}

    def _tags(self, tags: dict[str, str]) -> list[AsgTagTypeDef]:
        return [
            {
                "ResourceId": self.group,
                "ResourceType": "auto-scaling-group",
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": False,
            }
            for k, v in tags.items()
        ]

    def put(self, tags: dict[str, str]) -> None:
        with aws_call(f"tag {self.label}"):
            self.ctx.aws("autoscaling").create_or_update_tags(Tags=self._tags(tags))

    def delete(self, keys: list[str]) -> None:
        with aws_call(f"untag {self.label}"):
            self.ctx.aws("autoscaling").delete_tags(Tags=self._tags(dict.fromkeys(keys, "")))


class AwsMark(ABC):
    """One shared mark: its name (in the tag keys), where its note lives, how to read, set and restore it."""

    name: str
    note: str
    """The tag noting the mark's value before eksir's first case."""

    @abstractmethod
    def current(self) -> str:
        """The mark's value now, as note text."""

    @abstractmethod
    def is_set(self) -> bool:
        """The mark has the value every holding case wants."""

    @abstractmethod
    def unset(self, note: str) -> bool:
        """The note text describes the mark as not set (a value no case of eksir's made)."""

    @abstractmethod
    def set(self) -> None:
        """Put the held value."""

    @abstractmethod
    def restore(self, note: str) -> None:
        """Put back the noted value."""


class BoolMark(AwsMark):
    """A mark that is an on/off attribute eksir turns on (termination or scale-in protection): the note is
    `true`/`false`, and set and restore are one write of the attribute."""

    @abstractmethod
    def _put(self, value: bool) -> None:
        """Write the attribute."""

    def current(self) -> str:
        return bool_note(self.is_set())

    def unset(self, note: str) -> bool:
        return not note_bool(note)

    def set(self) -> None:
        self._put(True)

    def restore(self, note: str) -> None:
        self._put(note_bool(note))


@dataclass(frozen=True)
class Held:
    """What an apply found and did: the note (value before eksir's first case), the value this apply read, and
    whether this apply changed the mark."""

    note: str
    seen: str
    changed: bool


def add_hold(
    target: TagTarget, tags: dict[str, str], mark: str, case_id: str, notes: dict[str, str]
) -> dict[str, str]:
    """Add `mark` to this case's hold tag and write the `notes` not yet on the target (from `tags`, read just
    before) in one call; returns what was written. RefusedError before any change when that would pass 50
    tags."""
    key, marks = hold_key(case_id), held_marks(tags, case_id)
    new = {} if mark in marks else {key: " ".join(sorted(marks | {mark}))}
    new |= {k: v for k, v in notes.items() if k not in tags}
    if len(set(tags) | set(new)) > MAX_TAGS:
        raise RefusedError(
            f"{target.label} has {len(tags)} tags: holding {mark} for case {case_id} needs {len(new)} more "
            f"and EC2/Auto Scaling allow {MAX_TAGS}; remove unused tags and run again"
        )
    if new:
        target.put(new)
    return new


def drop_hold(target: TagTarget, mark: str, case_id: str) -> None:
    """Take `mark` out of this case's hold tag (the tag goes with its last mark)."""
    tags = target.read()
    marks = held_marks(tags, case_id)
    if mark not in marks:
        return
    if marks - {mark}:
        target.put({hold_key(case_id): " ".join(sorted(marks - {mark}))})
    else:
        target.delete([hold_key(case_id)])


def hold(target: TagTarget, mark: AwsMark, case_id: str) -> Held:
    """Add this case's hold (and the note when none exists) in one tag call, then set the mark if it is not.

    Refused (RefusedError) before any change when the new tags would take the target past 50 tags.
    """
    with target_lock(target):
        first = mark.current()  # the mark before and after the tags: see the module docstring (Races)
        tags = target.read()
        after = mark.current()
        seen = first if first == after or mark.unset(first) else after
        if mark.note not in tags:
            tags = target.read()  # a first hold that set the mark after our first tag read has noted by now
        add_hold(target, tags, mark.name, case_id, notes={mark.note: seen})
        changed = not mark.is_set()
        if changed:
            mark.set()
        return Held(note=tags.get(mark.note, seen), seen=seen, changed=changed)


def held(target: TagTarget, mark: str, case_id: str) -> tuple[bool, list[str]]:
    """(this case holds `mark`, every holder) from the target's tags."""
    found = holders(target.read(), mark)
    return case_id in found, found


def release(target: TagTarget, mark: AwsMark, case_id: str, fallback: str | None) -> list[str]:
    """Remove this case's hold; the last hold to go restores the noted value (or `fallback`, this case's own
    record, when the note is gone) and drops the note. Returns the cases still holding the mark."""
    hold_key(case_id)
    with target_lock(target):
        drop_hold(target, mark.name, case_id)
        tags = target.read()
        others = holders(tags, mark.name)
        if others:
            return others
        note = tags.get(mark.note, fallback)
        if note is not None:
            mark.restore(note)
        fresh = target.read()
        others = holders(fresh, mark.name)
        if others:  # a case held it between our read and the restore: its mark stays
            mark.set()
            return others
        if mark.note in fresh:  # the fresh read: a note another last rollback dropped may be a new case's now
            target.delete([mark.note])
        return []


def bool_note(value: bool) -> str:
    return "true" if value else "false"


def note_bool(note: Any) -> bool:
    """A noted boolean; a legacy record's `previous` may be a real bool."""
    return note is True or str(note).lower() == "true"
