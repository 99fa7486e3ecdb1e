"""The fleet worker (`eksir serve`): SQS in, cases out, through the same engine as `eksir respond`.

`intake.py` sorts a message (a finding, a continuation, or a reject), `worker.py` is the loop (long poll,
heartbeat, delete after the case records the outcome, SIGTERM), `metrics.py` the health line and the
Prometheus endpoint, `records.py` the fleet's own logs beside the cases (rejects, closed-case repeats).
What a finding does to a case is injected (`Handler`), so this package knows queues, not playbooks.
"""
