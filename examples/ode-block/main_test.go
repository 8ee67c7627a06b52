package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExampleRuns: a short run trains both optimizers past chance, prints
// the table and writes the PNGs.
func TestExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	var out strings.Builder
	dir := t.TempDir()
	outs, err := run(config{iters: 40, batch: 64, width: 8, evalEvery: 10, adamLR: 0.01, snoptLR: 0.02, seed: 1, out: dir}, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "| snopt | 0.02 |")
	for _, o := range outs {
		assert.Greater(t, o.finalAcc, 0.55, "%s beats chance", o.name)
		assert.Less(t, o.run.Records[len(o.run.Records)-1].Loss, o.run.Records[0].Loss, "%s lowers the loss", o.name)
	}
	for _, f := range []string{"ode-block-iters.png", "ode-block-seconds.png"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(5000))
	}
}
