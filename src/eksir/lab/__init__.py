"""The local lab: a real kube-apiserver + etcd (built from the official Go modules) on loopback.

Why a real control plane instead of a fake: RBAC, Pod Security Admission, request-header authentication and
audit logging are exactly the behaviours an incident responder relies on, and only the real server has them.
The lab runs no kubelet, scheduler or controller-manager: pods stay Pending unless created with
`spec.nodeName`, namespaces stay Terminating after delete and garbage collection never runs.
"""
