"""Recovery (playbook Part 4): undo what the attacker created, changed or deleted, from the case record.

The plan is built from the hunt result stored in the case (who did what, with the logged request and response)
and from the containment records (which pod is isolated, which snapshots are verified). Everything the
attacker created is preserved as evidence first, then removed by an approvable, verifiable action; changes
with a known before-state are restored; the rest becomes a worklist with the exact before/after.
"""
