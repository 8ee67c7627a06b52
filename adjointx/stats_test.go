package adjointx

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/testutil"
)

func TestGridIsTrapezoid(t *testing.T) {
	pts := grid(0.5, -1.5, 4)
	require.Len(t, pts, 5)
	total := 0.0
	for j, p := range pts {
		assert.InDelta(t, 0.5-0.5*float64(j), p.t, 1e-15)
		total += p.w
	}
	assert.InDelta(t, 0.25, pts[0].w, 1e-15)
	assert.InDelta(t, 0.5, pts[2].w, 1e-15)
	assert.InDelta(t, 2.0, total, 1e-15)
}

// TestSegmentTimesCountEachGridPointOnce: over all segments, every grid point
// is sampled exactly once, with its weight.
func TestSegmentTimesCountEachGridPointOnce(t *testing.T) {
	for _, ts := range [][]float64{{0, 0.3, 0.5, 1}, {2, 1.25, 0}} {
		pts := grid(ts[0], ts[len(ts)-1], 8)
		total, count := 0.0, 0
		for k := len(ts) - 1; k >= 1; k-- {
			out, weights := segmentTimes(ts, k, pts)
			assert.Equal(t, ts[k], out[0])
			assert.Equal(t, ts[k-1], out[len(out)-1])
			for i := 1; i < len(out); i++ {
				assert.Greater(t, math.Abs(out[i-1]-ts[k]), -1e-15)
				assert.Less(t, math.Abs(out[i-1]-ts[k]), math.Abs(out[i]-ts[k]), "ordered from ts[k] to ts[k-1]")
			}
			for _, w := range weights {
				total += w
				count++
			}
		}
		assert.Equal(t, len(pts), count, "grid %v", ts)
		assert.InDelta(t, math.Abs(ts[len(ts)-1]-ts[0]), total, 1e-12)
	}
}

// TestGaussNewtonShortcutEqualsGeneral: R = 1 with y = Φ_x/√(t1−t0) gives the
// same Kronecker factors as the shortcut q = a/√(t1−t0), and q(t0) = a(t0)/√(t1−t0).
func TestGaussNewtonShortcutEqualsGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	ctx := newCtx(13, 0.6)
	b := newBlock(t, ctx, mlpField(3, 5, true), &Options{Forward: tolOpts(1e-11), GridIntervals: 12})
	x0 := randn(rng, 4, 3)
	ts := []float64{0, 1.3}
	tr, err := b.Forward([]*tensors.Tensor{x0}, ts)
	require.NoError(t, err)
	phiX := randn(rng, 4, 3)
	cot := [][]*tensors.Tensor{nil, {phiX}}
	var short Stats
	gs, err := b.Backward(tr, cot, &BackwardOptions{Stats: &short})
	require.NoError(t, err)
	y := fromVals(vals(t, phiX), phiX)
	scaled := vals(t, y)
	for i := range scaled {
		scaled[i] /= math.Sqrt(1.3)
	}
	var general Stats
	gg, err := b.Backward(tr, cot, &BackwardOptions{Curvature: Vectors, Stats: &general,
		Vectors: [][][]*tensors.Tensor{nil, {{fromVals(scaled, y)}}}})
	require.NoError(t, err)
	require.Len(t, short.Layers, 2)
	require.Equal(t, len(short.Layers), len(general.Layers))
	assert.Equal(t, 13, short.Samples)
	for i := range short.Layers {
		assert.Equal(t, short.Layers[i].Weights, general.Layers[i].Weights)
		assert.LessOrEqual(t, relErr(vals(t, general.Layers[i].A), vals(t, short.Layers[i].A)), 1e-8, "A")
		assert.LessOrEqual(t, relErr(vals(t, general.Layers[i].B), vals(t, short.Layers[i].B)), 1e-8, "B")
	}
	a0 := vals(t, gs.X0[0])
	for i := range a0 {
		a0[i] /= math.Sqrt(1.3)
	}
	assert.LessOrEqual(t, relErr(vals(t, gg.Q[0][0]), a0), 1e-8, "q(t0) = a(t0)/√T")
}

// bruteForceFactors samples the field's statistics at every grid point from
// independently computed states: x(t_j) by a forward solve to t_j and a(t_j)
// by a plain adjoint pass from the later observation times; then sums
// w_j·A(t_j) and w_j·B(t_j)/(t1−t0) on the host.
func bruteForceFactors(t *testing.T, b *Block, f field.Field, x0 *tensors.Tensor, ts []float64,
	cot [][]*tensors.Tensor, intervals int) (as, bs [][]float64) {
	span := math.Abs(ts[len(ts)-1] - ts[0])
	exec := context.MustNewExec(testutil.Backend(), b.ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
		res := f.VJP(ctx, in[0], []*Node{in[1]}, []*Node{InsertAxes(in[2], 0)},
			field.Request{Copies: 1, Stats: &field.StatsRequest{From: 0, To: 1, Scale: 1 / math.Sqrt(span)}})
		var out []*Node
		for _, st := range res.Stats {
			out = append(out, st.A, st.B)
		}
		return out
	})
	for _, pt := range grid(ts[0], ts[len(ts)-1], intervals) {
		var x, a *tensors.Tensor
		if pt.t == ts[0] {
			x = x0
		} else {
			tr, err := b.Forward([]*tensors.Tensor{x0}, []float64{ts[0], pt.t})
			require.NoError(t, err)
			x = tr.Final()[0]
		}
		// Observation times after t_j (strictly), and the end.
		later := []float64{pt.t}
		laterCot := [][]*tensors.Tensor{nil}
		for k := 1; k < len(ts); k++ {
			if (ts[k]-pt.t)*(ts[len(ts)-1]-ts[0]) > 1e-12 {
				later = append(later, ts[k])
				laterCot = append(laterCot, cot[k])
			}
		}
		if len(later) == 1 {
			a = cot[len(cot)-1][0] // t_j is the end time
		} else {
			tr, err := b.Forward([]*tensors.Tensor{x}, later)
			require.NoError(t, err)
			g, err := b.Backward(tr, laterCot, nil)
			require.NoError(t, err)
			a = g.X0[0]
		}
		out := exec.MustExec(tensors.FromScalar(pt.t), x, a)
		if as == nil {
			as, bs = make([][]float64, len(out)/2), make([][]float64, len(out)/2)
		}
		for l := range as {
			av, bv := vals(t, out[2*l]), vals(t, out[2*l+1])
			if as[l] == nil {
				as[l], bs[l] = make([]float64, len(av)), make([]float64, len(bv))
			}
			for i := range av {
				as[l][i] += pt.w * av[i]
			}
			for i := range bv {
				bs[l][i] += pt.w * bv[i]
			}
		}
	}
	return
}

// TestKroneckerFactorsMatchBruteForce: Ā_n, B̄_n accumulated by Backward
// equal the brute-force grid sums, for Linear, Conv2D and ConcatSquashLinear
// fields, with one and several observation times, and two Backward calls add up.
func TestKroneckerFactorsMatchBruteForce(t *testing.T) {
	cases := []struct {
		name string
		f    field.Field
		dims []int
		ts   []float64
	}{
		{"linear", mlpField(3, 4, true), []int{3, 3}, []float64{0, 0.45, 1}},
		{"conv2d", field.NewSequential(
			&field.Conv2D{Name: "c0", Out: 3, Kernel: 3, Stride: 1, Padding: 1, ConcatTime: true}, field.NewTanh(),
			&field.Conv2D{Name: "c1", Out: 2, Kernel: 3, Stride: 1, Padding: 1, ConcatTime: true}),
			[]int{2, 4, 4, 2}, []float64{0, 0.8}},
		{"concat squash", field.NewSequential(
			&field.ConcatSquashLinear{Name: "s0", Out: 4}, field.NewTanh(), &field.ConcatSquashLinear{Name: "s1", Out: 2}),
			[]int{3, 2}, []float64{0.2, 0.5, 0.9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(51, 52))
			ctx := newCtx(17, 0.5)
			const intervals = 6
			b := newBlock(t, ctx, c.f, &Options{Forward: tolOpts(1e-10), GridIntervals: intervals})
			x0 := randn(rng, c.dims...)
			tr, err := b.Forward([]*tensors.Tensor{x0}, c.ts)
			require.NoError(t, err)
			cot := make([][]*tensors.Tensor, len(c.ts))
			for k := 1; k < len(c.ts); k++ {
				cot[k] = []*tensors.Tensor{randn(rng, c.dims...)}
			}
			var st Stats
			_, err = b.Backward(tr, cot, &BackwardOptions{Stats: &st})
			require.NoError(t, err)
			as, bs := bruteForceFactors(t, b, c.f, x0, c.ts, cot, intervals)
			require.Len(t, st.Layers, len(as))
			assert.Equal(t, intervals+1, st.Samples)
			for l := range as {
				ea, eb := relErr(vals(t, st.Layers[l].A), as[l]), relErr(vals(t, st.Layers[l].B), bs[l])
				t.Logf("%s: A rel err %.2e, B rel err %.2e", st.Layers[l].Layer, ea, eb)
				assert.LessOrEqual(t, ea, 1e-6, "A of %s", st.Layers[l].Layer)
				assert.LessOrEqual(t, eb, 1e-6, "B of %s", st.Layers[l].Layer)
			}
			// A second backward pass adds to the same statistics.
			first := vals(t, st.Layers[0].A)
			_, err = b.Backward(tr, cot, &BackwardOptions{Stats: &st})
			require.NoError(t, err)
			doubled := vals(t, st.Layers[0].A)
			for i := range first {
				first[i] *= 2
			}
			assert.LessOrEqual(t, relErr(doubled, first), 1e-12)
			assert.Equal(t, 2*(intervals+1), st.Samples)
			st.Reset()
			assert.Empty(t, st.Layers)
		})
	}
}

// TestPerCallGridOverridesTheBlocks: BackwardOptions.GridIntervals replaces
// the block's grid for one call — the factors equal a block built with that
// grid — and the next call without it uses the block's again.
func TestPerCallGridOverridesTheBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	f := mlpField(3, 4, true)
	x0 := randn(rng, 3, 3)
	ts := []float64{0, 0.7}
	cot := [][]*tensors.Tensor{nil, {randn(rng, 3, 3)}}
	run := func(blockIntervals, callIntervals int) *Stats {
		b := newBlock(t, newCtx(17, 0.5), f, &Options{Forward: tolOpts(1e-10), GridIntervals: blockIntervals})
		tr, err := b.Forward([]*tensors.Tensor{x0}, ts)
		require.NoError(t, err)
		var st Stats
		_, err = b.Backward(tr, cot, &BackwardOptions{Stats: &st, GridIntervals: callIntervals})
		require.NoError(t, err)
		return &st
	}
	over, native := run(10, 3), run(3, 0)
	assert.Equal(t, 4, over.Samples)
	require.Len(t, over.Layers, len(native.Layers))
	for l := range over.Layers {
		assert.LessOrEqual(t, relErr(vals(t, over.Layers[l].A), vals(t, native.Layers[l].A)), 1e-12)
		assert.LessOrEqual(t, relErr(vals(t, over.Layers[l].B), vals(t, native.Layers[l].B)), 1e-12)
	}
	assert.Equal(t, 11, run(10, 0).Samples)
}

// TestBackwardFirstStepKeepsGradients: a backward pass started from a given
// first step (a carried one) returns the same gradients, to the solver's
// tolerance, as one with the automatic selection; a negative one is an error.
func TestBackwardFirstStepKeepsGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	b := newBlock(t, newCtx(17, 0.5), mlpField(3, 4, true), &Options{Forward: tolOpts(1e-10)})
	x0 := randn(rng, 3, 3)
	tr, err := b.ForwardFrom([]*tensors.Tensor{x0}, []float64{0, 0.7}, 0.05)
	require.NoError(t, err)
	require.Positive(t, tr.Stats.NextStep)
	cot := [][]*tensors.Tensor{nil, {randn(rng, 3, 3)}}
	auto, err := b.Backward(tr, cot, nil)
	require.NoError(t, err)
	carried, err := b.Backward(tr, cot, &BackwardOptions{FirstStep: tr.Stats.NextStep})
	require.NoError(t, err)
	t.Logf("backward NFE: automatic first step %d, carried %d", auto.Solve.NFE, carried.Solve.NFE)
	assert.LessOrEqual(t, relErr(vals(t, carried.X0[0]), vals(t, auto.X0[0])), 1e-7)
	for name, g := range auto.Params {
		assert.LessOrEqual(t, relErr(vals(t, carried.Params[name]), vals(t, g)), 1e-7, name)
	}
	_, err = b.Backward(tr, cot, &BackwardOptions{FirstStep: -1})
	assert.Error(t, err)
}

// TestTwoBlocksShareOneStats: two ODE blocks (same layer names, other
// scopes, here also the same layer shapes — the case that used to add one
// block's factors into the other's by position) accumulating into one
// Stats keep each block's factors under its own weights, equal to what
// each block collects alone; a block's second pass adds to its own.
func TestTwoBlocksShareOneStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	ctx := newCtx(19, 0.5)
	b1 := newBlock(t, ctx.In("ode1"), mlpField(3, 4, true), &Options{Forward: tolOpts(1e-9), GridIntervals: 4})
	b2 := newBlock(t, ctx.In("ode2"), mlpField(3, 4, true), &Options{Forward: tolOpts(1e-9), GridIntervals: 4})
	x0 := randn(rng, 2, 3)
	run := func(b *Block, st *Stats) {
		tr, err := b.Forward([]*tensors.Tensor{x0}, []float64{0, 0.6})
		require.NoError(t, err)
		_, err = b.Backward(tr, [][]*tensors.Tensor{nil, {x0}}, &BackwardOptions{Stats: st})
		require.NoError(t, err)
	}
	var alone1, alone2, shared Stats
	run(b1, &alone1)
	run(b2, &alone2)
	run(b1, &shared)
	run(b2, &shared)
	require.Len(t, shared.Layers, 4)
	for _, alone := range []*Stats{&alone1, &alone2} {
		for _, l := range alone.Layers {
			j := findLayer(&shared, l.Weights)
			require.GreaterOrEqual(t, j, 0, l.Weights)
			assert.Equal(t, l.Layer, shared.Layers[j].Layer)
			assert.LessOrEqual(t, relErr(vals(t, shared.Layers[j].A), vals(t, l.A)), 1e-12, "A of %s", l.Weights)
			assert.LessOrEqual(t, relErr(vals(t, shared.Layers[j].B), vals(t, l.B)), 1e-12, "B of %s", l.Weights)
		}
	}
	// The second pass of block 1 doubles its factors and leaves block 2's alone.
	run(b1, &shared)
	for _, l := range alone1.Layers {
		twice := vals(t, l.A)
		for i := range twice {
			twice[i] *= 2
		}
		assert.LessOrEqual(t, relErr(vals(t, shared.Layers[findLayer(&shared, l.Weights)].A), twice), 1e-12, l.Weights)
	}
	for _, l := range alone2.Layers {
		assert.LessOrEqual(t, relErr(vals(t, shared.Layers[findLayer(&shared, l.Weights)].A), vals(t, l.A)), 1e-12, l.Weights)
	}
}

// findLayer is the position of the layer with the given weights in st, or −1.
func findLayer(st *Stats, weights string) int {
	for i, l := range st.Layers {
		if l.Weights == weights {
			return i
		}
	}
	return -1
}

// TestSharedGridCountsEveryPointOnce: two Backward calls on [0.4, 1] and
// [0, 0.4] (the cotangent carried from one to the other) with one shared
// Grid over [0, 1] collect the same factors from the same 6 points as one
// call over [0, 1] with 5 grid intervals; the shared point 0.4 counts once.
func TestSharedGridCountsEveryPointOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(59, 60))
	b := newBlock(t, newCtx(23, 0.5), mlpField(3, 4, true), &Options{Forward: tolOpts(1e-11), GridIntervals: 5})
	x0, c1 := randn(rng, 2, 3), randn(rng, 2, 3)
	whole, err := b.Forward([]*tensors.Tensor{x0}, []float64{0, 1})
	require.NoError(t, err)
	var one Stats
	_, err = b.Backward(whole, [][]*tensors.Tensor{nil, {c1}}, &BackwardOptions{Stats: &one})
	require.NoError(t, err)

	first, err := b.Forward([]*tensors.Tensor{x0}, []float64{0, 0.4})
	require.NoError(t, err)
	second, err := b.Forward(first.Final(), []float64{0.4, 1})
	require.NoError(t, err)
	grid := &Grid{T0: 0, T1: 1, Intervals: 5}
	var two Stats
	g2, err := b.Backward(second, [][]*tensors.Tensor{nil, {c1}}, &BackwardOptions{Stats: &two, Grid: grid})
	require.NoError(t, err)
	_, err = b.Backward(first, [][]*tensors.Tensor{nil, {g2.X0[0]}}, &BackwardOptions{Stats: &two, Grid: grid})
	require.NoError(t, err)
	assert.Equal(t, 6, one.Samples)
	assert.Equal(t, 6, two.Samples, "0.4 is sampled by one of the two calls only")
	require.Len(t, two.Layers, len(one.Layers))
	for l := range one.Layers {
		assert.LessOrEqual(t, relErr(vals(t, two.Layers[l].A), vals(t, one.Layers[l].A)), 1e-7, "A of %s", one.Layers[l].Layer)
		assert.LessOrEqual(t, relErr(vals(t, two.Layers[l].B), vals(t, one.Layers[l].B)), 1e-7, "B of %s", one.Layers[l].Layer)
	}
	_, err = b.Backward(first, [][]*tensors.Tensor{nil, {c1}}, &BackwardOptions{Stats: &two, Grid: &Grid{T0: 0, T1: 1}})
	assert.ErrorIs(t, err, ErrInvalidInput)
}

// TestStatsBatchEstimatesTheBatchMeans: on a batch made of the first m rows
// repeated, statistics from the first m samples (StatsBatch = m) equal the
// whole batch's: the sub-batch's means are the batch means there, and its
// cotangents must be rescaled to the whole batch. On a batch of distinct rows
// they differ.
func TestStatsBatchEstimatesTheBatchMeans(t *testing.T) {
	const m, reps, d = 2, 3, 3
	rng := rand.New(rand.NewPCG(5, 6))
	first, cot0 := vals(t, randn(rng, m, d)), vals(t, randn(rng, m, d))
	var xs, cs []float64
	for range reps {
		xs, cs = append(xs, first...), append(cs, cot0...)
	}
	x0 := tensors.FromFlatDataAndDimensions(xs, m*reps, d)
	cot := [][]*tensors.Tensor{nil, {tensors.FromFlatDataAndDimensions(cs, m*reps, d)}}
	distinct := randn(rng, m*reps, d)
	factors := func(statsBatch int, x *tensors.Tensor) []LayerFactors {
		b := newBlock(t, newCtx(13, 0.6), mlpField(d, 5, true),
			&Options{Forward: tolOpts(1e-10), GridIntervals: 6, StatsBatch: statsBatch})
		tr, err := b.Forward([]*tensors.Tensor{x}, []float64{0, 0.9})
		require.NoError(t, err)
		var st Stats
		_, err = b.Backward(tr, cot, &BackwardOptions{Stats: &st})
		require.NoError(t, err)
		return st.Layers
	}
	full, sub := factors(0, x0), factors(m, x0)
	require.Len(t, sub, len(full))
	for i := range full {
		assert.InDeltaSlice(t, vals(t, full[i].A), vals(t, sub[i].A), 1e-10, "A of %s", full[i].Layer)
		assert.InDeltaSlice(t, vals(t, full[i].B), vals(t, sub[i].B), 1e-10, "B of %s", full[i].Layer)
	}
	fullD, subD := factors(0, distinct), factors(m, distinct)
	assert.NotEqual(t, vals(t, fullD[0].A), vals(t, subD[0].A))
	_, err := NewBlock(testutil.Backend(), newCtx(1, 1), mlpField(d, 5, true), &Options{StatsBatch: -1})
	assert.ErrorIs(t, err, ErrInvalidInput)
}
