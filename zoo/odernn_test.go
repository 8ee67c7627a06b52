package zoo

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/hostval"
	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// odernnFixture is a float64 ODE-RNN (D 5, H 4, 3 classes, RK4 grid) and a
// 2-series, 3-step batch.
func odernnFixture(t *testing.T) (*ODERNN, *Batch) {
	rng := rand.New(rand.NewPCG(101, 102))
	ctx := context.New()
	require.NoError(t, ctx.SetRNGStateFromSeed(11))
	m, err := NewODERNN(testutil.Backend(), ctx, ODERNNConfig{Inputs: 5, Hidden: 4, Classes: 3, GridPoints: 6,
		Solver: &odeint.Options{Method: odeint.RK4, Step: 0.01}})
	require.NoError(t, err)
	// A trained-looking last layer (the model starts it at zero, which would
	// leave the earlier layers without gradient or statistics).
	last := ctx.In("ode").In("l4")
	last.VariableWithValue("weights", testutil.RandN(rng, 4, 4))
	last.VariableWithValue("biases", testutil.RandN(rng, 4))
	return m, &Batch{X: testutil.RandN(rng, 2, 3, 5), Labels: tensors.FromValue([]int32{2, 0}), Size: 2}
}

// TestODERNNGradientsMatchFiniteDifferences: the reverse sweep's dL/dθ for
// the ODE field (and the GRU and the head) equals central differences of
// the loss on a 3-step, 2-series fixture.
func TestODERNNGradientsMatchFiniteDifferences(t *testing.T) {
	m, b := odernnFixture(t)
	res, err := m.Step(b, false)
	require.NoError(t, err)
	for _, l := range []string{"l1", "l2", "l3", "l4"} {
		// Table 4's field is autonomous: Linear(H, H) layers, no time input.
		v := m.ctx.In("ode").In(l).GetVariable("weights")
		require.NotNil(t, v, l)
		assert.Equal(t, []int{4, 4}, v.Shape().Dimensions, l)
	}
	require.Len(t, m.ODEParams(), 8, "4 Linear layers with biases")
	require.Len(t, m.Params(), 14, "+ the GRU's 4 and the head's 2")
	for _, v := range m.Params() {
		assertGradientMatchesFD(t, m, b, v, res.Grads[v.ScopeAndName()], []int{0, v.Shape().Size() - 1}, 1e-7)
	}
}

// TestODERNNStatisticsSumOverAllSegments: the factors of a statistics step
// equal the sum over the K segments of each segment's own factors (the
// points of one 6-interval grid over [0, 3] that fall in [k, k+1], the
// sweep's cotangent), recomputed here segment by segment — 7 points in all,
// each counted once — and are not the first segment's alone.
func TestODERNNStatisticsSumOverAllSegments(t *testing.T) {
	m, b := odernnFixture(t)
	res, err := m.Step(b, true)
	require.NoError(t, err)
	require.Len(t, res.Stats, 4)

	// Brute force: the same sweep, one Stats per segment.
	xs, err := m.steps(b)
	require.NoError(t, err)
	trs, hats, hK, _, err := m.forward(xs, b.Size, b.X.DType())
	require.NoError(t, err)
	out, err := m.headStep.Exec(hK, b.Labels)
	require.NoError(t, err)
	dh := out[len(out)-1]
	acc := []*tensors.Tensor{zeros(b.X.DType(), 5, 12), zeros(b.X.DType(), 4, 12), zeros(b.X.DType(), 12), zeros(b.X.DType(), 12)}
	sums := map[string][2]*mat.Dense{}
	var first map[string][2]*mat.Dense
	samples := 0
	grid := &adjointx.Grid{T0: 0, T1: 3, Intervals: 6}
	for k := len(xs) - 1; k >= 0; k-- {
		gout, err := m.gruBwd.Exec(xs[k], hats[k], dh, acc[0], acc[1], acc[2], acc[3])
		require.NoError(t, err)
		acc = gout[1:]
		var st adjointx.Stats
		g, err := m.block.Backward(trs[k], [][]*tensors.Tensor{nil, {gout[0]}},
			&adjointx.BackwardOptions{Stats: &st, Grid: grid})
		require.NoError(t, err)
		samples += st.Samples
		dh = g.X0[0]
		seg := map[string][2]*mat.Dense{}
		for _, l := range st.Layers {
			seg[l.Weights] = [2]*mat.Dense{dense(t, l.A), dense(t, l.B)}
			if s, ok := sums[l.Weights]; ok {
				s[0].Add(s[0], seg[l.Weights][0])
				s[1].Add(s[1], seg[l.Weights][1])
			} else {
				sums[l.Weights] = [2]*mat.Dense{mat.DenseCopyOf(seg[l.Weights][0]), mat.DenseCopyOf(seg[l.Weights][1])}
			}
		}
		if k == 0 {
			first = seg
		}
	}
	assert.Equal(t, 7, samples, "every point of the grid once")
	for _, l := range res.Stats {
		want := sums[l.Weights]
		assert.True(t, mat.EqualApprox(want[0], dense(t, l.A), 1e-12), "A of %s", l.Layer)
		assert.True(t, mat.EqualApprox(want[1], dense(t, l.B), 1e-12), "B of %s", l.Layer)
		assert.False(t, mat.EqualApprox(first[l.Weights][1], dense(t, l.B), 1e-6), "not the first segment's alone")
	}
}

func dense(t *testing.T, x *tensors.Tensor) *mat.Dense {
	v, err := hostval.Float64s(x)
	require.NoError(t, err)
	d := x.Shape().Dimensions
	return mat.NewDense(d[0], d[1], v)
}

// TestODERNNTrainsWithEachOptimizer: on a tiny stand-in, Adam for the GRU
// and head plus Adam, SGD or SNOpt for the ODE field (a snoptx.Group)
// lower the training loss.
func TestODERNNTrainsWithEachOptimizer(t *testing.T) {
	spec := datasets.ArchiveSpec{Name: "Tiny", Channels: 2, Classes: 3, Length: 6, Train: 64, Test: 8}
	train, _, err := datasets.StandIn(spec, 1)
	require.NoError(t, err)
	_, _, err = train.Standardize()
	require.NoError(t, err)
	for _, name := range []string{"adam", "sgd", "snopt"} {
		ctx := context.New()
		require.NoError(t, ctx.SetRNGStateFromSeed(2))
		m, err := NewODERNN(testutil.Backend(), ctx, ODERNNConfig{Inputs: SeriesInputs(2), Hidden: 8, Classes: 3})
		require.NoError(t, err)
		batches, err := NewSeriesBatcher(train, 32, 1)
		require.NoError(t, err)
		_, err = m.Step(batches.Next(), false)
		require.NoError(t, err)
		var odeOpt snoptx.Optimizer
		switch name {
		case "adam":
			odeOpt, err = snoptx.Adam(1e-2, 0)
		case "sgd":
			odeOpt, err = snoptx.SGD().LearningRate(0.1).Done()
		case "snopt":
			odeOpt, err = snoptx.SNOpt().LearningRate(0.05).RefreshEvery(5).Done()
		}
		require.NoError(t, err)
		adam, err := snoptx.Adam(1e-2, 0)
		require.NoError(t, err)
		rest := m.GRUHeadParams()
		require.Len(t, rest, len(m.Params())-len(m.ODEParams()))
		for _, v := range rest {
			require.NotContains(t, m.ODEParams(), v)
		}
		sa, err := snoptx.NewStepper(testutil.Backend(), ctx, adam, rest)
		require.NoError(t, err)
		so, err := snoptx.NewStepper(testutil.Backend(), ctx, odeOpt, m.ODEParams())
		require.NoError(t, err)
		group, err := snoptx.NewGroup(sa.Scope("gru_head"), so.Scope("ode"))
		require.NoError(t, err)
		next := func() (*Batch, error) { return batches.Next(), nil }
		res, err := trainer.Run(m, group, next, nil, trainer.Config{Iterations: 16})
		require.NoError(t, err)
		head, tail := lossFalls(res.Records, 4)
		t.Logf("%s: loss %.4f → %.4f", name, head, tail)
		assert.Less(t, tail, head, name)
	}
}
