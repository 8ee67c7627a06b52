package datasets

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStandInDensityIsNormalisedAndMatchesItsSamples: in 2-D the exact
// density integrates to 1 on a fine grid (a missing Jacobian term or a
// wrong normaliser would show), and the samples' mean matches the density's
// mean L·E[u] + c.
func TestStandInDensityIsNormalisedAndMatchesItsSamples(t *testing.T) {
	d, err := NewStandInDensity(2, 7)
	require.NoError(t, err)
	logProb := func(x []float64) float64 {
		lp, err := d.LogProb(x)
		require.NoError(t, err)
		return lp
	}
	// ∫ p over a wide box by the midpoint rule.
	const lo, hi, n = -25.0, 25.0, 1000
	h := (hi - lo) / n
	total := 0.0
	for i := range n {
		for j := range n {
			total += math.Exp(logProb([]float64{lo + (float64(i)+0.5)*h, lo + (float64(j)+0.5)*h})) * h * h
		}
	}
	assert.InDelta(t, 1, total, 1e-3)

	m, err := d.Sample(20000, rand.New(rand.NewPCG(1, 2)))
	require.NoError(t, err)
	// Mean of the samples vs L·E[u] + c.
	eu := make([]float64, 2)
	for k, w := range d.weights {
		for j := range eu {
			eu[j] += w * d.means[k][j]
		}
	}
	for i := range 2 {
		want := d.c[i]
		for j := 0; j <= i; j++ {
			want += d.l[i][j] * eu[j]
		}
		got := 0.0
		for r := range m.Rows {
			got += m.X[r*2+i] / float64(m.Rows)
		}
		assert.InDelta(t, want, got, 0.1, "mean of dimension %d", i)
	}
}

// TestTabularStandInShapes: the sets have the spec's shapes, are
// deterministic for a seed and differ between splits.
func TestTabularStandInShapes(t *testing.T) {
	spec := TabularSpec{Name: "gas", Dim: 8, Train: 50, Val: 10, Test: 20}
	train, val, test, d, err := TabularStandIn(spec, 3)
	require.NoError(t, err)
	assert.Equal(t, []int{50, 8}, []int{train.Rows, train.Cols})
	assert.Equal(t, 10, val.Rows)
	assert.Equal(t, 20, test.Rows)
	again, _, _, _, _ := TabularStandIn(spec, 3)
	assert.Equal(t, train.X, again.X)
	assert.NotEqual(t, train.X[:8], test.X[:8])
	nll := 0.0
	for r := range test.Rows {
		lp, err := d.LogProb(test.X[r*8 : (r+1)*8])
		require.NoError(t, err)
		require.False(t, math.IsNaN(lp) || math.IsInf(lp, 0))
		nll -= lp / float64(test.Rows)
	}
	t.Logf("true test NLL %.3f nats", nll)
	assert.Equal(t, 8, Tabular["gas"].Dim)
	assert.Equal(t, 43, Tabular["miniboone"].Dim)
}

// TestStandardizeShiftsLogDensity: after Standardize the training columns
// have mean 0 and variance 1, the other splits move by the training
// statistics, and the returned log-scale is Σ log σ_j of the generating
// Gaussian (the shift between raw and standardized log-densities).
func TestStandardizeShiftsLogDensity(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const n = 20000
	scales := []float64{0.5, 3, 1.7}
	m := &Matrix{Name: "train", Rows: n, Cols: 3}
	for range n {
		for _, s := range scales {
			m.X = append(m.X, 2+s*r.NormFloat64())
		}
	}
	test := &Matrix{Name: "test", Rows: 1, Cols: 3, X: []float64{2.5, 2, 0}}
	raw := append([]float64{}, test.X...)
	logScale, err := m.Standardize(test)
	require.NoError(t, err)
	want := 0.0
	for _, s := range scales {
		want += math.Log(s)
	}
	assert.InDelta(t, want, logScale, 0.02)
	for j := range 3 {
		mean, sq := 0.0, 0.0
		for i := range n {
			mean += m.X[i*3+j] / n
			sq += m.X[i*3+j] * m.X[i*3+j] / n
		}
		assert.InDelta(t, 0, mean, 1e-9)
		assert.InDelta(t, 1, sq, 1e-3)
		// The test row moved by the training statistics.
		assert.InDelta(t, (raw[j]-2)/scales[j], test.X[j], 0.05)
	}
	_, err = (&Matrix{Name: "c", Rows: 3, Cols: 1, X: []float64{1, 1, 1}}).Standardize()
	assert.ErrorContains(t, err, "constant")
	_, err = m.Standardize(&Matrix{Name: "bad", Rows: 1, Cols: 2, X: []float64{1, 2}})
	assert.ErrorContains(t, err, "columns")
}

// TestStandardizeUsesTheSampleStd: on a 3-row column the scale is the sample
// standard deviation (n − 1), computed by hand, and the standardized column
// is (x − mean)/σ exactly.
func TestStandardizeUsesTheSampleStd(t *testing.T) {
	m := &Matrix{Name: "m", Rows: 3, Cols: 2, X: []float64{1, 10, 2, 10, 6, 13}}
	logScale, err := m.Standardize()
	require.NoError(t, err)
	// Column 0: mean 3, squared deviations 4+1+9 = 14, σ = √7; column 1: mean 11, 1+1+4 = 6, σ = √3.
	assert.InDelta(t, math.Log(math.Sqrt(7))+math.Log(math.Sqrt(3)), logScale, 1e-12)
	want := []float64{-2 / math.Sqrt(7), -1 / math.Sqrt(3), -1 / math.Sqrt(7), -1 / math.Sqrt(3), 3 / math.Sqrt(7), 2 / math.Sqrt(3)}
	assert.InDeltaSlice(t, want, m.X, 1e-12)
}
