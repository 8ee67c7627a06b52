package safebackend

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModeReadsSimplegosExecutor: the mode read back is the one each
// configuration sets (so a change of simplego's layout fails here).
func TestModeReadsSimplegosExecutor(t *testing.T) {
	for config, want := range map[string]string{"go": "dynamic", "go:ops_parallel": "parallel", "go:ops_sequential": "sequential"} {
		b, err := backends.NewWithConfig(config)
		require.NoError(t, err)
		assert.Equal(t, want, Mode(b), config)
		if want == "sequential" {
			assert.NoError(t, Check(b), config)
		} else {
			assert.ErrorContains(t, Check(b), "go:ops_sequential", config)
		}
		b.Finalize()
	}
	assert.Equal(t, "", Mode(nil))
	assert.NoError(t, Check(nil))
}
