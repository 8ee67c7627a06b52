package snoptx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
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
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/internal/testutil"
)

// fixedData yields the same batch every step (fresh tensors: the loop
// finalizes what it is given).
type fixedData struct{ x, y [][]float64 }

func (d fixedData) Name() string { return "fixed" }
func (d fixedData) Reset()       {}
func (d fixedData) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	return nil, []*tensors.Tensor{tensors.FromValue(d.x)}, []*tensors.Tensor{tensors.FromValue(d.y)}, nil
}

// homog appends a column of ones.
func homog(m [][]float64) *mat.Dense {
	out := mat.NewDense(len(m), len(m[0])+1, nil)
	for i, row := range m {
		for j, v := range row {
			out.Set(i, j, v)
		}
		out.Set(i, len(row), 1)
	}
	return out
}

func varMat(ctx *context.Context, scope, name string) *mat.Dense {
	v := ctx.InspectVariable(scope, name)
	d := v.Shape().Dimensions
	return mat.NewDense(d[0], d[1], append([]float64{}, tensors.MustCopyFlatData[float64](v.MustValue())...))
}

func varVec(ctx *context.Context, scope, name string) []float64 {
	return tensors.MustCopyFlatData[float64](ctx.InspectVariable(scope, name).MustValue())
}

// withBias stacks W [in, out] and b [out] into W̃ [in+1, out].
// factorMat is a layer's accumulated factor ("a" or "b") divided by the
// number of statistics graphs that added to it.
func factorMat(ctx *context.Context, scope, which string) *mat.Dense {
	m := varMat(ctx, "/snoptx/stats"+scope, "weights_factor_"+which)
	count := varVec(ctx, "/snoptx/stats"+scope, "weights_factor_count")[0]
	m.Scale(1/count, m)
	return m
}

func withBias(w *mat.Dense, b []float64) *mat.Dense {
	r, c := w.Dims()
	out := mat.NewDense(r+1, c, nil)
	out.Slice(0, r, 0, c).(*mat.Dense).Copy(w)
	out.SetRow(r, b)
	return out
}

func assertMatNear(t *testing.T, want, got mat.Matrix, tol float64, msg string) {
	r, c := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, []int{r, c}, []int{gr, gc}, msg)
	for i := range r {
		for j := range c {
			assert.InDelta(t, want.At(i, j), got.At(i, j), tol, "%s [%d,%d]", msg, i, j)
		}
	}
}

// TestRecordedStatisticsMatchPerSampleSums: for a two-layer model
// (Dense 4→3, tanh, Dense 3→2, MSE) the factors a statistics step stores
// equal Ā = mean x̃x̃ᵀ and B̄ = (1/B) Σ_s g_s g_sᵀ with g_s = B·∂L/∂y_s,
// computed here by hand-written backpropagation over each sample.
func TestRecordedStatisticsMatchPerSampleSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	const batch = 5
	x, target := testutil.RandMat(rng, batch, 4), testutil.RandMat(rng, batch, 2)
	ctx := context.New()
	ctx.SetParam(ParamCollectStats, true)
	model := func(ctx *context.Context, _ any, in []*Node) []*Node {
		h := Tanh(Dense(ctx.In("l1"), in[0], true, 3))
		return []*Node{Dense(ctx.In("l2"), h, true, 2)}
	}
	opt, err := SNOpt().LearningRate(1e-9).Done()
	require.NoError(t, err)
	tr := train.NewTrainer(testutil.Backend(), ctx, model, losses.MeanSquaredError, opt, nil, nil)
	// The weights before the step: build the graph once with a zero-rate step.
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue(x)}, []*tensors.Tensor{tensors.FromValue(target)})
	require.NoError(t, err)
	w1 := withBias(varMat(ctx, "/l1/dense", "weights"), varVec(ctx, "/l1/dense", "biases"))
	w2 := withBias(varMat(ctx, "/l2/dense", "weights"), varVec(ctx, "/l2/dense", "biases"))
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue(x)}, []*tensors.Tensor{tensors.FromValue(target)})
	require.NoError(t, err)

	// Brute force with the weights of the second step (lr 1e-9 moved them by ~1e-9).
	x1 := homog(x)
	var pre1 mat.Dense
	pre1.Mul(x1, w1)
	h := make([][]float64, batch)
	for s := range batch {
		h[s] = []float64{math.Tanh(pre1.At(s, 0)), math.Tanh(pre1.At(s, 1)), math.Tanh(pre1.At(s, 2))}
	}
	h1 := homog(h)
	var y mat.Dense
	y.Mul(h1, w2)
	a1, a2 := mat.NewDense(5, 5, nil), mat.NewDense(4, 4, nil)
	b1, b2 := mat.NewDense(3, 3, nil), mat.NewDense(2, 2, nil)
	for s := range batch {
		gy := make([]float64, 2) // per-sample g = B·∂L/∂y_s, L = mean over B·2 of (y − t)²
		for j := range 2 {
			gy[j] = batch * 2 * (y.At(s, j) - target[s][j]) / (batch * 2)
		}
		gh := make([]float64, 3)
		for i := range 3 {
			for j := range 2 {
				gh[i] += gy[j] * w2.At(i, j)
			}
			gh[i] *= 1 - h[s][i]*h[s][i]
		}
		for i := range 5 {
			for j := range 5 {
				a1.Set(i, j, a1.At(i, j)+x1.At(s, i)*x1.At(s, j)/batch)
			}
		}
		for i := range 4 {
			for j := range 4 {
				a2.Set(i, j, a2.At(i, j)+h1.At(s, i)*h1.At(s, j)/batch)
			}
		}
		for i := range 3 {
			for j := range 3 {
				b1.Set(i, j, b1.At(i, j)+gh[i]*gh[j]/batch)
			}
		}
		for i := range 2 {
			for j := range 2 {
				b2.Set(i, j, b2.At(i, j)+gy[i]*gy[j]/batch)
			}
		}
	}
	const tol = 1e-7
	// Two statistics steps ran: the accumulators hold the sum of both (the
	// weights moved by ~1e-9), and their count.
	assertMatNear(t, a1, factorMat(ctx, "/l1/dense", "a"), tol, "A of l1")
	assertMatNear(t, a2, factorMat(ctx, "/l2/dense", "a"), tol, "A of l2")
	assertMatNear(t, b1, factorMat(ctx, "/l1/dense", "b"), tol, "B of l1")
	assertMatNear(t, b2, factorMat(ctx, "/l2/dense", "b"), tol, "B of l2")
	assert.Equal(t, []float64{2}, varVec(ctx, "/snoptx/stats/l1/dense", "weights_factor_count"))
	assert.Equal(t, []float64{2 * batch}, varVec(ctx, "/snoptx/stats/l1/dense", "weights_factor_samples"))
}

// oneLayer is y = Dense(x) (4 → 3, with bias) under MSE.
func oneLayer(ctx *context.Context, _ any, in []*Node) []*Node {
	return []*Node{Dense(ctx.In("lay"), in[0], true, 3)}
}

// mseGrad is ∂L/∂W̃ = x̃ᵀ·2(y − t)/(B·out) for L = mean (y − t)².
func mseGrad(x [][]float64, target [][]float64, w *mat.Dense) *mat.Dense {
	x1 := homog(x)
	var y mat.Dense
	y.Mul(x1, w)
	r, c := y.Dims()
	for i := range r {
		for j := range c {
			y.Set(i, j, 2*(y.At(i, j)-target[i][j])/float64(r*c))
		}
	}
	var g mat.Dense
	g.Mul(x1.T(), &y)
	return &g
}

// TestAttachPreconditionsThroughTrainLoop: through train.Loop with Attach,
// the first (statistics) step is the momentum step; the next is
// −lr·(Ā ⊗ B̄ + εI)⁻¹ vec(G) with the factors of the first step (α = 1, no
// momentum), checked against a dense inverse — and so it differs from SGD.
func TestAttachPreconditionsThroughTrainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const batch, lr, eps = 6, 0.3, 0.05
	data := fixedData{x: testutil.RandMat(rng, batch, 4), y: testutil.RandMat(rng, batch, 3)}
	var a, b *mat.Dense // the factors of the statistics step, read before the refresh resets them
	run := func(opt Optimizer, attach bool) (*context.Context, []*mat.Dense) {
		ctx := context.New()
		require.NoError(t, ctx.SetRNGStateFromSeed(7)) // the same initial weights in both runs
		loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, oneLayer, losses.MeanSquaredError, opt, nil, nil))
		if attach {
			require.NoError(t, Attach(loop, opt))
			loop.OnStep("read-factors", train.Priority(-1), func(*train.Loop, []*tensors.Tensor) error {
				if a == nil {
					a, b = factorMat(ctx, "/lay/dense", "a"), factorMat(ctx, "/lay/dense", "b")
				}
				return nil
			})
		}
		var thetas []*mat.Dense
		for range 2 {
			_, err := loop.RunSteps(data, 1)
			require.NoError(t, err)
			thetas = append(thetas, withBias(varMat(ctx, "/lay/dense", "weights"), varVec(ctx, "/lay/dense", "biases")))
		}
		return ctx, thetas
	}
	opt, err := SNOpt().LearningRate(lr).Momentum(0).Alpha(1).Damping(eps).Done()
	require.NoError(t, err)
	_, got := run(opt, true)
	require.NotNil(t, a)

	g1 := mseGrad(data.x, data.y, got[0])
	var kron mat.Dense
	kron.Kronecker(a, b)
	for i := range 15 {
		kron.Set(i, i, kron.At(i, i)+eps)
	}
	var step mat.VecDense
	require.NoError(t, step.SolveVec(&kron, mat.NewVecDense(15, append([]float64{}, g1.RawMatrix().Data...))))
	want := mat.NewDense(5, 3, nil)
	want.Sub(got[0], scaled(lr, mat.NewDense(5, 3, step.RawVector().Data)))
	assertMatNear(t, want, got[1], 1e-10, "second update")

	sgdOpt, err := SGD().LearningRate(lr).Momentum(0).Done()
	require.NoError(t, err)
	_, sgd := run(sgdOpt, false)
	assertMatNear(t, sgd[0], got[0], 1e-12, "the statistics step is the momentum step")
	assert.False(t, mat.EqualApprox(sgd[1], got[1], 1e-6), "SNOpt's second update differs from SGD's")
}

// TestAttachRefusesModelsWithoutPreconditionableLayers: a model built with
// GoMLX's layers.Dense only is an error, not a silent SGD; a model mixing
// both lists the uncovered variables once.
func TestAttachRefusesModelsWithoutPreconditionableLayers(t *testing.T) {
	data := fixedData{x: [][]float64{{1, 2, 3, 4}}, y: [][]float64{{0, 1, 0}}}
	plain := func(ctx *context.Context, _ any, in []*Node) []*Node {
		return []*Node{layers.Dense(ctx.In("lay"), in[0], true, 3)}
	}
	opt, err := SNOpt().Done()
	require.NoError(t, err)
	loop := train.NewLoop(train.NewTrainer(testutil.Backend(), context.New(), plain, losses.MeanSquaredError, opt, nil, nil))
	require.NoError(t, Attach(loop, opt))
	_, err = loop.RunSteps(data, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "snoptx.Dense")

	var logged []string
	logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	defer func() { logf = logPrintf }()
	mixed := func(ctx *context.Context, _ any, in []*Node) []*Node {
		h := layers.Dense(ctx.In("stem"), in[0], true, 5)
		return []*Node{Dense(ctx.In("head"), h, true, 3)}
	}
	opt, err = SNOpt().RefreshEvery(2).Done()
	require.NoError(t, err)
	loop = train.NewLoop(train.NewTrainer(testutil.Backend(), context.New(), mixed, losses.MeanSquaredError, opt, nil, nil))
	require.NoError(t, Attach(loop, opt))
	_, err = loop.RunSteps(data, 5)
	require.NoError(t, err)
	require.Len(t, logged, 1, "listed once over three refreshes")
	assert.Contains(t, logged[0], "/stem/dense/weights")
	assert.NotContains(t, logged[0], "/head/")
}

// TestConvStatisticsMatchPerPixelSums: for Conv2D (3×3, stride 2, padding
// 1, bias) under the linear loss L = (1/B) Σ_s ⟨c_s, y_s⟩ (so ∂L/∂y_s =
// c_s/B exactly), the stored factors equal Ā = mean over samples and output
// pixels of p̃p̃ᵀ (patches with a 1 appended, zero padding) and B̄ = (B/L)
// Σ_{s,p} (c_sp/B)(c_sp/B)ᵀ, both summed here pixel by pixel.
func TestConvStatisticsMatchPerPixelSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	const batch, h, w, c, out, k, stride, pad = 2, 5, 4, 3, 4, 3, 2, 1
	ho, wo := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	x := make([]float64, batch*h*w*c)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	cs := make([]float64, batch*ho*wo*out)
	for i := range cs {
		cs[i] = rng.NormFloat64()
	}
	ctx := context.New()
	ctx.SetParam(ParamCollectStats, true)
	model := func(ctx *context.Context, _ any, in []*Node) []*Node {
		return []*Node{Conv2D(ctx, in[0], out, k, stride, pad, true)}
	}
	linear := func(labels, preds []*Node) *Node { return DivScalar(ReduceAllSum(Mul(labels[0], preds[0])), batch) }
	opt, err := SNOpt().Done()
	require.NoError(t, err)
	tr := train.NewTrainer(testutil.Backend(), ctx, model, linear, opt, nil, nil)
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, batch, h, w, c)},
		[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(cs, batch, ho, wo, out)})
	require.NoError(t, err)

	na := k*k*c + 1
	a, b := mat.NewDense(na, na, nil), mat.NewDense(out, out, nil)
	locations := float64(ho * wo)
	for s := range batch {
		for oi := range ho {
			for oj := range wo {
				p := make([]float64, 0, na)
				for di := range k {
					for dj := range k {
						r, col := oi*stride-pad+di, oj*stride-pad+dj
						for ch := range c {
							v := 0.0
							if r >= 0 && r < h && col >= 0 && col < w {
								v = x[((s*h+r)*w+col)*c+ch]
							}
							p = append(p, v)
						}
					}
				}
				p = append(p, 1)
				for i := range na {
					for j := range na {
						a.Set(i, j, a.At(i, j)+p[i]*p[j]/(batch*locations))
					}
				}
				g := cs[((s*ho+oi)*wo+oj)*out : ((s*ho+oi)*wo+oj+1)*out]
				for i := range out {
					for j := range out {
						b.Set(i, j, b.At(i, j)+float64(batch)/locations*(g[i]/batch)*(g[j]/batch))
					}
				}
			}
		}
	}
	assertMatNear(t, a, factorMat(ctx, "/conv", "a"), 1e-12, "A of the convolution")
	assertMatNear(t, b, factorMat(ctx, "/conv", "b"), 1e-12, "B of the convolution")
}

// TestAttachResumeFromGoMLXCheckpointIsBitIdentical: SNOpt with Attach
// (momentum, α = 0.75, refresh every 3) on a two-layer model, checkpointed
// with GoMLX's checkpoints after 4 steps and resumed in a fresh context,
// trainer, loop and optimizer, ends 4 steps later with the same weights,
// bit for bit, as 8 uninterrupted steps.
func TestAttachResumeFromGoMLXCheckpointIsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	data := fixedData{x: testutil.RandMat(rng, 8, 4), y: testutil.RandMat(rng, 8, 2)}
	model := func(ctx *context.Context, _ any, in []*Node) []*Node {
		h := Tanh(Dense(ctx.In("l1"), in[0], true, 5))
		return []*Node{Dense(ctx.In("l2"), h, true, 2)}
	}
	newLoop := func(ctx *context.Context) *train.Loop {
		opt, err := SNOpt().LearningRate(0.05).RefreshEvery(3).Done()
		require.NoError(t, err)
		loop := train.NewLoop(train.NewTrainer(testutil.Backend(), ctx, model, losses.MeanSquaredError, opt, nil, nil))
		require.NoError(t, Attach(loop, opt))
		return loop
	}
	weights := func(ctx *context.Context) []float64 {
		var out []float64
		for _, s := range []string{"/l1/dense", "/l2/dense"} {
			out = append(append(out, varVec(ctx, s, "weights")...), varVec(ctx, s, "biases")...)
		}
		return out
	}
	ctx := context.New()
	require.NoError(t, ctx.SetRNGStateFromSeed(3))
	_, err := newLoop(ctx).RunSteps(data, 8)
	require.NoError(t, err)
	want := weights(ctx)

	dir := filepath.Join(t.TempDir(), "ckpt")
	ctx1 := context.New()
	require.NoError(t, ctx1.SetRNGStateFromSeed(3))
	h, err := checkpoints.Build(ctx1).Dir(dir).Done()
	require.NoError(t, err)
	_, err = newLoop(ctx1).RunSteps(data, 4)
	require.NoError(t, err)
	require.NoError(t, h.Save())

	ctx2 := context.New()
	_, err = checkpoints.Build(ctx2).Dir(dir).Done()
	require.NoError(t, err)
	require.Equal(t, int64(4), optimizers.GetGlobalStep(ctx2))
	ctx2 = ctx2.Reuse()
	_, err = newLoop(ctx2).RunSteps(data, 4)
	require.NoError(t, err)
	assert.Equal(t, want, weights(ctx2))
}
