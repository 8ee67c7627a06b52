package field

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

var (
	randn  = testutil.RandN
	values = testutil.Float64s
)

func assertClose(t *testing.T, want, got []float64, rel float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(want[i]-got[i]))
	}
	assert.LessOrEqualf(t, worst, rel*math.Max(scale, 1e-12), "%s: max abs diff %g (scale %g)", msg, worst, scale)
}

// newCtx returns a context whose variables start random (biases too), so
// every parameter cotangent is exercised.
func newCtx(seed uint64) *context.Context {
	ctx := context.New()
	ctx.SetRNGStateFromSeed(int64(seed))
	return ctx.WithInitializer(initializers.RandomNormalFn(ctx, 0.5))
}

// compareWithAutodiff checks the hand-written VJP of f against GoMLX
// autodiff, for K stacked cotangents, including parameter cotangents.
func compareWithAutodiff(t *testing.T, f *Sequential, xDims []int, k int) {
	rng := rand.New(rand.NewPCG(7, 11))
	ctx := newCtx(3)
	x := randn(rng, xDims...)
	tVal := tensors.FromScalar(0.37)
	// Output shape: evaluate once.
	outs := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, tt, x *Node) *Node {
		return f.Eval(ctx, tt, []*Node{x})[0]
	}).MustExec(tVal, x)
	outDims := outs[0].Shape().Dimensions
	v := randn(rng, append([]int{k}, outDims...)...)

	var names []string
	exec := context.MustNewExec(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
		tt, xn, vn := in[0], in[1], in[2]
		req := Request{Copies: k, ParamCopies: k}
		hand := f.VJP(ctx, tt, []*Node{xn}, []*Node{vn}, req)
		auto := Autodiff(autodiffSafe(f).Eval).VJP(ctx, tt, []*Node{xn}, []*Node{vn}, req)
		res := []*Node{hand.F[0], auto.F[0], hand.VX[0], auto.VX[0]}
		names = names[:0]
		for c := range k {
			for name, g := range auto.VTheta[c] {
				names = append(names, fmt.Sprintf("%s (copy %d)", name, c))
				require.Containsf(t, hand.VTheta[c], name, "hand-written VJP misses %s", name)
				res = append(res, hand.VTheta[c][name], g)
			}
		}
		return res
	})
	res := exec.MustExec(tVal, x, v)
	assertClose(t, values(t, res[1]), values(t, res[0]), 1e-12, "F")
	assertClose(t, values(t, res[3]), values(t, res[2]), 1e-10, "vᵀ∂F/∂x")
	require.NotEmpty(t, names)
	for i, name := range names {
		assertClose(t, values(t, res[5+2*i]), values(t, res[4+2*i]), 1e-10, "vᵀ∂F/∂θ "+name)
	}
}

// autodiffSafe is f with every convolution on its gather path, which GoMLX
// autodiff can differentiate (same variables, same values).
func autodiffSafe(f *Sequential) *Sequential {
	out := &Sequential{}
	for _, l := range f.Layers {
		if c, ok := l.(*Conv2D); ok {
			cp := *c
			cp.AutodiffSafe = true
			l = &cp
		}
		out.Layers = append(out.Layers, l)
	}
	return out
}

func TestLinearVJPMatchesAutodiff(t *testing.T) {
	f := NewSequential(&Linear{Name: "l0", Out: 5, ConcatTime: true}, NewTanh(),
		&Linear{Name: "l1", Out: 3}, NewSoftplus(), &Linear{Name: "l2", Out: 4, ConcatTime: true, NoBias: true})
	compareWithAutodiff(t, f, []int{6, 4}, 3)
}

func TestReLUVJPMatchesAutodiff(t *testing.T) {
	f := NewSequential(&Linear{Name: "l0", Out: 7}, NewReLU(), &Linear{Name: "l1", Out: 3})
	compareWithAutodiff(t, f, []int{5, 3}, 1)
}

func TestConv2DVJPMatchesAutodiff(t *testing.T) {
	f := NewSequential(
		&Conv2D{Name: "c0", Out: 4, Kernel: 3, Stride: 1, Padding: 1, ConcatTime: true}, NewTanh(),
		&Conv2D{Name: "c1", Out: 2, Kernel: 2, Stride: 2, Padding: 0})
	compareWithAutodiff(t, f, []int{2, 5, 5, 3}, 2)
}

func TestConcatSquashVJPMatchesAutodiff(t *testing.T) {
	f := NewSequential(&ConcatSquashLinear{Name: "s0", Out: 6}, NewTanh(), &ConcatSquashLinear{Name: "s1", Out: 2})
	compareWithAutodiff(t, f, []int{5, 2}, 2)
}

func TestPoolHeadVJPMatchesAutodiff(t *testing.T) {
	f := NewSequential(&Conv2D{Name: "c0", Out: 3, Kernel: 3, Stride: 1, Padding: 1, NoBias: true}, NewReLU(),
		GlobalAvgPool{}, &Linear{Name: "fc", Out: 4})
	compareWithAutodiff(t, f, []int{2, 4, 4, 2}, 2)
}

// TestStride1ConvGeometries: the shifted-patch forward and the flipped-kernel
// VJP against the gather path under autodiff, for paddings below, at and above
// (K−1)/2 on a non-square input.
func TestStride1ConvGeometries(t *testing.T) {
	f := NewSequential(
		&Conv2D{Name: "a", Out: 3, Kernel: 2, Stride: 1, Padding: 0, ConcatTime: true}, NewTanh(),
		&Conv2D{Name: "b", Out: 4, Kernel: 3, Stride: 1, Padding: 2}, NewTanh(),
		&Conv2D{Name: "c", Out: 2, Kernel: 3, Stride: 1, Padding: 1, NoBias: true})
	compareWithAutodiff(t, f, []int{2, 5, 4, 3}, 2)
}
