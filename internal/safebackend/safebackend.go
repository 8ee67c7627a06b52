// Package safebackend tells whether a GoMLX backend can run the adjoint's
// graphs: simplego, GoMLX's pure-Go backend, deadlocks on them when its op
// executor may run ops in parallel — its default (GoMLX's backends.New(),
// GOMLX_BACKEND=go) and ops_parallel. With ops_sequential (what
// github.com/snopt-go/snopt/backend.New configures) it runs them.
package safebackend

import (
	"fmt"
	"reflect"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// simplego's opsExecutionType values (backends/simplego/exec.go):
// dynamic (parallel when one graph runs), parallel, sequential.
const opsSequential = 2

// Fix is what a caller should do instead, for error messages.
const Fix = `create the backend with github.com/snopt-go/snopt/backend.New() (pure Go, ops run sequentially), ` +
	`or backends.NewWithConfig("go:ops_sequential"), or set GOMLX_BACKEND=go:ops_sequential`

// Mode reads simplego's op execution mode of b: "sequential", "parallel",
// "dynamic", or "" when b is not simplego or its layout is not the one this
// package knows (then nothing can be said).
func Mode(b backends.Backend) string {
	sb, ok := b.(*simplego.Backend)
	if !ok || sb == nil {
		return ""
	}
	f := reflect.ValueOf(sb).Elem().FieldByName("opsExecutionType")
	if !f.IsValid() || f.Kind() != reflect.Int {
		return ""
	}
	switch f.Int() {
	case 0:
		return "dynamic"
	case 1:
		return "parallel"
	case opsSequential:
		return "sequential"
	}
	return ""
}

// Check returns nil for a backend that runs the adjoint's graphs, and an
// error naming the fix for simplego with a parallel op executor.
func Check(b backends.Backend) error {
	switch Mode(b) {
	case "dynamic", "parallel":
		return fmt.Errorf("the pure-Go backend %q runs ops in parallel (GoMLX's default for backends.New() and GOMLX_BACKEND=go), "+
			"which deadlocks on the adjoint's graphs: %s", b.Name(), Fix)
	}
	return nil
}
