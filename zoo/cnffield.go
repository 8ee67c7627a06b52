package zoo

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/snopt-go/snopt/field"
)

// HyperCNF is the vector field of Chen et al. 2018's continuous normalizing
// flow: for the state (z [B, D], log-density change [B, 1]),
//
//	dz/dt = (1/K) Σ_k u_k tanh(w_kᵀz + b_k)         (Linear(D,K) → Tanh → Linear(K,D))
//	d logp/dt = −tr ∂F/∂z = −(1/K) Σ_k (u_k·w_k)(1 − tanh²(w_kᵀz + b_k))   (exact trace)
//
// whose weights w_k, u_k = û_k·sigmoid(g_k) and b_k come from a HyperNet of t:
// t → Linear(1,H) → Tanh → Linear(H,H) → Tanh → four linear maps giving W,
// Û, G ([K, D] each) and b ([K]). Its VJP is written by hand, the trace term
// included; the HyperNet's linear layers are the preconditionable layers
// (their batch is the single t).
type HyperCNF struct {
	// Dim is D (the data's dimension), Width K (the hidden units of the field) and
	// Hidden H (the HyperNet's width).
	Dim, Width, Hidden int
}

var _ field.Field = (*HyperCNF)(nil)

// hyperLayer is one linear layer of the HyperNet, evaluated on a single row.
type hyperLayer struct {
	name      string
	in        *Node // [1, in]
	w         *Node // [in, out]
	wVar, bVr *context.Variable
}

func (f *HyperCNF) linear(ctx *context.Context, name string, x *Node, out int) (*Node, *hyperLayer) {
	g := x.Graph()
	in := x.Shape().Dimensions[1]
	r := 1 / math.Sqrt(float64(in)) // PyTorch's default Linear initialisation
	scope := ctx.In(name)
	scope = scope.WithInitializer(initializers.RandomUniformFn(scope, -r, r))
	wv := scope.VariableWithShape("weights", shapeOf(x, in, out))
	bv := scope.VariableWithShape("biases", shapeOf(x, out))
	w := wv.ValueGraph(g)
	return Add(Dot(x, w), InsertAxes(bv.ValueGraph(g), 0)), &hyperLayer{name: name, in: x, w: w, wVar: wv, bVr: bv}
}

// hyperForward is the HyperNet at t and the CNF weights it produces.
type hyperForward struct {
	h1, h2          *Node // [1, H]
	layers          []*hyperLayer
	wm, uraw, sg, u *Node // [K, D]
	b               *Node // [K]
}

func (f *HyperCNF) hyper(ctx *context.Context, t *Node) *hyperForward {
	k, d := f.Width, f.Dim
	tin := Reshape(t, 1, 1)
	ctx = ctx.In("hyper")
	hf := &hyperForward{}
	pre1, l1 := f.linear(ctx, "fc1", tin, f.Hidden)
	hf.h1 = Tanh(pre1)
	pre2, l2 := f.linear(ctx, "fc2", hf.h1, f.Hidden)
	hf.h2 = Tanh(pre2)
	pw, lw := f.linear(ctx, "fc3w", hf.h2, k*d)
	pu, lu := f.linear(ctx, "fc3u", hf.h2, k*d)
	pg, lg := f.linear(ctx, "fc3g", hf.h2, k*d)
	pb, lb := f.linear(ctx, "fc3b", hf.h2, k)
	hf.layers = []*hyperLayer{l1, l2, lw, lu, lg, lb}
	hf.wm, hf.uraw = Reshape(pw, k, d), Reshape(pu, k, d)
	hf.sg = Sigmoid(Reshape(pg, k, d))
	hf.u = Mul(hf.uraw, hf.sg)
	hf.b = Reshape(pb, k)
	return hf
}

func (f *HyperCNF) check(x []*Node) {
	if len(x) != 2 || x[0].Rank() != 2 || x[0].Shape().Dimensions[1] != f.Dim || x[1].Rank() != 2 ||
		x[1].Shape().Dimensions[1] != 1 {
		panic(fmt.Errorf("zoo: HyperCNF state must be (z [B, %d], logp [B, 1])", f.Dim))
	}
}

// Eval implements field.Field.
func (f *HyperCNF) Eval(ctx *context.Context, t *Node, x []*Node) []*Node {
	f.check(x)
	hf := f.hyper(ctx, t)
	dz, dlogp, _, _, _ := f.flow(hf, x[0])
	return []*Node{dz, dlogp}
}

// flow returns dz/dt, d logp/dt, tanh(pre), 1 − tanh²(pre) and c_k = u_k·w_k.
func (f *HyperCNF) flow(hf *hyperForward, z *Node) (dz, dlogp, h, s, c *Node) {
	pre := Add(DotGeneral(z, []int{1}, nil, hf.wm, []int{1}, nil), InsertAxes(hf.b, 0)) // [B, K]
	h = Tanh(pre)
	s = OneMinus(Square(h))
	inv := 1 / float64(f.Width)
	dz = MulScalar(Dot(h, hf.u), inv)
	c = ReduceSum(Mul(hf.wm, hf.u), 1)                      // u_k·w_k, [K]
	dlogp = MulScalar(Dot(s, Reshape(c, f.Width, 1)), -inv) // [B, 1]
	return
}

// VJP implements field.Field.
func (f *HyperCNF) VJP(ctx *context.Context, t *Node, x []*Node, v []*Node, req field.Request) field.Result {
	f.check(x)
	hf := f.hyper(ctx, t)
	z := x[0]
	dz, dlogp, h, s, c := f.flow(hf, z)
	kc, b, k, d := req.Copies, z.Shape().Dimensions[0], f.Width, f.Dim
	inv := 1 / float64(k)
	az := Reshape(v[0], kc*b, d) // copies stacked on rows
	al := Reshape(v[1], kc*b, 1)
	tile := func(m *Node) *Node { // [B, K] → [kc·B, K]
		if kc == 1 {
			return m
		}
		return Reshape(BroadcastPrefix(m, kc), kc*b, k)
	}
	gh := MulScalar(DotGeneral(az, []int{1}, nil, hf.u, []int{1}, nil), inv) // a_z·Uᵀ/K
	gs := MulScalar(Mul(al, InsertAxes(c, 0)), -inv)                         // −a_l·cᵀ/K
	hT, sT := tile(h), tile(s)
	gpre := Add(Mul(gh, sT), Mul(gs, MulScalar(Mul(hT, sT), -2))) // d(1−h²)/dpre = −2h(1−h²)
	gz := Dot(gpre, hf.wm)                                        // [kc·B, D]
	res := field.Result{F: []*Node{dz, dlogp},
		VX: []*Node{Reshape(gz, kc, b, d), ZerosLike(v[1])}}

	rows := req.ParamCopies
	if req.Stats != nil {
		rows = max(rows, req.Stats.To)
	}
	if rows == 0 {
		return res
	}
	// Per-copy cotangents of the CNF weights (copies on the leading axis).
	gpre3 := Reshape(Slice(gpre, AxisRange(0, rows*b)), rows, b, k)
	az3 := Reshape(Slice(az, AxisRange(0, rows*b)), rows, b, d)
	al2 := Reshape(Slice(al, AxisRange(0, rows*b)), rows, b)
	gc := MulScalar(Dot(al2, s), -inv)                                                // [rows, K]
	gW := DotGeneral(gpre3, []int{1}, nil, z, []int{0}, nil)                          // [rows, K, D]
	gW = Add(gW, Mul(InsertAxes(gc, -1), BroadcastPrefix(hf.u, rows)))                // + g_c·u_k
	gU := TransposeAllAxes(DotGeneral(az3, []int{1}, nil, h, []int{0}, nil), 0, 2, 1) // [rows, K, D]
	gU = Add(MulScalar(gU, inv), Mul(InsertAxes(gc, -1), BroadcastPrefix(hf.wm, rows)))
	gB := ReduceSum(gpre3, 1) // [rows, K]
	sg := BroadcastPrefix(hf.sg, rows)
	gUraw := Mul(gU, sg)
	gG := Mul(Mul(gU, BroadcastPrefix(hf.uraw, rows)), Mul(sg, OneMinus(sg)))
	// Back through the HyperNet, all copies as rows.
	outs := []*Node{Reshape(gW, rows, k*d), Reshape(gUraw, rows, k*d), Reshape(gG, rows, k*d), gB}
	l2 := hf.layers[1]
	var gh2 *Node
	for i, g := range outs {
		term := DotGeneral(g, []int{1}, nil, hf.layers[2+i].w, []int{1}, nil)
		if gh2 == nil {
			gh2 = term
		} else {
			gh2 = Add(gh2, term)
		}
	}
	gpre2 := Mul(gh2, OneMinus(Square(hf.h2)))
	gpre1 := Mul(DotGeneral(gpre2, []int{1}, nil, l2.w, []int{1}, nil), OneMinus(Square(hf.h1)))
	cot := []*Node{gpre1, gpre2, outs[0], outs[1], outs[2], outs[3]} // output cotangents per layer, [rows, out]
	res.VTheta = make([]map[string]*Node, req.ParamCopies)
	for cp := range req.ParamCopies {
		res.VTheta[cp] = map[string]*Node{}
		for i, l := range hf.layers {
			row := Slice(cot[i], AxisRange(cp, cp+1)) // [1, out]
			res.VTheta[cp][l.wVar.ScopeAndName()] = DotGeneral(l.in, []int{0}, nil, row, []int{0}, nil)
			res.VTheta[cp][l.bVr.ScopeAndName()] = Reshape(row, row.Shape().Dimensions[1])
		}
	}
	if st := req.Stats; st != nil {
		for i, l := range hf.layers {
			zt := Concatenate([]*Node{l.in, OnesLike(Slice(l.in, AxisRange(), AxisRange(0, 1)))}, 1)
			g := Slice(cot[i], AxisRange(st.From, st.To))
			res.Stats = append(res.Stats, field.LayerStats{
				Layer: l.wVar.Scope(), Weights: l.wVar.ScopeAndName(), Bias: l.bVr.ScopeAndName(),
				A: DotGeneral(zt, []int{0}, nil, zt, []int{0}, nil),
				B: MulScalar(DotGeneral(g, []int{0}, nil, g, []int{0}, nil), st.Scale*st.Scale), Locations: 1,
			})
		}
	}
	return res
}

func shapeOf(x *Node, dims ...int) shapes.Shape { return shapes.Make(x.DType(), dims...) }
