package field

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/matmul"
)

// Layer is one layer of a Sequential field, with a hand-written VJP.
//
// Inputs carry the batch on axis 0. In Backward, cotangents stack K copies of
// the batch along axis 0 (copy-major: rows k·B … (k+1)·B−1 are copy k).
type Layer interface {
	// Forward builds the layer's output for input x at time t. saved is
	// handed back to Backward (the activations the VJP needs).
	Forward(ctx *context.Context, t, x *Node) (y *Node, saved any)
	// Backward maps the output cotangents gy ([K·B, ...]) to input
	// cotangents, recording parameter cotangents and statistics in bp.
	Backward(t *Node, saved any, gy *Node, bp *Backprop) (gx *Node)
}

// Backprop carries one backward pass through a layered field: what is asked
// for and what the layers record.
type Backprop struct {
	// Copies (K) and Batch (B) describe the cotangent stack.
	Copies, Batch int
	req           Request
	grads         []map[string]*Node
	stats         []LayerStats
}

func newBackprop(copies, batch int, req Request) *Backprop {
	bp := &Backprop{Copies: copies, Batch: batch, req: req, grads: make([]map[string]*Node, req.ParamCopies)}
	for i := range bp.grads {
		bp.grads[i] = map[string]*Node{}
	}
	return bp
}

// paramCopies is how many copies need parameter cotangents.
func (bp *Backprop) paramCopies() int { return bp.req.ParamCopies }

// rowsOf returns the rows of copy k of a stacked cotangent whose copies have
// rowsPerCopy rows each.
func (bp *Backprop) rowsOf(gy *Node, k, rowsPerCopy int) *Node {
	if bp.Copies == 1 {
		return gy
	}
	return Slice(gy, AxisRange(k*rowsPerCopy, (k+1)*rowsPerCopy))
}

// perSample multiplies a stacked cotangent gy ([K·B, ...]) by m ([B, ...]) in
// every copy.
func (bp *Backprop) perSample(gy, m *Node) *Node {
	if bp.Copies == 1 {
		return Mul(gy, m)
	}
	dims := m.Shape().Dimensions
	stacked := Reshape(gy, append([]int{bp.Copies}, dims...)...)
	return Reshape(Mul(stacked, BroadcastPrefix(m, bp.Copies)), gy.Shape().Dimensions...)
}

// addGrad records v[k]ᵀ∂F/∂θ for one variable.
func (bp *Backprop) addGrad(k int, v *context.Variable, g *Node) {
	if v == nil {
		return
	}
	name := v.ScopeAndName()
	if prev, ok := bp.grads[k][name]; ok {
		g = Add(prev, g)
	}
	bp.grads[k][name] = g
}

// addAffineGrads records, for every copy asked for, the parameter cotangents
// of an affine map h = z̃·[W; b] with homogeneous rows z̃ = [z, 1] (z alone
// when b is nil): [∂W; ∂b] = z̃ᵀ·gy_k, one product whose last row is ∂b,
// where gy holds rowsPerCopy rows per copy.
func (bp *Backprop) addAffineGrads(zt, gy *Node, rowsPerCopy int, w, b *context.Variable) {
	rows := zt.Shape().Dimensions[1]
	for k := range bp.paramCopies() {
		grad := matTMul(zt, bp.rowsOf(gy, k, rowsPerCopy))
		if b == nil {
			bp.addGrad(k, w, grad)
			continue
		}
		bp.addGrad(k, w, Slice(grad, AxisRange(0, rows-1)))
		bp.addGrad(k, b, Reshape(Slice(grad, AxisRange(rows-1, rows)), grad.Shape().Dimensions[1]))
	}
}

// wantStats reports whether Kronecker statistics are requested.
func (bp *Backprop) wantStats() bool { return bp.req.Stats != nil }

// addStats records a layer's statistics from its homogeneous inputs zt
// ([B·T, in+1]: rows are samples × locations) and its output cotangents gy
// (rows [K·B·T, out], copy-major).
func (bp *Backprop) addStats(w, b *context.Variable, zt, gy *Node, locations int) {
	s := bp.req.Stats
	rowsPerCopy := bp.Batch * locations
	g := gy
	if !(s.From == 0 && s.To == bp.Copies) {
		g = Slice(gy, AxisRange(s.From*rowsPerCopy, s.To*rowsPerCopy))
	}
	n := float64(rowsPerCopy)
	a := DivScalar(matTMul(zt, zt), n)
	// Per-sample g = Batch·Scale·raw; B = (1/(B·T)) Σ g gᵀ.
	scale := float64(bp.Batch) * s.Scale * s.Scale
	bFactor := MulScalar(matTMul(g, g), scale/float64(locations))
	st := LayerStats{Layer: w.Scope(), Weights: w.ScopeAndName(), A: a, B: bFactor, Locations: locations}
	if b != nil {
		st.Bias = b.ScopeAndName()
	}
	bp.stats = append(bp.stats, st)
}

// matTMul returns aᵀ·b for matrices a [n, p], b [n, q].
func matTMul(a, b *Node) *Node { return matmul.ATB(a, b) }

// matMulT returns a·bᵀ for matrices a [n, p], b [q, p].
func matMulT(a, b *Node) *Node { return matmul.ABT(a, b) }

// withBiasRow appends the bias b [Out] to the weights w [in, Out] as a last
// row, [in+1, Out]: the matrix that multiplies homogeneous rows [z, 1].
func withBiasRow(w, b *Node) *Node { return Concatenate([]*Node{w, InsertAxes(b, 0)}, 0) }

// withOnes appends a column of ones to a matrix [n, p] → [n, p+1].
func withOnes(z *Node) *Node {
	n := z.Shape().Dimensions[0]
	return Concatenate([]*Node{z, Ones(z.Graph(), shapeLike(z, n, 1))}, 1)
}

// AffineInputs describes what Forward of an affine layer (Linear, Conv2D)
// saved: the homogeneous rows z̃ = [z, 1] its weights and bias multiply
// ([B·locations, in+1]: the inputs, with time if concatenated, or a
// convolution's patches, then a column of ones; z alone when the layer has
// no bias), its weight and bias variables (b nil without a bias) and the
// locations per sample (output pixels of a convolution, 1 otherwise). ok is
// false for other layers. Code outside the adjoint (snoptx's GoMLX layers)
// uses it for K-FAC statistics of the same layers.
func AffineInputs(saved any) (zt *Node, w, b *context.Variable, locations int, ok bool) {
	switch s := saved.(type) {
	case *linearSaved:
		return s.zt, s.wVar, s.bVar, 1, true
	case *convSaved:
		return s.patches, s.wVar, s.bVar, s.ho * s.wo, true
	}
	return nil, nil, nil, 0, false
}
