"""`eksir doctor`: before the incident, prove that eksir can do its job in this account and cluster.

Each check reads (never changes) one thing a response depends on, and says pass, fail (with the fix) or
skip (could not tell, and why). Checks run against the same client factories the response uses, so a pass
here means the response's own path works.
"""
