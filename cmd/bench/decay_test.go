package main

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/zoo"
)

// TestLRDecayHook: with -lr-decay 0.5 -lr-decay-every 2 the learning rate
// halves after iterations 2 and 4, and the wrapped hook still runs.
func TestLRDecayHook(t *testing.T) {
	ctx := context.New()
	w := ctx.In("m").VariableWithValue("w", []float64{1})
	opt, err := snoptx.SGD().LearningRate(0.1).Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w})
	require.NoError(t, err)
	require.NoError(t, st.Step(map[string]*tensors.Tensor{w.ScopeAndName(): tensors.FromValue([]float64{1})}, nil, 1))
	calls := 0
	hook := withLRDecay(func(int, *zoo.StepResult) error { calls++; return nil }, ctx, 0.5, 2)
	lr := func() float64 {
		return tensors.ToScalar[float64](optimizers.LearningRateVar(ctx, dtypes.Float64, 0).MustValue())
	}
	var got []float64
	for iter := 1; iter <= 5; iter++ {
		require.NoError(t, hook(iter, nil))
		got = append(got, lr())
	}
	assert.InDeltaSlice(t, []float64{0.1, 0.05, 0.05, 0.025, 0.025}, got, 1e-15)
	assert.Equal(t, 5, calls)
}
