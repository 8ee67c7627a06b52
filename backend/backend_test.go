package backend

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultIsPureGo(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New()
	require.NoError(t, err)
	assert.Equal(t, "SimpleGo (go)", b.Name())
}

func TestUnlinkedBackendIsAnError(t *testing.T) {
	var err error
	assert.NotPanics(t, func() { _, err = NewWithConfig("nosuchbackend:foo") })
	assert.ErrorContains(t, err, "not linked")
	assert.ErrorIs(t, err, ErrConfig)
}

func TestBadSimpleGoOptionIsAnError(t *testing.T) {
	_, err := NewWithConfig("go:nosuchoption")
	assert.Error(t, err)
}

// TestPureGoAlwaysRunsOpsSequentially: every "go" configuration gets
// ops_sequential (with a notice when it was missing); ops_parallel, which
// deadlocks on adjoint graphs, is refused; other backends pass through.
func TestPureGoAlwaysRunsOpsSequentially(t *testing.T) {
	for in, want := range map[string]string{
		"go":                                "go:ops_sequential",
		"go:":                               "go:ops_sequential",
		"go:parallelism=0":                  "go:parallelism=0,ops_sequential",
		"go:dotgeneral_small,parallelism=2": "go:dotgeneral_small,parallelism=2,ops_sequential",
		"go:ops_sequential":                 "go:ops_sequential",
		"go:parallelism=1,ops_sequential":   "go:parallelism=1,ops_sequential",
		"xla:/abs/plugin.so":                "xla:/abs/plugin.so",
	} {
		got, notice, err := Safe(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, got != in, notice != "", "%s: a notice exactly when the configuration changed", in)
	}
	_, _, err := Safe("go:ops_parallel")
	assert.ErrorIs(t, err, ErrUnsafeConfig)
	t.Setenv(EnvVar, "go")
	b, err := New()
	require.NoError(t, err)
	assert.Equal(t, "SimpleGo (go)", b.Name())
}

// TestParallelismNoticeGoesToStderr: the notice simplego prints for a
// parallelism=N option does not reach standard output.
func TestParallelismNoticeGoesToStderr(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = w
	b, err := NewWithConfig("go:parallelism=2")
	os.Stdout = saved
	require.NoError(t, w.Close())
	require.NoError(t, err)
	b.Finalize()
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Empty(t, string(out), "standard output")
}
