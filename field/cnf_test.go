package field

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

	"github.com/snopt-go/snopt/internal/testutil"
)

// testCNF is a 3-layer CNF field D → 7 → 4 → D.
func testCNF(d int, act *Activation, mode TraceMode) *CNF {
	return &CNF{Layers: []*ConcatSquashLinear{{Name: "c0", Out: 7}, {Name: "c1", Out: 4}, {Name: "c2", Out: d}},
		Act: act, Trace: mode}
}

// rademacher returns a [n, d] tensor of ±1.
func rademacher(rng *rand.Rand, n, d int) *tensors.Tensor {
	v := make([]float64, n*d)
	for i := range v {
		v[i] = float64(2*rng.IntN(2) - 1)
	}
	return tensors.FromFlatDataAndDimensions(v, n, d)
}

// cnfState is (z, logp[, ε]) for the mode.
func cnfState(rng *rand.Rand, n, d int, mode TraceMode) []*tensors.Tensor {
	x := []*tensors.Tensor{randn(rng, n, d), randn(rng, n, 1)}
	if mode == Hutchinson {
		x = append(x, rademacher(rng, n, d))
	}
	return x
}

func evalCNF(t *testing.T, ctx *context.Context, f *CNF, tVal float64, x []*tensors.Tensor) [][]float64 {
	exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, in []*Node) []*Node {
		return f.Eval(ctx, in[0], in[1:])
	})
	args := []any{tensors.FromScalar(tVal)}
	for _, xi := range x {
		args = append(args, xi)
	}
	var out [][]float64
	for _, r := range exec.MustExec(args...) {
		out = append(out, values(t, r))
	}
	return out
}

// TestCNFVJPMatchesAutodiff: the hand-written VJP of the augmented field
// (the trace term's σ″ path included) against GoMLX autodiff of Eval, for
// every cotangent copy, both trace modes and both activations.
func TestCNFVJPMatchesAutodiff(t *testing.T) {
	const n, d, k = 5, 3, 3
	for _, mode := range []TraceMode{Hutchinson, ExactTrace} {
		for _, act := range []*Activation{NewTanh(), NewSoftplus()} {
			t.Run(fmt.Sprintf("%s/%s", mode, act.Name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, uint64(mode)))
				f := testCNF(d, act, mode)
				ctx := newCtx(9)
				x := cnfState(rng, n, d, mode)
				var v []*tensors.Tensor
				for _, xi := range x {
					v = append(v, randn(rng, append([]int{k}, xi.Shape().Dimensions...)...))
				}
				var names []string
				exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, in []*Node) []*Node {
					m := len(x)
					tt, xs, vs := in[0], in[1:1+m], in[1+m:]
					req := Request{Copies: k, ParamCopies: 2}
					hand := f.VJP(ctx, tt, xs, vs, req)
					auto := Autodiff(f.Eval).VJP(ctx, tt, xs, vs, req)
					var res []*Node
					for j := range xs {
						res = append(res, hand.F[j], auto.F[j], hand.VX[j], auto.VX[j])
					}
					names = names[:0]
					for c := range req.ParamCopies {
						for name, g := range auto.VTheta[c] {
							names = append(names, fmt.Sprintf("%s (copy %d)", name, c))
							require.Containsf(t, hand.VTheta[c], name, "hand-written VJP misses %s", name)
							res = append(res, hand.VTheta[c][name], g)
						}
						require.Len(t, hand.VTheta[c], len(auto.VTheta[c]))
					}
					return res
				})
				args := []any{tensors.FromScalar(0.43)}
				for _, xi := range append(append([]*tensors.Tensor{}, x...), v...) {
					args = append(args, xi)
				}
				res := exec.MustExec(args...)
				for j := range x {
					assertClose(t, values(t, res[4*j+1]), values(t, res[4*j]), 1e-12, fmt.Sprintf("F[%d]", j))
					if j == 2 { // the probe is a constant of the solve: no cotangent
						for _, g := range values(t, res[4*j+2]) {
							require.Zero(t, g, "vᵀ∂F/∂ε")
						}
						continue
					}
					assertClose(t, values(t, res[4*j+3]), values(t, res[4*j+2]), 1e-10, fmt.Sprintf("vᵀ∂F/∂x[%d]", j))
				}
				require.Len(t, names, 2*5*3) // 5 variables per layer, 3 layers, 2 copies
				off := 4 * len(x)
				for i, name := range names {
					assertClose(t, values(t, res[off+2*i+1]), values(t, res[off+2*i]), 1e-10, "vᵀ∂F/∂θ "+name)
				}
			})
		}
	}
}

// TestCNFVJPMatchesFiniteDifferences: aᵀ∂F/∂z and aᵀ∂F/∂W of the augmented
// field (dz and d logp) against central differences in float64.
func TestCNFVJPMatchesFiniteDifferences(t *testing.T) {
	const n, d, eps = 4, 3, 1e-6
	rng := rand.New(rand.NewPCG(5, 8))
	f := testCNF(d, NewSoftplus(), Hutchinson)
	ctx := newCtx(4)
	x := cnfState(rng, n, d, Hutchinson)
	az, al := randn(rng, 1, n, d), randn(rng, 1, n, 1)
	zeroEps := tensors.FromFlatDataAndDimensions(make([]float64, n*d), 1, n, d)
	exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, in []*Node) []*Node {
		r := f.VJP(ctx, in[0], in[1:4], in[4:7], Request{Copies: 1, ParamCopies: 1})
		return []*Node{r.VX[0], r.VTheta[0]["/c1/weights"], r.VTheta[0]["/c0/gate_weights"]}
	})
	res := exec.MustExec(tensors.FromScalar(0.3), x[0], x[1], x[2], az, al, zeroEps)
	azv, alv := values(t, az), values(t, al)
	loss := func() float64 { // aᵀF = Σ a_z·dz + Σ a_l·dlogp
		out := evalCNF(t, ctx, f, 0.3, x)
		s := 0.0
		for i, v := range out[0] {
			s += azv[i] * v
		}
		for i, v := range out[1] {
			s += alv[i] * v
		}
		return s
	}
	// Perturb z.
	zv := values(t, x[0])
	gz := make([]float64, len(zv))
	for i := range zv {
		orig := zv[i]
		zv[i] = orig + eps
		x[0] = tensors.FromFlatDataAndDimensions(append([]float64{}, zv...), n, d)
		up := loss()
		zv[i] = orig - eps
		x[0] = tensors.FromFlatDataAndDimensions(append([]float64{}, zv...), n, d)
		gz[i] = (up - loss()) / (2 * eps)
		zv[i] = orig
	}
	x[0] = tensors.FromFlatDataAndDimensions(zv, n, d)
	assertClose(t, gz, values(t, res[0]), 1e-7, "aᵀ∂F/∂z")
	// Perturb two variables in place.
	for i, name := range []string{"c1/weights", "c0/gate_weights"} {
		scope, vname := "/"+name[:2], name[3:]
		v := ctx.InspectVariable(scope, vname)
		require.NotNil(t, v, name)
		val, err := v.Value()
		require.NoError(t, err)
		w := values(t, val)
		dims := val.Shape().Dimensions
		g := make([]float64, len(w))
		for j := range w {
			orig := w[j]
			w[j] = orig + eps
			require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(append([]float64{}, w...), dims...)))
			up := loss()
			w[j] = orig - eps
			require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(append([]float64{}, w...), dims...)))
			g[j] = (up - loss()) / (2 * eps)
			w[j] = orig
		}
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(w, dims...)))
		assertClose(t, g, values(t, res[1+i]), 1e-7, "aᵀ∂F/∂"+name)
	}
}

// jacobianTrace is tr ∂F/∂z of row r by central differences of dz.
func jacobianTrace(t *testing.T, ctx *context.Context, f *CNF, z []float64, d int) float64 {
	const eps = 1e-6
	row := func(z []float64) []float64 {
		x := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(append([]float64{}, z...), 1, d),
			tensors.FromFlatDataAndDimensions([]float64{0}, 1, 1)}
		return evalCNF(t, ctx, f, 0.7, x)[0]
	}
	tr := 0.0
	for j := range d {
		zp, zm := append([]float64{}, z...), append([]float64{}, z...)
		zp[j] += eps
		zm[j] -= eps
		tr += (row(zp)[j] - row(zm)[j]) / (2 * eps)
	}
	return tr
}

// TestCNFTrace: the exact mode's d logp/dt is −tr ∂F/∂z of a finite-difference
// Jacobian; Hutchinson's εᵀJε averaged over all 2^D sign vectors (an exact
// expectation over Rademacher ε) equals that trace; one probe alone does not.
func TestCNFTrace(t *testing.T) {
	const d, n = 4, 3
	rng := rand.New(rand.NewPCG(2, 6))
	ctx := newCtx(12)
	exact := testCNF(d, NewTanh(), ExactTrace)
	x := cnfState(rng, n, d, ExactTrace)
	out := evalCNF(t, ctx, exact, 0.7, x)
	zv := values(t, x[0])
	hutch := testCNF(d, NewTanh(), Hutchinson)
	for r := range n {
		want := jacobianTrace(t, ctx, exact, zv[r*d:(r+1)*d], d)
		assert.InDelta(t, want, -out[1][r], 1e-8, "exact trace, row %d", r)

		// Every sign pattern, on copies of row r.
		m := 1 << d
		z := make([]float64, 0, m*d)
		e := make([]float64, 0, m*d)
		for p := range m {
			z = append(z, zv[r*d:(r+1)*d]...)
			for j := range d {
				e = append(e, float64(2*((p>>j)&1)-1))
			}
		}
		hx := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(z, m, d),
			tensors.FromFlatDataAndDimensions(make([]float64, m), m, 1), tensors.FromFlatDataAndDimensions(e, m, d)}
		hout := evalCNF(t, ctx, hutch, 0.7, hx)
		mean, spread := 0.0, 0.0
		for _, v := range hout[1] {
			mean -= v / float64(m)
		}
		for _, v := range hout[1] {
			spread = math.Max(spread, math.Abs(-v-mean))
		}
		assert.InDelta(t, want, mean, 1e-8, "Hutchinson mean over all signs, row %d", r)
		assert.Greater(t, spread, 1e-3, "single probes must differ from the trace (off-diagonal terms)")
		for _, v := range hout[2] {
			require.Zero(t, v, "dε/dt")
		}
	}
}

// TestCNFStatsMatchBruteForce: with one sample, the B factor of the first and
// last layers is scale²·Σ_i g_i g_iᵀ over the selected copies, g_i = ∂(v_iᵀF)/∂b
// from autodiff (the bias cotangent is the pre-activation cotangent); A is
// [z, 1][z, 1]ᵀ for the first layer.
func TestCNFStatsMatchBruteForce(t *testing.T) {
	const d, k = 3, 3
	rng := rand.New(rand.NewPCG(8, 1))
	f := testCNF(d, NewTanh(), Hutchinson)
	ctx := newCtx(2)
	x := cnfState(rng, 1, d, Hutchinson)
	var v []*tensors.Tensor
	for _, xi := range x {
		v = append(v, randn(rng, append([]int{k}, xi.Shape().Dimensions...)...))
	}
	const scale = 0.8
	exec := context.MustNewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, in []*Node) []*Node {
		hand := f.VJP(ctx, in[0], in[1:4], in[4:7], Request{Copies: k, Stats: &StatsRequest{From: 1, To: 3, Scale: scale}})
		auto := Autodiff(f.Eval).VJP(ctx, in[0], in[1:4], in[4:7], Request{Copies: k, ParamCopies: k})
		require.Len(t, hand.Stats, 3)
		byName := map[string]LayerStats{}
		for _, s := range hand.Stats {
			byName[s.Layer] = s
		}
		res := []*Node{byName["/c0"].A, byName["/c0"].B, byName["/c2"].B}
		for c := range k {
			res = append(res, auto.VTheta[c]["/c0/biases"], auto.VTheta[c]["/c2/biases"])
		}
		return res
	})
	res := exec.MustExec(tensors.FromScalar(0.2), x[0], x[1], x[2], v[0], v[1], v[2])
	zt := append(values(t, x[0]), 1)
	wantA := make([]float64, len(zt)*len(zt))
	outer(wantA, zt, 1)
	assertClose(t, wantA, values(t, res[0]), 1e-12, "A of c0")
	for li, out := range []int{7, d} {
		want := make([]float64, out*out)
		for c := 1; c < 3; c++ {
			outer(want, values(t, res[3+2*c+li]), scale*scale)
		}
		assertClose(t, want, values(t, res[1+li]), 1e-10, fmt.Sprintf("B of layer %d", 2*li))
	}
}
