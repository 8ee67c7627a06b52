package adjointx_test

import (
	"errors"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/field"
)

// TestGoMLXDefaultBackendIsRefused: a block on GoMLX's own default backend
// (simplego with its parallel op executor, which deadlocks on the adjoint's
// graphs) is ErrUnsafeBackend naming the fix, at construction — never a
// hang; the project's backend.New() and "go:ops_sequential" are accepted.
func TestGoMLXDefaultBackendIsRefused(t *testing.T) {
	f := field.NewSequential(&field.Linear{Name: "l0", Out: 3})
	for _, config := range []string{"go", "go:ops_parallel"} {
		b, err := backends.NewWithConfig(config)
		require.NoError(t, err)
		_, err = adjointx.NewBlock(b, context.New(), f, nil)
		assert.True(t, errors.Is(err, adjointx.ErrUnsafeBackend), "%s: %v", config, err)
		assert.ErrorContains(t, err, "backend.New()")
		assert.ErrorContains(t, err, "go:ops_sequential")
		b.Finalize()
	}
	t.Setenv(backends.ConfigEnvVar, "")
	b, err := backends.New() // GoMLX's default, as a GoMLX user gets it
	require.NoError(t, err)
	_, err = adjointx.NewBlock(b, context.New(), f, nil)
	assert.ErrorIs(t, err, adjointx.ErrUnsafeBackend)
	ours, err := backend.New()
	require.NoError(t, err)
	_, err = adjointx.NewBlock(ours, context.New(), f, nil)
	assert.NoError(t, err)
	seq, err := backends.NewWithConfig("go:ops_sequential")
	require.NoError(t, err)
	_, err = adjointx.NewBlock(seq, context.New(), f, nil)
	assert.NoError(t, err)
}
