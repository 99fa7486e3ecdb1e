"""Fleet mode's infrastructure as data: the security account's CloudFormation (`eksir deploy template`).

Why a package of its own: the template is neither an action nor a command. It reads the finding types eksir
handles (models) and the policy eksir derives from its actions (actions.permissions), and builds plain dicts
that the command dumps as JSON or YAML. Nothing here calls AWS.
"""
