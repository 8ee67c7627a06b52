package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExampleRuns: a few seconds per optimizer on the small MNIST fixture
// run both through train.Trainer, print the table and write the PNG.
func TestExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two CNNs")
	}
	var out strings.Builder
	dir := t.TempDir()
	outs, err := run(config{budget: 2 * time.Second, batch: 16, evalEvery: 5, adamLR: 1e-3, snoptLR: 0.05,
		data: "../../testdata/mnist-small", out: dir}, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "| adam | 0.001 |")
	assert.Contains(t, out.String(), "| snopt | 0.05 |")
	for _, o := range outs {
		assert.Greater(t, o.steps, 5, o.name)
	}
	st, err := os.Stat(filepath.Join(dir, "mnist-cnn.png"))
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(5000))
}
