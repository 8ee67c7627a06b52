// Package testutil holds helpers shared by the project's tests: a simplego
// backend built directly (GoMLX's graphtest helpers try to download XLA).
package testutil

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/tensors"

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

var (
	plainOnce sync.Once
	plain     backends.Backend
	plainErr  error
)

// PlainBackend returns one shared pure-Go backend without the project's
// CPU engine (simplego's own kernels), for tests of what runs there.
func PlainBackend() backends.Backend {
	plainOnce.Do(func() { plain, plainErr = simplego.New("ops_sequential") })
	if plainErr != nil {
		panic(plainErr)
	}
	return plain
}

// RandN returns a float64 tensor of the given dimensions with standard
// normal entries drawn from rng.
func RandN(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = rng.NormFloat64()
	}
	return tensors.FromFlatDataAndDimensions(vals, dims...)
}

// RandMat returns an [r, c] matrix with standard normal entries drawn from
// rng.
func RandMat(rng *rand.Rand, r, c int) [][]float64 {
	m := make([][]float64, r)
	for i := range m {
		m[i] = make([]float64, c)
		for j := range m[i] {
			m[i][j] = rng.NormFloat64()
		}
	}
	return m
}

// Float64s copies a float64 tensor's values.
func Float64s(t testing.TB, x *tensors.Tensor) []float64 {
	t.Helper()
	v, err := tensors.CopyFlatData[float64](x)
	if err != nil {
		t.Fatalf("reading tensor: %v", err)
	}
	return v
}
