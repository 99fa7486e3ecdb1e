// Command kubectl is the upstream Kubernetes CLI, built unchanged from k8s.io/kubectl (the same main as
// k8s.io/kubernetes/cmd/kubectl), version-matched to the lab's kube-apiserver.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
