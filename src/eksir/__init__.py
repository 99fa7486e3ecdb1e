"""eksir: incident response for a privileged container launched on Amazon EKS.

The package turns the AWS playbook for GuardDuty's PrivilegedContainer findings into steps a responder
can plan, approve, apply, verify and roll back, with every action recorded in a hash-chained case bundle.
"""

__version__ = "0.1.0"
