package field

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// statsOf runs a single-layer field's VJP with statistics and returns the
// layer's A and B factors, plus the variable values.
func statsOf(t *testing.T, layer Layer, x, v *tensors.Tensor, tVal float64, req Request) (a, b []float64, ctx *context.Context) {
	ctx = newCtx(5)
	f := NewSequential(layer)
	exec := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, in []*Node) []*Node {
		r := f.VJP(ctx, in[0], []*Node{in[1]}, []*Node{in[2]}, req)
		require.Len(t, r.Stats, 1)
		return []*Node{r.Stats[0].A, r.Stats[0].B}
	})
	res := exec.MustExec(tensors.FromScalar(tVal), x, v)
	return values(t, res[0]), values(t, res[1]), ctx
}

// outer accumulates scale·u·uᵀ into m (n×n, row-major).
func outer(m []float64, u []float64, scale float64) {
	n := len(u)
	for i := range n {
		for j := range n {
			m[i*n+j] += scale * u[i] * u[j]
		}
	}
}

func varValues(t *testing.T, ctx *context.Context, scope, name string) []float64 {
	v := ctx.InspectVariable(scope, name)
	require.NotNil(t, v, scope+"/"+name)
	val, err := v.Value()
	require.NoError(t, err)
	return values(t, val)
}

// TestLinearStatsMatchBruteForce: A = mean_b z̃z̃ᵀ with z̃ = [x, t, 1];
// B = mean_b Σ_{i∈copies} g gᵀ with g = batch·scale·v_i.
func TestLinearStatsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const batch, in, out, k = 4, 3, 2, 3
	x, v := randn(rng, batch, in), randn(rng, k, batch, out)
	tVal, scale := 0.6, 0.7
	req := Request{Copies: k, Stats: &StatsRequest{From: 1, To: 3, Scale: scale}}
	a, b, _ := statsOf(t, &Linear{Name: "lin", Out: out, ConcatTime: true}, x, v, tVal, req)
	xs, vs := values(t, x), values(t, v)
	wantA := make([]float64, (in+2)*(in+2))
	for s := range batch {
		outer(wantA, append(append([]float64{}, xs[s*in:(s+1)*in]...), tVal, 1), 1.0/batch)
	}
	wantB := make([]float64, out*out)
	for c := 1; c < 3; c++ {
		for s := range batch {
			g := make([]float64, out)
			for o := range out {
				g[o] = batch * scale * vs[(c*batch+s)*out+o]
			}
			outer(wantB, g, 1.0/batch)
		}
	}
	assertClose(t, wantA, a, 1e-12, "A")
	assertClose(t, wantB, b, 1e-12, "B")
}

// TestConv2DStatsMatchBruteForce: A over patches (mean over batch and
// locations of p̃p̃ᵀ, p̃ = [patch, 1]), B over locations (mean of g gᵀ).
func TestConv2DStatsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const batch, h, w, c, out, kern, stride, pad, k = 2, 4, 5, 2, 3, 3, 2, 1, 2
	ho, wo := (h+2*pad-kern)/stride+1, (w+2*pad-kern)/stride+1
	x, v := randn(rng, batch, h, w, c), randn(rng, k, batch, ho, wo, out)
	tVal := -0.4
	req := Request{Copies: k, Stats: &StatsRequest{From: 0, To: k, Scale: 1}}
	layer := &Conv2D{Name: "conv", Out: out, Kernel: kern, Stride: stride, Padding: pad, ConcatTime: true}
	a, b, _ := statsOf(t, layer, x, v, tVal, req)
	xs, vs := values(t, x), values(t, v)
	cc := c + 1 // with the time channel
	p := kern*kern*cc + 1
	wantA := make([]float64, p*p)
	locs := float64(ho * wo)
	for s := range batch {
		for oi := range ho {
			for oj := range wo {
				patch := make([]float64, 0, p)
				for di := range kern {
					for dj := range kern {
						r, col := oi*stride-pad+di, oj*stride-pad+dj
						for ch := range cc {
							val := 0.0
							if r >= 0 && r < h && col >= 0 && col < w {
								if ch == c {
									val = tVal
								} else {
									val = xs[((s*h+r)*w+col)*c+ch]
								}
							}
							patch = append(patch, val)
						}
					}
				}
				outer(wantA, append(patch, 1), 1/(batch*locs))
			}
		}
	}
	wantB := make([]float64, out*out)
	for i := range k * batch * ho * wo {
		g := make([]float64, out)
		for o := range out {
			g[o] = batch * vs[i*out+o]
		}
		outer(wantB, g, 1/(batch*locs))
	}
	assertClose(t, wantA, a, 1e-12, "A")
	assertClose(t, wantB, b, 1e-12, "B")
}

// TestConcatSquashStatsMatchBruteForce: the linear map's factors, with g the
// cotangent of h = x·W + b, i.e. v ⊙ sigmoid(t·W_g + b_g).
func TestConcatSquashStatsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const batch, in, out, k = 3, 2, 4, 1
	x, v := randn(rng, batch, in), randn(rng, k, batch, out)
	tVal := 1.3
	req := Request{Copies: k, Stats: &StatsRequest{From: 0, To: 1, Scale: 0.5}}
	a, b, ctx := statsOf(t, &ConcatSquashLinear{Name: "csl", Out: out}, x, v, tVal, req)
	gw := varValues(t, ctx, "/csl", "gate_weights")
	gb := varValues(t, ctx, "/csl", "gate_biases")
	xs, vs := values(t, x), values(t, v)
	wantA := make([]float64, (in+1)*(in+1))
	for s := range batch {
		outer(wantA, append(append([]float64{}, xs[s*in:(s+1)*in]...), 1), 1.0/batch)
	}
	wantB := make([]float64, out*out)
	for s := range batch {
		g := make([]float64, out)
		for o := range out {
			gate := 1 / (1 + math.Exp(-(tVal*gw[o] + gb[o])))
			g[o] = batch * 0.5 * vs[s*out+o] * gate
		}
		outer(wantB, g, 1.0/batch)
	}
	assertClose(t, wantA, a, 1e-12, "A")
	assertClose(t, wantB, b, 1e-12, "B")
}
