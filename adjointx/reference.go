package adjointx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
)

// Reference limits: the full matrices grow as (n + m)².
const (
	// MaxReferenceState bounds n, the flattened state size (batch included).
	MaxReferenceState = 64
	// MaxReferenceParams bounds m, the number of scalar parameters.
	MaxReferenceParams = 400
)

// ReferenceResult holds the exact derivatives of Theorem 1 at t0, with the
// state flattened (tuple order, row-major, batch included) and the
// parameters flattened in Params order.
type ReferenceResult struct {
	// Params is the order of the parameter axis (Block.Params).
	Params []*context.Variable
	// Qx = dL/dx(t0), Qu = dL/dθ (eq. 9a).
	Qx, Qu []float64
	// Qxx (n×n), Qxu (n×m), Quu (m×m) solve eq. (9b, 9c) with ℓ = 0.
	Qxx, Qxu, Quu *mat.Dense
}

// Reference integrates the full matrix ODEs of Theorem 1 (eq. 9, ℓ = 0)
// backwards from t_end to t0 of a trajectory with a single loss at t_end:
//
//	−dQ_x/dt = F_xᵀQ_x,  −dQ_u/dt = F_uᵀQ_x,
//	−dQ_xx/dt = F_xᵀQ_xx + Q_xx F_x,  −dQ_xu/dt = Q_xx F_u + F_xᵀQ_xu,
//	−dQ_uu/dt = F_uᵀQ_xu + Q_uxF_u,
//
// from Q_x = Φ_x, Q_xx = Φ_xx (n×n) and zeros. The Jacobians F_x, F_u come
// from n stacked vector–Jacobian products with unit cotangents. It is meant
// for tiny float64 problems (tests, and users who want the exact
// second-order matrices of a small model): n ≤ MaxReferenceState, m ≤
// MaxReferenceParams. opts configures the backward solve (nil: the block's
// forward options).
func (b *Block) Reference(tr *Trajectory, phiX []*tensors.Tensor, phiXX *mat.Dense, opts *odeint.Options) (*ReferenceResult, error) {
	if tr == nil || tr.block != b {
		return nil, invalidf("trajectory does not come from this block's Forward")
	}
	x1 := tr.Final()
	if err := checkTuple("Φ_x", phiX, x1, false); err != nil {
		return nil, err
	}
	if x1[0].DType() != dtypes.Float64 {
		return nil, invalidf("the reference needs a float64 state, got %s", x1[0].DType())
	}
	n := 0
	for _, x := range x1 {
		n += x.Shape().Size()
	}
	params, err := b.Params(tr.Xs[0])
	if err != nil {
		return nil, err
	}
	m := 0
	for _, v := range params {
		m += v.Shape().Size()
	}
	if n > MaxReferenceState || m > MaxReferenceParams {
		return nil, invalidf("reference limited to n ≤ %d, m ≤ %d; got n = %d, m = %d",
			MaxReferenceState, MaxReferenceParams, n, m)
	}
	if r, c := phiXX.Dims(); r != n || c != n {
		return nil, invalidf("Φ_xx is %d×%d, want %d×%d", r, c, n, n)
	}
	if opts == nil {
		opts = b.opts.Forward
	}
	o := *opts
	o.Observer, o.DropOutputs, o.NormExclude = nil, true, nil
	dyn := &referenceDynamics{f: b.f, params: params, n: n, m: m, shapes: x1}
	solver, err := odeint.NewSolver(b.backend, b.ctx, dyn.eval, &o)
	if err != nil {
		return nil, err
	}
	defer solver.Finalize()
	var qx []float64
	for _, p := range phiX {
		qx = append(qx, tensors.MustCopyFlatData[float64](p)...)
	}
	state := append(append([]*tensors.Tensor{}, x1...),
		tensors.FromFlatDataAndDimensions(qx, n),
		tensors.FromShape(shapeF64(m)),
		tensors.FromFlatDataAndDimensions(append([]float64{}, phiXX.RawMatrix().Data...), n, n),
		tensors.FromShape(shapeF64(n, m)),
		tensors.FromShape(shapeF64(m, m)))
	sol, err := solver.Solve(state, []float64{tr.Ts[len(tr.Ts)-1], tr.Ts[0]})
	if err != nil {
		return nil, err
	}
	out := sol.Final()
	k := len(x1)
	get := func(i int) []float64 { return tensors.MustCopyFlatData[float64](out[k+i]) }
	return &ReferenceResult{
		Params: params,
		Qx:     get(0),
		Qu:     get(1),
		Qxx:    mat.NewDense(n, n, get(2)),
		Qxu:    mat.NewDense(n, m, get(3)),
		Quu:    mat.NewDense(m, m, get(4)),
	}, nil
}

// referenceDynamics is the augmented field of Reference: state [x…, Q_x [n],
// Q_u [m], Q_xx [n,n], Q_xu [n,m], Q_uu [m,m]].
type referenceDynamics struct {
	f      field.Field
	params []*context.Variable
	n, m   int
	shapes []*tensors.Tensor
}

func (d *referenceDynamics) eval(ctx *context.Context, t *Node, y []*Node) []*Node {
	k := len(d.shapes)
	g := t.Graph()
	x := y[:k]
	qx, qxx, qxu := y[k], y[k+2], y[k+3] // Q_u and Q_uu do not feed back
	// Unit cotangents e_0 … e_{n−1} over the flattened tuple.
	v := make([]*Node, k)
	offset := 0
	for j, xj := range x {
		size := xj.Shape().Size()
		basis := make([]float64, d.n*size)
		for i := range size {
			basis[(offset+i)*size+i] = 1
		}
		v[j] = Const(g, tensors.FromFlatDataAndDimensions(basis, append([]int{d.n}, xj.Shape().Dimensions...)...))
		offset += size
	}
	res := d.f.VJP(ctx, t, x, v, field.Request{Copies: d.n, ParamCopies: d.n})
	rows := make([]*Node, k)
	for j := range x {
		rows[j] = Reshape(res.VX[j], d.n, -1)
	}
	jx := Concatenate(rows, 1) // [n, n]: row i = e_iᵀ F_x
	var ju *Node               // [n, m]: row i = e_iᵀ F_u
	if d.m > 0 {
		perCopy := make([]*Node, d.n)
		for i := range d.n {
			parts := make([]*Node, len(d.params))
			for p, v := range d.params {
				parts[p] = Reshape(paramGrad(g, res.VTheta[i], v), -1)
			}
			perCopy[i] = Concatenate(parts, 0)
		}
		ju = Stack(perCopy, 0)
	} else {
		ju = Zeros(g, qxu.Shape())
	}
	jxT, juT := Transpose(jx, 0, 1), Transpose(ju, 0, 1)
	col := func(v *Node) *Node { return Reshape(v, -1, 1) }
	out := append([]*Node{}, res.F...)
	out = append(out,
		Neg(Reshape(Dot(jxT, col(qx)), d.n)),
		Neg(Reshape(Dot(juT, col(qx)), d.m)),
		Neg(Add(Dot(jxT, qxx), Dot(qxx, jx))),
		Neg(Add(Dot(qxx, ju), Dot(jxT, qxu))),
		Neg(Add(Dot(juT, qxu), Dot(Transpose(qxu, 0, 1), ju))),
	)
	if len(out) != len(y) {
		panic(fmt.Errorf("adjointx: reference dynamics built %d tensors for %d", len(out), len(y)))
	}
	return out
}

func shapeF64(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float64, dims...) }
