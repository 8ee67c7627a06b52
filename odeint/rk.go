package odeint

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Func is the vector field F(t, y) of dy/dt = F(t, y). It builds graph nodes:
// t is a scalar of the state's dtype, y the state tensors (a batch, or a
// tuple of batches), and it returns one derivative per state tensor with the
// same shape and dtype. It may create or read trainable variables in ctx.
type Func func(ctx *context.Context, t *Node, y []*Node) []*Node

// stepper builds the compiled graphs of one tableau for one vector field: the
// generic explicit Runge–Kutta step, the first-step selection, a plain F
// evaluation and the dense-output interpolant. Every method shares it.
type stepper struct {
	tb       *Tableau
	f        Func
	norm     NormKind
	included []bool
	// builds counts graph constructions (one per compiled executable and
	// input shape): after warm-up it must not grow.
	builds int
	// fBuilt is set once F has been built into a graph: later graphs build it
	// with ctx.Reuse(), so the variables it created are shared, not duplicated.
	fBuilt bool
}

// callF builds F(t, y) and checks that it returns one tensor of the state's
// shape and dtype per state tensor.
func (st *stepper) callF(ctx *context.Context, t *Node, y []*Node) []*Node {
	if st.fBuilt {
		ctx = ctx.Reuse()
	}
	out := st.f(ctx, t, y)
	st.fBuilt = true
	if len(out) != len(y) {
		panic(&Error{Err: ErrShapeMismatch,
			Detail: fmt.Sprintf("vector field returned %d tensors for a state of %d", len(out), len(y))})
	}
	for i := range y {
		if out[i] == nil || !out[i].Shape().Equal(y[i].Shape()) {
			got := "nil"
			if out[i] != nil {
				got = out[i].Shape().String()
			}
			panic(&Error{Err: ErrShapeMismatch,
				Detail: fmt.Sprintf("vector field output #%d is %s, state is %s", i, got, y[i].Shape())})
		}
	}
	return out
}

// combine returns y + h·Σ_j w_j k_j for each state tensor, skipping zero weights.
func combine(y []*Node, h *Node, w []float64, ks [][]*Node) []*Node {
	out := make([]*Node, len(y))
	for i := range y {
		var acc *Node
		for j, wj := range w {
			if wj == 0 {
				continue
			}
			term := MulScalar(ks[j][i], wj)
			if acc == nil {
				acc = term
			} else {
				acc = Add(acc, term)
			}
		}
		if acc == nil {
			out[i] = y[i]
		} else {
			out[i] = Add(y[i], Mul(h, acc))
		}
	}
	return out
}

// scaledNorm is the error norm of v/scale over the included state tensors
// (MixedRMS: the maximum of per-tensor RMS; RMS: one RMS over everything).
func (st *stepper) scaledNorm(v, scale []*Node) *Node {
	var result, sumSq *Node
	count := 0
	for i := range v {
		if !st.included[i] {
			continue
		}
		sq := Square(Div(v[i], scale[i]))
		switch st.norm {
		case MixedRMS:
			rms := Sqrt(ReduceAllMean(sq))
			if result == nil {
				result = rms
			} else {
				result = Max(result, rms)
			}
		case RMS:
			s := ReduceAllSum(sq)
			if sumSq == nil {
				sumSq = s
			} else {
				sumSq = Add(sumSq, s)
			}
			count += v[i].Shape().Size()
		}
	}
	if st.norm == RMS {
		result = Sqrt(DivScalar(sumSq, float64(count)))
	}
	return result
}

// tolerance returns atol + rtol·max(|a|, |b|) per state tensor (b may be nil).
func tolerance(a, b []*Node, rtol, atol *Node) []*Node {
	out := make([]*Node, len(a))
	for i := range a {
		m := Abs(a[i])
		if b != nil {
			m = Max(m, Abs(b[i]))
		}
		out[i] = Add(atol, Mul(rtol, m))
	}
	return out
}

// nonFinite returns a float64 scalar that is 0 when every given tensor is
// finite and NaN otherwise (x·0 is NaN exactly for x = ±Inf or NaN).
func nonFinite(groups ...[]*Node) *Node {
	var acc *Node
	for _, group := range groups {
		for _, x := range group {
			s := ConvertDType(ReduceAllSum(MulScalar(x, 0)), dtypes.Float64)
			if acc == nil {
				acc = s
			} else {
				acc = Add(acc, s)
			}
		}
	}
	return acc
}

// stepGraph is one explicit RK step, all stages in one graph.
//
// Inputs: t, h, rtol, atol (scalars of the state dtype), y0 (n), k1 = F(t, y0) (n).
// Outputs: y1 (n), F(t+h, y1) (n), y(t+h/2) (n, only when the tableau has
// CMid), and a float64 scalar check: the error ratio (0 for fixed-grid
// methods), NaN when y1 or the error estimate is not finite.
func (st *stepper) stepGraph(ctx *context.Context, in []*Node) []*Node {
	st.builds++
	n := (len(in) - 4) / 2
	t, h, rtol, atol := in[0], in[1], in[2], in[3]
	y0, k1 := in[4:4+n], in[4+n:4+2*n]
	tb := st.tb
	s := tb.Stages()
	ks := make([][]*Node, 1, s+1)
	ks[0] = k1
	var y1 []*Node
	for i := 1; i < s; i++ {
		yi := combine(y0, h, tb.A[i], ks)
		if tb.fsal && i == s-1 {
			y1 = yi
		}
		ks = append(ks, st.callF(ctx, Add(t, MulScalar(h, tb.C[i])), yi))
	}
	var fNext []*Node
	if tb.fsal {
		fNext = ks[s-1]
	} else {
		y1 = combine(y0, h, tb.B, ks)
		fNext = st.callF(ctx, Add(t, h), y1)
	}
	outputs := make([]*Node, 0, 3*n+1)
	outputs = append(outputs, y1...)
	outputs = append(outputs, fNext...)
	if tb.CMid != nil {
		outputs = append(outputs, combine(y0, h, tb.CMid, ks)...)
	}
	check := nonFinite(y1)
	if tb.Adaptive() {
		zero := make([]*Node, n)
		for i := range zero {
			zero[i] = ZerosLike(y0[i])
		}
		errEst := combine(zero, h, tb.BErr, ks)
		ratio := st.scaledNorm(errEst, tolerance(y0, y1, rtol, atol))
		check = Add(check, ConvertDType(ratio, dtypes.Float64))
	}
	return append(outputs, check)
}

// evalGraph evaluates F once. Inputs: t, y (n). Outputs: F(t, y) (n) and a
// check that is NaN when y or F(t, y) is not finite.
func (st *stepper) evalGraph(ctx *context.Context, in []*Node) []*Node {
	st.builds++
	t, y := in[0], in[1:]
	f := st.callF(ctx, t, y)
	return append(f, nonFinite(y, f))
}

// firstStepGraph evaluates f0 = F(t0, y0) and selects the first step size
// with Hairer's algorithm (Solving ODEs I, II.4, "starting step size"):
//
//	d0 = ‖y0/sc‖, d1 = ‖f0/sc‖, sc = atol + rtol·|y0|
//	h0 = 0.01·d0/d1 (1e-6 if d0 or d1 < 1e-5)
//	d2 = ‖(F(t0+h0, y0+h0·f0) − f0)/sc‖ / h0
//	h1 = (0.01/max(d1, d2))^(1/order) (max(1e-6, 1e-3·h0) if both ≤ 1e-15)
//	h  = min(100·h0, h1)
//
// Inputs: t0, direction (±1), rtol, atol, y0 (n). Outputs: f0 (n), h (float64
// scalar, positive) and a check that is NaN when y0 or f0 is not finite.
func (st *stepper) firstStepGraph(ctx *context.Context, in []*Node) []*Node {
	st.builds++
	t0, dir, rtol, atol := in[0], in[1], in[2], in[3]
	y0 := in[4:]
	g := t0.Graph()
	dt := t0.DType()
	f0 := st.callF(ctx, t0, y0)
	sc := tolerance(y0, nil, rtol, atol)
	d0 := st.scaledNorm(y0, sc)
	d1 := st.scaledNorm(f0, sc)
	small := Scalar(g, dt, 1e-5)
	h0 := Where(Or(LessThan(d0, small), LessThan(d1, small)),
		Scalar(g, dt, 1e-6), MulScalar(Div(d0, d1), 0.01))
	hSigned := Mul(dir, h0)
	y1 := combine(y0, hSigned, []float64{1}, [][]*Node{f0})
	f1 := st.callF(ctx, Add(t0, hSigned), y1)
	delta := make([]*Node, len(f0))
	for i := range f0 {
		delta[i] = Sub(f1[i], f0[i])
	}
	d2 := Div(st.scaledNorm(delta, sc), h0)
	dMax := Max(d1, d2)
	h1 := Where(LessOrEqual(dMax, Scalar(g, dt, 1e-15)),
		MaxScalar(MulScalar(h0, 1e-3), 1e-6),
		Pow(Div(Scalar(g, dt, 0.01), dMax), Scalar(g, dt, 1/float64(st.tb.Order))))
	h := ConvertDType(Min(MulScalar(h0, 100), h1), dtypes.Float64)
	return append(f0, h, nonFinite(y0, f0))
}

// interpGraph evaluates the dense output of an accepted step at fraction x ∈
// [0, 1] of it. Inputs: x, h, y0 (n), y1 (n), f0 (n), f1 (n), and y_mid (n)
// when the tableau has CMid. Outputs: y(t0 + x·h) (n).
//
// With y_mid it is the quartic through y0, y_mid, y1 with slopes f0, f1
// (fourth order for dopri5); otherwise the cubic Hermite through y0, y1 with
// slopes f0, f1 (third order).
func (st *stepper) interpGraph(in []*Node) []*Node {
	st.builds++
	x, h := in[0], in[1]
	n := (len(in) - 2) / 4
	if st.tb.CMid != nil {
		n = (len(in) - 2) / 5
	}
	y0, y1, f0, f1 := in[2:2+n], in[2+n:2+2*n], in[2+2*n:2+3*n], in[2+3*n:2+4*n]
	out := make([]*Node, n)
	for i := range out {
		hf0, hf1 := Mul(h, f0[i]), Mul(h, f1[i])
		var coeffs []*Node // coefficients of x^0, x^1, ...
		if st.tb.CMid != nil {
			ym := in[2+4*n+i]
			// Quartic p with p(0)=y0, p'(0)=h·f0, p(1)=y1, p'(1)=h·f1, p(1/2)=y_mid.
			a := Add(Sub(MulScalar(Sub(hf1, hf0), 2), MulScalar(Add(y1[i], y0[i]), 8)), MulScalar(ym, 16))
			b := Add(Sub(MulScalar(hf0, 5), MulScalar(hf1, 3)),
				Sub(Add(MulScalar(y0[i], 18), MulScalar(y1[i], 14)), MulScalar(ym, 32)))
			c := Add(Sub(hf1, MulScalar(hf0, 4)),
				Sub(MulScalar(ym, 16), Add(MulScalar(y0[i], 11), MulScalar(y1[i], 5))))
			coeffs = []*Node{y0[i], hf0, c, b, a}
		} else {
			// Cubic Hermite: p(0)=y0, p'(0)=h·f0, p(1)=y1, p'(1)=h·f1.
			dy := Sub(y1[i], y0[i])
			c := Sub(MulScalar(dy, 3), Add(MulScalar(hf0, 2), hf1))
			d := Add(MulScalar(dy, -2), Add(hf0, hf1))
			coeffs = []*Node{y0[i], hf0, c, d}
		}
		p := coeffs[len(coeffs)-1]
		for j := len(coeffs) - 2; j >= 0; j-- {
			p = Add(coeffs[j], Mul(x, p))
		}
		out[i] = p
	}
	return out
}
