//go:build tools

// Package tools pins the Kubernetes commands the Edict test suite builds, so that
// `go mod tidy` keeps their dependencies in go.mod and go.sum. Nothing imports it;
// engine/testing/controlplane/build.py runs `go build` on the listed packages.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
