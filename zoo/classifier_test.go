package zoo

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/snoptx"
)

func TestClassifierSmoke(t *testing.T) {
	train, _, err := LoadMNIST("../testdata/mnist-small")
	require.NoError(t, err)
	ctx := context.New()
	m, err := NewClassifier(testutil.Backend(), ctx, ClassifierConfig{Width: 8})
	require.NoError(t, err)
	b := firstBatch(t, train, 32)
	res, err := m.Step(b, true)
	require.NoError(t, err)
	t.Logf("loss %.4f acc %.3f nfe %d/%d grads %d stats %d", res.Loss, res.Metric, res.NFEForward, res.NFEBackward, len(res.Grads), len(res.Stats))
	for _, s := range res.Stats {
		t.Logf("%s %s A%v B%v loc %d", s.Layer, s.Weights, s.A.Shape(), s.B.Shape(), s.Locations)
	}
	opt, err := snoptx.SNOpt().Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	require.NoError(t, st.Step(res.Grads, res.Stats, b.Size))
}

// TestClassifierODEParams: the ODE block's variables are exactly the
// parameters whose gradient the adjoint pass returns — a proper subset of
// Params, without the feature extractor and the head.
func TestClassifierODEParams(t *testing.T) {
	train, _, err := LoadMNIST("../testdata/mnist-small")
	require.NoError(t, err)
	ctx := context.New()
	m, err := NewClassifier(testutil.Backend(), ctx, ClassifierConfig{Width: 4})
	require.NoError(t, err)
	_, err = m.Step(firstBatch(t, train, 8), false)
	require.NoError(t, err)
	all := map[string]bool{}
	for _, v := range m.Params() {
		all[v.ScopeAndName()] = true
	}
	ode := m.ODEParams()
	require.NotEmpty(t, ode)
	require.Less(t, len(ode), len(all))
	for _, v := range ode {
		name := v.ScopeAndName()
		require.True(t, all[name], name)
		require.True(t, strings.HasPrefix(name, "/ode/"), name)
	}
	n := 0
	for name := range all {
		if strings.HasPrefix(name, "/ode/") {
			n++
		}
	}
	require.Equal(t, n, len(ode), "every /ode/ parameter is listed")
}
