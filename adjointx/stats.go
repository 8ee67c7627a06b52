package adjointx

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/hostval"
)

// LayerFactors are one layer's accumulated Kronecker factors (eq. 13):
//
//	Ā = Σ_j w_j · A(t_j),  B̄ = Σ_j w_j · B(t_j)
//
// over the time grid {t_j} with trapezoid weights w_j (Σ w_j = |t1 − t0|),
// where A(t) and B(t) are field.LayerStats at time t. Locations is the number
// of spatial locations of a convolution (1 for dense layers).
type LayerFactors struct {
	// Layer is the layer's scope; Weights and Bias its variables' ScopeAndName.
	Layer, Weights, Bias string
	// A and B are the factors Ā [in(+1), in(+1)] and B̄ [out, out] of eq. (13).
	A, B *tensors.Tensor
	// Locations is the spatial locations per sample sharing the weights (a
	// convolution's output pixels; 1 for dense layers).
	Locations int
}

// Stats accumulates Kronecker factors over the backward passes of one
// iteration (Alg. 1 lines 4–9). A model with several observation times calls
// Backward once per trajectory and every call adds to the same Stats; the
// optimizer reads Layers and calls Reset when it has consumed them.
type Stats struct {
	// Layers holds the factors in the order the backward pass meets the
	// layers (last layer first).
	Layers []LayerFactors
	// Samples counts the grid points accumulated so far.
	Samples int
}

// Reset empties the statistics for the next collection.
func (s *Stats) Reset() {
	for _, l := range s.Layers {
		_ = l.A.FinalizeAll()
		_ = l.B.FinalizeAll()
	}
	s.Layers, s.Samples = nil, 0
}

// gridPoint is one sample of the statistics grid with its quadrature weight.
type gridPoint struct{ t, w float64 }

// grid returns the uniform trapezoid grid over [a, b] (either order) with m intervals.
func grid(a, b float64, m int) []gridPoint {
	h := (b - a) / float64(m)
	pts := make([]gridPoint, m+1)
	for j := range pts {
		w := math.Abs(h)
		if j == 0 || j == m {
			w /= 2
		}
		pts[j] = gridPoint{t: a + float64(j)*h, w: w}
	}
	pts[m].t = b
	return pts
}

// statsKernel is the compiled statistics evaluation of one augmented layout.
type statsKernel struct {
	exec   *context.Exec
	layers []field.LayerStats // layer names and locations, known after the first build
}

// statsGraph evaluates the field's Kronecker statistics at (t, x, a, q) and
// adds w·A and w·s²·B to the accumulators (when given).
//
// Inputs: t, w, s (scalars), x (n), a (n), q (r·n), then optionally the
// accumulators (A_1, B_1, A_2, B_2, …).
func (p *plan) statsGraph(kernel *statsKernel) func(ctx *context.Context, in []*Node) []*Node {
	return func(ctx *context.Context, in []*Node) []*Node {
		n, r := p.n, p.r
		t, w, s := in[0], in[1], in[2]
		x := in[3 : 3+n]
		y := make([]*Node, p.size()) // reuse the plan's stacking: a and q at their layout positions
		for j := range n {
			y[p.aIdx(j)] = in[3+n+j]
			for i := range r {
				y[p.qIdx(i, j)] = in[3+2*n+i*n+j]
			}
		}
		acc := in[3+2*n+r*n:]
		if m := p.b.opts.StatsBatch; m > 0 {
			// The first m samples; per-sample cotangents are batch·(∂F/∂h)ᵀq
			// for the whole batch, so B (quadratic in them) gains (batch/m)².
			batch := x[0].Shape().Dimensions[0]
			if m < batch {
				for j := range x {
					x[j] = Slice(x[j], AxisRange(0, m))
				}
				for i, v := range y {
					if v != nil {
						y[i] = Slice(v, AxisRange(0, m))
					}
				}
				s = MulScalar(s, float64(batch)/float64(m))
			}
		}
		req := &field.StatsRequest{From: 0, To: 1, Scale: 1}
		if r > 0 {
			req.From, req.To = 1, 1+r
		}
		res := p.b.f.VJP(ctx, t, x, p.stack(y), field.Request{Copies: 1 + r, Stats: req})
		if len(res.Stats) == 0 {
			panic(fmt.Errorf("%w: the field reports no Kronecker statistics (only layered fields do)", ErrInvalidInput))
		}
		if len(acc) != 0 && len(acc) != 2*len(res.Stats) {
			panic(fmt.Errorf("%w: %d accumulators for %d layers", ErrInvalidInput, len(acc), len(res.Stats)))
		}
		kernel.layers = res.Stats
		out := make([]*Node, 0, 2*len(res.Stats))
		for i, st := range res.Stats {
			a := Mul(w, st.A)
			b := Mul(Mul(w, Square(s)), st.B)
			if len(acc) > 0 {
				a, b = Add(acc[2*i], a), Add(acc[2*i+1], b)
			}
			out = append(out, a, b)
		}
		return out
	}
}

// accumulate evaluates the statistics at one grid point and adds them into st.
func (p *plan) accumulate(st *Stats, t, w, scale float64, aug []*tensors.Tensor) error {
	if p.stats == nil {
		p.stats = &statsKernel{}
		p.stats.exec = context.MustNewExec(p.b.backend, p.b.ctx.Reuse(), p.statsGraph(p.stats))
		p.stats.exec.SetMaxCache(-1)
	}
	dt := aug[0].DType()
	args := []any{scalarOf(dt, t), scalarOf(dt, w), scalarOf(dt, scale)}
	for j := range p.n {
		args = append(args, aug[j])
	}
	for j := range p.n {
		args = append(args, aug[p.aIdx(j)])
	}
	for i := range p.r {
		for j := range p.n {
			args = append(args, aug[p.qIdx(i, j)])
		}
	}
	// Accumulate by layer name (several blocks may share one Stats): in the
	// graph when st already holds every layer of this block, else add into
	// (or append to) st's entries on the host.
	idx := make([]int, len(p.stats.layers))
	inGraph := len(p.stats.layers) > 0
	for i, l := range p.stats.layers {
		idx[i] = st.index(l.Weights)
		inGraph = inGraph && idx[i] >= 0
	}
	if inGraph {
		for _, j := range idx {
			args = append(args, st.Layers[j].A, st.Layers[j].B)
		}
	}
	out, err := p.stats.exec.Exec(args...)
	if err != nil {
		return fmt.Errorf("adjointx: statistics at t=%g: %w", t, err)
	}
	if inGraph {
		for i, j := range idx {
			_ = st.Layers[j].A.FinalizeAll()
			_ = st.Layers[j].B.FinalizeAll()
			st.Layers[j].A, st.Layers[j].B = out[2*i], out[2*i+1]
		}
	} else {
		for i, l := range p.stats.layers {
			j := st.index(l.Weights)
			if j < 0 {
				st.Layers = append(st.Layers, LayerFactors{Layer: l.Layer, Weights: l.Weights, Bias: l.Bias,
					Locations: l.Locations, A: out[2*i], B: out[2*i+1]})
				continue
			}
			if st.Layers[j].A, err = addTensors(st.Layers[j].A, out[2*i]); err != nil {
				return err
			}
			if st.Layers[j].B, err = addTensors(st.Layers[j].B, out[2*i+1]); err != nil {
				return err
			}
		}
	}
	st.Samples++
	return nil
}

// index returns the position of the layer with the given weights, or -1.
func (s *Stats) index(weights string) int {
	for i, l := range s.Layers {
		if l.Weights == weights {
			return i
		}
	}
	return -1
}

// addTensors returns a + b (same shape, float32 or float64) computed on the host.
func addTensors(a, b *tensors.Tensor) (*tensors.Tensor, error) {
	if !a.Shape().Equal(b.Shape()) {
		return nil, fmt.Errorf("%w: statistics of one layer with shapes %s and %s", ErrInvalidInput, a.Shape(), b.Shape())
	}
	av, err := hostval.Float64s(a)
	if err != nil {
		return nil, err
	}
	bv, err := hostval.Float64s(b)
	if err != nil {
		return nil, err
	}
	for i := range av {
		av[i] += bv[i]
	}
	return hostval.Tensor(av, a.DType(), a.Shape().Dimensions...), nil
}
