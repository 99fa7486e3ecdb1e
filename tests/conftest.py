"""Test-suite wide plugins: the lab fixtures (real kube-apiserver + etcd)."""

pytest_plugins = ["eksir.lab.pytest_plugin"]
