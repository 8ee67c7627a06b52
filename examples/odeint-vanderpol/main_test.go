package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExampleRuns: a shorter run of the example prints its tables, agrees
// with its tight reference to about the tolerance, and writes its PNG.
func TestExampleRuns(t *testing.T) {
	var out strings.Builder
	res, err := run(config{mu: 10, t1: 12, tol: 1e-6, outputs: 80, out: t.TempDir()}, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "| tol 1e-06 |")
	assert.Less(t, res.maxErr, 1e-3, "dense output at tol 1e-6 vs the 1e-11 reference")
	assert.Greater(t, res.stats.Accepted, 50, "the fast jumps force many steps")
	st, err := os.Stat(res.png)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(10_000))
}
