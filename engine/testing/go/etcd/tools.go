//go:build tools

// Package tools pins etcd's server for the Edict test suite, so that `go mod tidy`
// keeps its dependencies in go.mod and go.sum. Nothing imports it;
// engine/testing/controlplane/build.py runs `go build go.etcd.io/etcd/server/v3`
// (whose main package only calls etcdmain).
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
)
