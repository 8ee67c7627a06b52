package snoptx

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers/cosineschedule"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// Both first-order paths support GoMLX's gradient accumulation.
var (
	_ train.OptimizeWithGradients = (*sgd)(nil)
	_ train.OptimizeWithGradients = (*snopt)(nil)
	_ train.OptimizeWithGradients = (*adam)(nil)
)

// scalarModel is y = x·w with one weight; with x = 1 and label 0 the MSE
// loss is w², its gradient 2w.
func scalarModel(schedule bool) train.ModelFn {
	return func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		if schedule {
			cosineschedule.New(ctx, inputs[0].Graph(), dtypes.Float64).PeriodSteps(6).LearningRate(0.2).MinLearningRate(0.01).Done()
		}
		w := ctx.In("m").VariableWithValue("w", []float64{1.5}).ValueGraph(inputs[0].Graph())
		return []*Node{Mul(inputs[0], w)}
	}
}

// weight reads w (its initial 1.5 before the first step creates it).
func weight(ctx *context.Context) float64 {
	v := ctx.InspectVariable("/m", "w")
	if v == nil {
		return 1.5
	}
	return tensors.MustCopyFlatData[float64](v.MustValue())[0]
}

var one, zero = []*tensors.Tensor{tensors.FromValue([]float64{1})}, []*tensors.Tensor{tensors.FromValue([]float64{0})}

// TestScheduleDrivesLearningRateAndGlobalStep: through train.Trainer, with
// GoMLX's cosine schedule setting the learning-rate variable, every SGD and
// SNOpt update is w ← w − lr_t·2w with that step's scheduled rate, and the
// global step advances once per update.
func TestScheduleDrivesLearningRateAndGlobalStep(t *testing.T) {
	for name, mk := range map[string]func() (Optimizer, error){
		"sgd":   func() (Optimizer, error) { return SGD().Momentum(0).Done() },
		"snopt": func() (Optimizer, error) { return SNOpt().Momentum(0).Done() },
	} {
		opt, err := mk()
		require.NoError(t, err)
		ctx := context.New()
		ctx.SetParam(ParamCollectStats, true) // SNOpt by hand: without it (or Attach) SNOpt refuses to be SGD
		tr := train.NewTrainer(testutil.Backend(), ctx, scalarModel(true), losses.MeanSquaredError, opt, nil, nil)
		var rates []float64
		for step := 1; step <= 5; step++ {
			before := weight(ctx)
			_, err := tr.TrainStep(nil, one, zero)
			require.NoError(t, err)
			lr := tensors.ToScalar[float64](optimizers.LearningRateVar(ctx, dtypes.Float64, 0).MustValue())
			rates = append(rates, lr)
			assert.InDelta(t, before*(1-2*lr), weight(ctx), 1e-12, "%s step %d", name, step)
			assert.Equal(t, int64(step), optimizers.GetGlobalStep(ctx), name)
		}
		assert.NotEqual(t, rates[0], rates[4], "%s: the schedule moved the rate", name)
	}
}

// TestGradientAccumulation: with train.Trainer.AccumulateGradients(2) two
// train steps make one update with the mean gradient, and one global step.
func TestGradientAccumulation(t *testing.T) {
	for name, mk := range map[string]func() (Optimizer, error){
		"sgd":   func() (Optimizer, error) { return SGD().LearningRate(0.1).Momentum(0).Done() },
		"snopt": func() (Optimizer, error) { return SNOpt().LearningRate(0.1).Momentum(0).Done() },
	} {
		opt, err := mk()
		require.NoError(t, err)
		ctx := context.New()
		ctx.SetParam(ParamCollectStats, true)
		tr := train.NewTrainer(testutil.Backend(), ctx, scalarModel(false), losses.MeanSquaredError, opt, nil, nil)
		require.NoError(t, tr.AccumulateGradients(2), name)
		for range 2 {
			_, err := tr.TrainStep(nil, one, zero)
			require.NoError(t, err)
		}
		assert.InDelta(t, 1.5*(1-2*0.1), weight(ctx), 1e-12, name)
		assert.Equal(t, int64(1), optimizers.GetGlobalStep(ctx), name)
	}
}

// TestHyperparametersFromContext: context parameters set the learning rate,
// momentum and the SNOpt settings, as for GoMLX's optimizers.
func TestHyperparametersFromContext(t *testing.T) {
	ctx := context.New()
	ctx.SetParam(optimizers.ParamLearningRate, 0.25)
	ctx.SetParam(ParamSGDMomentum, 0.0)
	ctx.SetParam(ParamSNOptDamping, 0.2)
	ctx.SetParam(ParamSNOptAlpha, 0.5)
	ctx.SetParam(ParamSNOptRefreshEvery, 7)
	sgdCfg := SGD().FromContext(ctx)
	assert.Equal(t, 0.25, sgdCfg.lr)
	assert.Equal(t, 0.0, sgdCfg.momentum)
	c := SNOpt().FromContext(ctx)
	assert.Equal(t, SNOptConfig{lr: 0.25, momentum: DefaultMomentum, damping: 0.2, alpha: 0.5, every: 7, scope: "snopt"}, *c)
	opt, err := sgdCfg.Done()
	require.NoError(t, err)
	tr := train.NewTrainer(testutil.Backend(), ctx, scalarModel(false), losses.MeanSquaredError, opt, nil, nil)
	_, err = tr.TrainStep(nil, one, zero)
	require.NoError(t, err)
	assert.InDelta(t, 1.5*(1-2*0.25), weight(ctx), 1e-12)
}

// TestClipNaNKeepsParameters: with optimizers.ParamClipNaN a NaN loss
// leaves the weight where it was (the NaN gradient is dropped).
func TestClipNaNKeepsParameters(t *testing.T) {
	ctx := context.New()
	ctx.SetParam(optimizers.ParamClipNaN, true)
	ctx.SetParam(ParamCollectStats, true)
	opt, err := SNOpt().Done()
	require.NoError(t, err)
	tr := train.NewTrainer(testutil.Backend(), ctx, scalarModel(false), losses.MeanSquaredError, opt, nil, nil)
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{math.NaN()})}, zero)
	require.NoError(t, err)
	assert.Equal(t, 1.5, weight(ctx))
}

// TestGoMLXCheckpointResumeIsBitIdentical: SNOpt with momentum through
// train.Trainer, checkpointed with GoMLX's checkpoints after 3 steps (named
// by the global step) and loaded into a fresh context and trainer the usual
// GoMLX way, makes the same next 3 updates bit for bit.
func TestGoMLXCheckpointResumeIsBitIdentical(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	inputs := func(k int) []*tensors.Tensor {
		return []*tensors.Tensor{tensors.FromValue([]float64{1 + 0.1*float64(k)})}
	}
	run := func(ctx *context.Context, from, to int) []float64 {
		opt, err := SNOpt().LearningRate(0.05).Done()
		require.NoError(t, err)
		tr := train.NewTrainer(testutil.Backend(), ctx, scalarModel(false), losses.MeanSquaredError, opt, nil, nil)
		var ws []float64
		for k := from; k < to; k++ {
			_, err := tr.TrainStep(nil, inputs(k), zero)
			require.NoError(t, err)
			ws = append(ws, weight(ctx))
		}
		return ws
	}
	ctx := context.New()
	ctx.SetParam(ParamCollectStats, true)
	h, err := checkpoints.Build(ctx).Dir(dir).Keep(2).Done()
	require.NoError(t, err)
	run(ctx, 0, 3)
	require.NoError(t, h.Save())
	names, err := h.ListCheckpoints()
	require.NoError(t, err)
	require.NotEmpty(t, names)
	assert.Contains(t, names[len(names)-1], "step-00000003", "checkpoints are named by the global step")
	want := run(ctx.Reuse(), 3, 6) // a second trainer on the same, trained context

	ctx2 := context.New()
	_, err = checkpoints.Build(ctx2).Dir(dir).Done()
	require.NoError(t, err)
	// GoMLX's resume pattern: a context with a global step holds a trained
	// model whose variables are reused.
	require.Equal(t, int64(3), optimizers.GetGlobalStep(ctx2))
	ctx2 = ctx2.Reuse()
	got := run(ctx2, 3, 6)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(6), optimizers.GetGlobalStep(ctx2))
}
