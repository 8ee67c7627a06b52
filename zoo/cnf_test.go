package zoo

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
)

func TestCNFTrainsOnCircles(t *testing.T) {
	ctx := context.New()
	m, err := NewCNF(testutil.Backend(), ctx, CNFConfig{Width: 16, Hidden: 8, T1: 2,
		Solver: &odeint.Options{RTol: 1e-4, ATol: 1e-5}, GridIntervals: 10})
	require.NoError(t, err)
	data := NewCircles(1)
	test := circles(t, data, 256)
	first, err := m.Step(circles(t, data, 64), true)
	require.NoError(t, err)
	require.NotEmpty(t, first.Stats)
	opt, err := snoptx.SNOpt().LearningRate(0.05).RefreshEvery(5).Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	before, _, err := m.Evaluate(test)
	require.NoError(t, err)
	for range 15 {
		stats := st.NeedsStats()
		res, err := m.Step(circles(t, data, 64), stats)
		require.NoError(t, err)
		if !stats {
			res.Stats = nil
		}
		require.NoError(t, st.Step(res.Grads, res.Stats, 64))
	}
	after, _, err := m.Evaluate(test)
	require.NoError(t, err)
	t.Logf("test NLL %.4f → %.4f", before, after)
	assert.Less(t, after, before)
}

// TestCNFLogDensityAveragesToTheLoss: the per-point log-densities average to
// minus the batch NLL.
func TestCNFLogDensityAveragesToTheLoss(t *testing.T) {
	m, err := NewCNF(testutil.Backend(), context.New(), CNFConfig{Width: 8, Hidden: 4, T1: 1,
		Solver: &odeint.Options{RTol: 1e-5, ATol: 1e-6}})
	require.NoError(t, err)
	b := circles(t, NewCircles(2), 12)
	loss, _, err := m.Evaluate(b)
	require.NoError(t, err)
	lp, err := m.LogDensity(b)
	require.NoError(t, err)
	require.Len(t, lp, 12)
	mean := 0.0
	for _, v := range lp {
		mean += v / 12
	}
	assert.InDelta(t, -loss, mean, 1e-9)
	assert.NotEqual(t, lp[0], lp[1])
}
