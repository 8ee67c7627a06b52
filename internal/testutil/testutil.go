// Package testutil holds helpers shared by the project's tests: a simplego
// backend built directly (GoMLX's graphtest helpers try to download XLA).
package testutil

import (
	"sync"

	"github.com/gomlx/gomlx/backends"

	"github.com/snopt-go/snopt/backend"
)

var (
	once    sync.Once
	shared  backends.Backend
	initErr error
)

// Backend returns one shared backend for tests, configured as the library's
// default (pure Go, inline ops) unless $GOMLX_BACKEND names another.
func Backend() backends.Backend {
	once.Do(func() { shared, initErr = backend.New() })
	if initErr != nil {
		panic(initErr)
	}
	return shared
}
