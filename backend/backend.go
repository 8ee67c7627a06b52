// Package backend creates the GoMLX backend used by snopt-go.
//
// For the embedded default, New also enables the project's CPU engine
// (engine.go): float32 matrix products, element-wise functions and data
// movement run on package kernels instead of simplego's own executors.
// SNOPT_KERNELS=off turns it off; "go", "avx2" or "avx512" force a kernel
// level. EngineOn and Describe say what a backend runs; docs/engine.md has
// the design.
//
// The embedded default is GoMLX's pure-Go backend ("go", simplego) with ops
// executed sequentially (ops_sequential): its parallel op executor can
// deadlock on graphs with several matrix products side by side (plain "go"
// hangs ordinary adjoint calls), and on two cores sequential ops were the
// fastest. Every configuration of the "go" backend is given ops_sequential
// (with a one-line notice when the caller's did not say it), and
// ops_parallel is refused. Nothing here needs cgo or downloads anything.
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
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

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

// ErrUnsafeConfig reports a backend configuration known to deadlock.
var ErrUnsafeConfig = errors.New("backend: unsafe configuration")

// ErrConfig reports a backend or engine setting that cannot be honoured: a
// backend not linked into the binary, an unknown SNOPT_KERNELS value.
var ErrConfig = errors.New("backend: bad configuration")

// Safe returns the configuration New uses for config: for the pure-Go
// backend, config with ops_sequential added when missing (and a notice
// saying so); ErrUnsafeConfig for ops_parallel. Other backends pass through.
func Safe(config string) (safe, notice string, err error) {
	name, opts, _ := strings.Cut(config, ":")
	if name != "go" {
		return config, "", nil
	}
	var parts []string
	for _, p := range strings.Split(opts, ",") {
		switch p {
		case "":
			continue
		case "ops_parallel":
			return "", "", errors.Wrapf(ErrUnsafeConfig, "%q: simplego's parallel op executor deadlocks on the adjoint's graphs; "+
				"use ops_sequential (the default here), or parallelism=N to bound its other workers", config)
		case "ops_sequential":
			return config, "", nil
		}
		parts = append(parts, p)
	}
	safe = "go:" + strings.Join(append(parts, "ops_sequential"), ",")
	return safe, fmt.Sprintf("backend: %s=%q runs as %q (simplego's parallel op executor deadlocks on adjoint graphs)", EnvVar, config, safe), nil
}

// NewWithConfig returns the backend for config ("name" or "name:options",
// as GoMLX's backends.NewWithConfig takes it), made safe by Safe; its
// notice, if any, goes to standard error.
func NewWithConfig(config string) (backends.Backend, error) {
	config, notice, err := Safe(config)
	if err != nil {
		return nil, err
	}
	if notice != "" {
		fmt.Fprintln(os.Stderr, notice)
	}
	name, _, _ := strings.Cut(config, ":")
	if !slices.Contains(backends.List(), name) {
		return nil, errors.Wrapf(ErrConfig, "%q is not linked into this binary (available: %v); "+
			"the XLA backend needs the build tag `xla`", name, backends.List())
	}
	b, err := newQuietly(config)
	if err != nil {
		return nil, errors.WithMessagef(err, "backend: creating %q", config)
	}
	notice, err = enable(b)
	if err != nil {
		b.Finalize()
		return nil, err
	}
	if notice != "" {
		fmt.Fprintln(os.Stderr, notice)
	}
	return b, nil
}

// stdoutMu serialises newQuietly's swap of os.Stdout.
var stdoutMu sync.Mutex

// newQuietly is backends.NewWithConfig with whatever the backend prints
// while it is created sent to standard error: simplego announces a
// parallelism=N option on standard output, where it would mix with a
// program's results (cmd/bench's tables). Diagnostics belong on stderr.
func newQuietly(config string) (backends.Backend, error) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	saved := os.Stdout
	os.Stdout = os.Stderr
	defer func() { os.Stdout = saved }()
	return backends.NewWithConfig(config)
}
