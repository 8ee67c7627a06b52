package zoo

import (
	"fmt"
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

var randT = testutil.RandN

func flat(x *tensors.Tensor) []float64 { return tensors.MustCopyFlatData[float64](x) }

func maxRel(t *testing.T, want, got []float64) float64 {
	require.Equal(t, len(want), len(got))
	scale, worst := 1e-12, 0.0
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		worst = math.Max(worst, math.Abs(want[i]-got[i]))
	}
	return worst / scale
}

// TestHyperCNFVJPMatchesAutodiff: the hand-written VJP (trace term and
// HyperNet included) equals autodiff of the same field, for stacked copies.
func TestHyperCNFVJPMatchesAutodiff(t *testing.T) {
	f := &HyperCNF{Dim: 2, Width: 6, Hidden: 5}
	rng := rand.New(rand.NewPCG(1, 2))
	const b, k = 4, 3
	z, lp := randT(rng, b, 2), randT(rng, b, 1)
	vz, vl := randT(rng, k, b, 2), randT(rng, k, b, 1)
	ctx := context.New()
	var names []string
	exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, in []*Node) []*Node {
		tt := Scalar(in[0].Graph(), in[0].DType(), 0.7)
		req := field.Request{Copies: k, ParamCopies: 2}
		hand := f.VJP(ctx, tt, in[0:2], in[2:4], req)
		auto := field.Autodiff(f.Eval).VJP(ctx, tt, in[0:2], in[2:4], req)
		out := []*Node{hand.F[0], auto.F[0], hand.F[1], auto.F[1], hand.VX[0], auto.VX[0]}
		names = names[:0]
		for c := range 2 {
			for name, g := range auto.VTheta[c] {
				names = append(names, fmt.Sprintf("%s#%d", name, c))
				require.Contains(t, hand.VTheta[c], name)
				out = append(out, hand.VTheta[c][name], g)
			}
		}
		return out
	})
	res := exec.MustExec(z, lp, vz, vl)
	for i := 0; i < len(res); i += 2 {
		label := []string{"dz", "dlogp", "vᵀF_z"}
		name := ""
		if i/2 < 3 {
			name = label[i/2]
		} else {
			name = names[i/2-3]
		}
		assert.LessOrEqualf(t, maxRel(t, flat(res[i+1]), flat(res[i])), 1e-10, "%s", name)
	}
	assert.Len(t, names, 24, "12 variables × 2 copies")
}

// TestHyperCNFTraceIsJacobianTrace: d logp/dt = −tr ∂(dz/dt)/∂z by central differences.
func TestHyperCNFTraceIsJacobianTrace(t *testing.T) {
	f := &HyperCNF{Dim: 2, Width: 8, Hidden: 4}
	rng := rand.New(rand.NewPCG(3, 4))
	z := flat(randT(rng, 3, 2))
	ctx := context.New()
	exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, zn, lp *Node) (*Node, *Node) {
		out := f.Eval(ctx, Scalar(zn.Graph(), zn.DType(), 1.3), []*Node{zn, lp})
		return out[0], out[1]
	})
	lp := tensors.FromFlatDataAndDimensions(make([]float64, 3), 3, 1)
	dz, dlogp := exec.MustExec2(tensors.FromFlatDataAndDimensions(z, 3, 2), lp)
	_ = dz
	const h = 1e-6
	for s := range 3 {
		tr := 0.0
		for i := range 2 {
			p, m := append([]float64{}, z...), append([]float64{}, z...)
			p[2*s+i] += h
			m[2*s+i] -= h
			fp, _ := exec.MustExec2(tensors.FromFlatDataAndDimensions(p, 3, 2), lp)
			fm, _ := exec.MustExec2(tensors.FromFlatDataAndDimensions(m, 3, 2), lp)
			tr += (flat(fp)[2*s+i] - flat(fm)[2*s+i]) / (2 * h)
		}
		assert.InDelta(t, -tr, flat(dlogp)[s], 1e-7, "sample %d", s)
	}
}
