package zoo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHutchinsonProbesAreRademacher: FFJORD's probes are signs ±1 (so
// E[εεᵀ] = I and the trace estimate is unbiased): every entry is ±1, the
// mean is near 0, and averaging εᵀJε over the probes of a non-symmetric J
// with a large off-diagonal sum recovers tr J — probes of {0, 1} would give
// (ΣJ + tr J)/4, far from it; probes of other scales would scale it.
func TestHutchinsonProbesAreRademacher(t *testing.T) {
	const n, d = 4000, 5
	x := tensors.FromFlatDataAndDimensions(make([]float64, d), 1, d)
	eps := tensors.MustCopyFlatData[float64](rademacher(rand.New(rand.NewPCG(3, 4)), x, n, d))
	require.Len(t, eps, n*d)
	mean := 0.0
	for _, e := range eps {
		require.True(t, e == 1 || e == -1, "probe entry %v", e)
		mean += e / float64(n*d)
	}
	assert.InDelta(t, 0, mean, 0.03)
	// J non-symmetric, tr J = 3.5, ΣJ = 21.5.
	j := [d][d]float64{
		{1, 2, 0, 1, 3},
		{-1, 0.5, 4, 0, 0},
		{0, 1, -2, 2, 1},
		{3, 0, 1, 3, -1},
		{0, 2, 0, -1, 1},
	}
	trace, est := 0.0, 0.0
	for i := range d {
		trace += j[i][i]
	}
	for s := range n {
		e := eps[s*d : (s+1)*d]
		q := 0.0
		for a := range d {
			for b := range d {
				q += e[a] * j[a][b] * e[b]
			}
		}
		est += q / n
	}
	// Var εᵀJε = Σ_{a≠b} (J_ab + J_ba)²/2·… ≈ 60 here: the mean of 4000 has sd ≈ 0.12.
	assert.InDelta(t, trace, est, 0.5, "Hutchinson mean %v, tr J %v", est, trace)
	assert.False(t, math.IsNaN(est))
}
