package zoo

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
)

func optimizerFor(t *testing.T, name string, lr float64) snoptx.Optimizer {
	var opt snoptx.Optimizer
	var err error
	switch name {
	case "adam":
		opt, err = snoptx.Adam(lr, 0)
	case "sgd":
		opt, err = snoptx.SGD().LearningRate(lr).Done()
	case "snopt":
		opt, err = snoptx.SNOpt().LearningRate(lr).RefreshEvery(3).Done()
	}
	require.NoError(t, err)
	return opt
}

// trainFixed trains on one fixed batch and returns its loss before and after.
func trainFixed(t *testing.T, m Model, ctx *context.Context, opt snoptx.Optimizer, b *Batch, iters int) (float64, float64) {
	first, err := m.Step(b, false) // creates the variables
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	for range iters {
		stats := st.NeedsStats()
		res, err := m.Step(b, stats)
		require.NoError(t, err)
		if !stats {
			res.Stats = nil
		}
		require.NoError(t, st.Step(res.Grads, res.Stats, b.Size))
	}
	after, _, err := m.Evaluate(b)
	require.NoError(t, err)
	return first.Loss, after
}

// TestModelsTrainWithEveryOptimizer: on the testdata fixtures, each model's
// loss decreases under Adam, SGD and SNOpt.
func TestModelsTrainWithEveryOptimizer(t *testing.T) {
	train, _, err := LoadMNIST("../testdata/mnist-small")
	require.NoError(t, err)
	img, err := ImageBatch(train, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31})
	require.NoError(t, err)
	circ := circles(t, NewCircles(3), 64)
	lrs := map[string]map[string]float64{
		"classifier": {"adam": 3e-3, "sgd": 0.05, "snopt": 0.01},
		"cnf":        {"adam": 1e-2, "sgd": 0.1, "snopt": 0.05},
	}
	for _, model := range []string{"classifier", "cnf"} {
		for _, name := range []string{"adam", "sgd", "snopt"} {
			t.Run(fmt.Sprintf("%s/%s", model, name), func(t *testing.T) {
				ctx := context.New()
				_ = ctx.SetRNGStateFromSeed(5)
				var m Model
				var b *Batch
				if model == "classifier" {
					c, err := NewClassifier(testutil.Backend(), ctx, ClassifierConfig{Width: 6, GridIntervals: 8})
					require.NoError(t, err)
					m, b = c, img
				} else {
					c, err := NewCNF(testutil.Backend(), ctx, CNFConfig{Width: 16, Hidden: 8, T1: 2, GridIntervals: 8,
						Solver: &odeint.Options{RTol: 1e-4, ATol: 1e-5}})
					require.NoError(t, err)
					m, b = c, circ
				}
				before, after := trainFixed(t, m, ctx, optimizerFor(t, name, lrs[model][name]), b, 6)
				t.Logf("%s loss %.4f → %.4f", m.Name(), before, after)
				assert.Less(t, after, before)
			})
		}
	}
}
