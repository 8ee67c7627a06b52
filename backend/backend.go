// Package backend creates the GoMLX backend used by snopt-go.
//
// The embedded default is GoMLX's pure-Go backend ("go", simplego) configured
// with parallelism=0: its default parallel mode can deadlock on graphs with
// several matrix products side by side, and on two cores the inline mode was
// the fastest. Nothing here needs cgo or downloads anything.
//
// The XLA/PJRT backend (GPU) is opt-in: build with `-tags xla` and set
// GOMLX_BACKEND, for example
//
//	GOMLX_BACKEND=xla:/abs/path/to/pjrt_c_api_cuda_plugin.so go run -tags xla ./cmd/odedemo
//
// Builds with the xla tag set GOMLX_NO_AUTO_INSTALL=1 (unless it is already
// set), so a missing plugin is reported as an error instead of triggering a
// download.
package backend

import (
	"os"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // registers the "go" backend
	"github.com/pkg/errors"
)

// DefaultConfig is the backend configuration used when GOMLX_BACKEND is unset:
// the pure-Go backend with ops executed inline.
const DefaultConfig = "go:ops_sequential"

// EnvVar is the environment variable that overrides DefaultConfig.
const EnvVar = backends.ConfigEnvVar

// New returns the backend named by $GOMLX_BACKEND, or DefaultConfig when it is
// unset. A configuration naming a backend that is not linked in (for example
// "xla" without the xla build tag) returns an error that says so.
func New() (backends.Backend, error) {
	config := os.Getenv(EnvVar)
	if config == "" {
		config = DefaultConfig
	}
	return NewWithConfig(config)
}

// NewWithConfig returns the backend for config ("name" or "name:options",
// as GoMLX's backends.NewWithConfig takes it).
func NewWithConfig(config string) (backends.Backend, error) {
	name, _, _ := strings.Cut(config, ":")
	if !slices.Contains(backends.List(), name) {
		return nil, errors.Errorf("backend: %q is not linked into this binary (available: %v); "+
			"the XLA backend needs the build tag `xla`", name, backends.List())
	}
	b, err := backends.NewWithConfig(config)
	if err != nil {
		return nil, errors.WithMessagef(err, "backend: creating %q", config)
	}
	return b, nil
}
