package snoptx

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// twoLayer is Dense 4→5, tanh, Dense 5→2 (snoptx layers).
func twoLayer(ctx *context.Context, _ any, in []*Node) []*Node {
	h := Tanh(Dense(ctx.In("l1"), in[0], true, 5))
	return []*Node{Dense(ctx.In("l2"), h, true, 2)}
}

func twoLayerWeights(ctx *context.Context) []float64 {
	var out []float64
	for _, s := range []string{"/l1/dense", "/l2/dense"} {
		out = append(append(out, varVec(ctx, s, "weights")...), varVec(ctx, s, "biases")...)
	}
	return out
}

// TestSNOptWithoutAttachIsAnError: SNOpt through train.Loop without Attach
// — with snoptx layers or with GoMLX's own — stops at the first step with
// an error saying what to call, instead of training as SGD with momentum.
func TestSNOptWithoutAttachIsAnError(t *testing.T) {
	data := fixedData{x: [][]float64{{1, 2, 3, 4}, {0, 1, 0, 1}}, y: [][]float64{{0, 1}, {1, 0}}}
	plain := func(ctx *context.Context, _ any, in []*Node) []*Node {
		return []*Node{layers.Dense(ctx.In("lay"), in[0], true, 2)}
	}
	for name, model := range map[string]train.ModelFn{"snoptx.Dense": twoLayer, "layers.Dense": plain} {
		opt, err := SNOpt().Done()
		require.NoError(t, err)
		ctx := context.New()
		loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, model, losses.MeanSquaredError, opt, nil, nil))
		_, err = loop.RunSteps(data, 3)
		require.Error(t, err, name)
		assert.ErrorContains(t, err, "snoptx.Attach(loop, opt)", name)
		assert.Equal(t, int64(0), optimizers.GetGlobalStep(ctx), "%s: no update applied", name)
	}
}

// halves yields the two halves of a batch in turn: two micro-batches of
// gradient accumulation make the whole batch.
type halves struct {
	x, y [][]float64
	k    *int
}

func (d halves) Name() string { return "halves" }
func (d halves) Reset()       {}
func (d halves) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	n := len(d.x) / 2
	i := *d.k % 2
	*d.k++
	return nil, []*tensors.Tensor{tensors.FromValue(d.x[i*n : (i+1)*n])}, []*tensors.Tensor{tensors.FromValue(d.y[i*n : (i+1)*n])}, nil
}

// TestAccumulatedStepsEqualTheWholeBatch: SNOpt with Attach under
// train.Trainer.AccumulateGradients(2), fed the two halves of a batch,
// trains exactly as on the whole batch at once — the statistics of both
// micro-batches are accumulated like the gradients, refreshes included —
// and so does snoptx.Adam.
func TestAccumulatedStepsEqualTheWholeBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	x, y := testutil.RandMat(rng, 8, 4), testutil.RandMat(rng, 8, 2)
	for name, mk := range map[string]func() (Optimizer, error){
		"snopt": func() (Optimizer, error) { return SNOpt().LearningRate(0.1).RefreshEvery(2).Done() },
		"adam":  func() (Optimizer, error) { return Adam(0.01, 0) },
	} {
		run := func(accumulate bool) []float64 {
			opt, err := mk()
			require.NoError(t, err)
			ctx := context.New()
			require.NoError(t, ctx.SetRNGStateFromSeed(5))
			tr := train.NewTrainer(testutil.Backend(), ctx, twoLayer, losses.MeanSquaredError, opt, nil, nil)
			var ds train.Dataset = fixedData{x: x, y: y}
			steps := 5
			if accumulate {
				require.NoError(t, tr.AccumulateGradients(2), name)
				ds, steps = halves{x: x, y: y, k: new(int)}, 10
			}
			loop := train.NewLoop(tr)
			if name == "snopt" {
				require.NoError(t, Attach(loop, opt))
			}
			_, err = loop.RunSteps(ds, steps)
			require.NoError(t, err, name)
			assert.Equal(t, int64(5), optimizers.GetGlobalStep(ctx), name)
			return twoLayerWeights(ctx)
		}
		whole, acc := run(false), run(true)
		require.Len(t, acc, len(whole))
		for i := range whole {
			assert.InDelta(t, whole[i], acc[i], 1e-12, "%s: weight %d", name, i)
		}
	}
}

// TestOptimizerStateIsNeverTrainable: after a resume from a GoMLX
// checkpoint the optimizer's variables (under /snoptx) are not trainable,
// and the one-time list of layers without preconditioning names only the
// model's variables.
func TestOptimizerStateIsNeverTrainable(t *testing.T) {
	data := fixedData{x: [][]float64{{1, 2, 3, 4}, {0, 1, 0, 1}}, y: [][]float64{{0, 1}, {1, 0}}}
	mixed := func(ctx *context.Context, _ any, in []*Node) []*Node {
		h := Tanh(layers.Dense(ctx.In("stem"), in[0], true, 3))
		return []*Node{Dense(ctx.In("head"), h, true, 2)}
	}
	var logged []string
	logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	defer func() { logf = logPrintf }()
	newLoop := func(ctx *context.Context) *train.Loop {
		opt, err := SNOpt().RefreshEvery(2).Done()
		require.NoError(t, err)
		loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, mixed, losses.MeanSquaredError, opt, nil, nil))
		require.NoError(t, Attach(loop, opt))
		return loop
	}
	dir := filepath.Join(t.TempDir(), "ckpt")
	ctx := context.New()
	h, err := checkpoints.Build(ctx).Dir(dir).Done()
	require.NoError(t, err)
	_, err = newLoop(ctx).RunSteps(data, 3)
	require.NoError(t, err)
	require.NoError(t, h.Save())

	ctx2 := context.New()
	_, err = checkpoints.Build(ctx2).Dir(dir).Done()
	require.NoError(t, err)
	ctx2 = ctx2.Reuse()
	_, err = newLoop(ctx2).RunSteps(data, 3)
	require.NoError(t, err)
	n := 0
	for v := range ctx2.IterVariables() {
		if strings.HasPrefix(v.Scope(), "/snoptx") {
			n++
			assert.False(t, v.Trainable, "%s is the optimizer's state", v.ScopeAndName())
		}
	}
	assert.Greater(t, n, 5)
	require.Len(t, logged, 2, "once per optimizer")
	for _, l := range logged {
		assert.Contains(t, l, "/stem/dense/weights")
		assert.NotContains(t, l, "/snoptx")
	}
}

// TestTwoTrainersSideBySide: two models, each with its own context, trainer,
// loop and SNOpt, trained in turn and at the same time in two goroutines,
// end with exactly the weights each gets alone.
func TestTwoTrainersSideBySide(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	sets := []fixedData{
		{x: testutil.RandMat(rng, 6, 4), y: testutil.RandMat(rng, 6, 2)},
		{x: testutil.RandMat(rng, 6, 4), y: testutil.RandMat(rng, 6, 2)},
	}
	newLoop := func(seed int64) (*context.Context, *train.Loop) {
		opt, err := SNOpt().LearningRate(0.05).RefreshEvery(3).Done()
		require.NoError(t, err)
		ctx := context.New()
		require.NoError(t, ctx.SetRNGStateFromSeed(seed))
		loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, twoLayer, losses.MeanSquaredError, opt, nil, nil))
		require.NoError(t, Attach(loop, opt))
		return ctx, loop
	}
	var alone [2][]float64
	for i := range 2 {
		ctx, loop := newLoop(int64(i + 1))
		_, err := loop.RunSteps(sets[i], 7)
		require.NoError(t, err)
		alone[i] = twoLayerWeights(ctx)
	}
	// In turn, one step each.
	c0, l0 := newLoop(1)
	c1, l1 := newLoop(2)
	for range 7 {
		_, err := l0.RunSteps(sets[0], 1)
		require.NoError(t, err)
		_, err = l1.RunSteps(sets[1], 1)
		require.NoError(t, err)
	}
	assert.Equal(t, alone[0], twoLayerWeights(c0))
	assert.Equal(t, alone[1], twoLayerWeights(c1))
	// At the same time.
	var wg sync.WaitGroup
	ctxs := make([]*context.Context, 2)
	errs := make([]error, 2)
	for i := range 2 {
		var loop *train.Loop
		ctxs[i], loop = newLoop(int64(i + 1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = loop.RunSteps(sets[i], 7)
		}()
	}
	wg.Wait()
	for i := range 2 {
		require.NoError(t, errs[i])
		assert.Equal(t, alone[i], twoLayerWeights(ctxs[i]), "trainer %d", i)
	}
}

// TestResumeWithoutAttachWarns: a SNOpt resumed from a checkpoint without
// Attach preconditions with the saved eigenbases and says, once, that
// nothing will refresh them.
func TestResumeWithoutAttachWarns(t *testing.T) {
	data := fixedData{x: [][]float64{{1, 2, 3, 4}, {0, 1, 0, 1}}, y: [][]float64{{0, 1}, {1, 0}}}
	var logged []string
	logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	defer func() { logf = logPrintf }()
	dir := filepath.Join(t.TempDir(), "ckpt")
	ctx := context.New()
	h, err := checkpoints.Build(ctx).Dir(dir).Done()
	require.NoError(t, err)
	opt, err := SNOpt().RefreshEvery(2).Done()
	require.NoError(t, err)
	loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, twoLayer, losses.MeanSquaredError, opt, nil, nil))
	require.NoError(t, Attach(loop, opt))
	_, err = loop.RunSteps(data, 3)
	require.NoError(t, err)
	require.NoError(t, h.Save())

	ctx2 := context.New()
	_, err = checkpoints.Build(ctx2).Dir(dir).Done()
	require.NoError(t, err)
	ctx2 = ctx2.Reuse()
	ctx2.SetParam(ParamCollectStats, false)
	opt2, err := SNOpt().RefreshEvery(2).Done()
	require.NoError(t, err)
	loop2 := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx2, twoLayer, losses.MeanSquaredError, opt2, nil, nil))
	_, err = loop2.RunSteps(data, 2)
	require.NoError(t, err)
	require.Len(t, logged, 1)
	assert.Contains(t, logged[0], "nothing refreshes them")
}
