package zoo

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
)

// TestHybridGradientsMatchFiniteDifferences: the hybrid model's gradient
// (GoMLX autodiff in the stem and head, the adjoint in the ODE block) of
// the loss, in float64 on 8×8 images, equals central differences for
// entries of a stem, two ODE and a head variable.
func TestHybridGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	ctx := context.New()
	require.NoError(t, ctx.SetRNGStateFromSeed(5))
	// A fixed RK4 grid keeps the loss a smooth function of the parameters
	// (adaptive step choices add noise of the order of the tolerance, which
	// finite differences divide by h).
	m, err := NewHybrid(testutil.Backend(), ctx, ClassifierConfig{Width: 3, Classes: 4,
		Solver: &odeint.Options{Method: odeint.RK4, Step: 0.01}})
	require.NoError(t, err)
	x := make([]float64, 3*8*8)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	b := &Batch{X: tensors.FromFlatDataAndDimensions(x, 3, 8, 8, 1), Labels: tensors.FromValue([]int32{0, 3, 1}), Size: 3}
	res, err := m.Step(b, false)
	require.NoError(t, err)
	require.Len(t, m.Params(), 9, "3 stem convolutions, 2 ODE convolutions with biases, the head's Dense with its bias")
	for _, name := range []string{"/stem/c2/conv/weights", "/ode/conv1/weights", "/ode/conv2/biases", "/head/fc/dense/weights"} {
		var v *context.Variable
		for _, p := range m.Params() {
			if p.ScopeAndName() == name {
				v = p
			}
		}
		require.NotNil(t, v, name)
		n := v.Shape().Size()
		assertGradientMatchesFD(t, m, b, v, res.Grads[name], []int{0, n / 2, n - 1}, 1e-6)
	}
}

// TestHybridTrainsWithOneSNOpt: on the MNIST fixture, one SNOpt instance
// through trainer.Run preconditions every layer of the hybrid model — the
// three GoMLX convolutions of the stem, the ODE block's two and the head's
// Dense — and the loss falls.
func TestHybridTrainsWithOneSNOpt(t *testing.T) {
	train, _, err := LoadMNIST("../testdata/mnist-small")
	require.NoError(t, err)
	ctx := context.New()
	require.NoError(t, ctx.SetRNGStateFromSeed(9))
	m, err := NewHybrid(testutil.Backend(), ctx, ClassifierConfig{Width: 4})
	require.NoError(t, err)
	batches, err := NewImageBatcher(train, 32, 1)
	require.NoError(t, err)
	first, err := m.Step(batches.Next(), true)
	require.NoError(t, err)
	var layers []string
	for _, s := range first.Stats {
		layers = append(layers, s.Layer)
	}
	assert.ElementsMatch(t, []string{"/head/fc/dense", "/ode/conv2", "/ode/conv1", "/stem/c3/conv", "/stem/c2/conv", "/stem/c1/conv"}, layers)
	opt, err := snoptx.SNOpt().LearningRate(0.01).RefreshEvery(4).Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	next := func() (*Batch, error) { return batches.Next(), nil }
	res, err := trainer.Run(m, st, next, nil, trainer.Config{Iterations: 12})
	require.NoError(t, err)
	head, tail := lossFalls(res.Records, 3)
	t.Logf("loss %.4f → %.4f", head, tail)
	assert.Less(t, tail, head)
}
