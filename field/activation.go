package field

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Activation is an element-wise nonlinearity σ with its first and second
// derivatives (the second is what the VJP of a CNF's trace term needs).
type Activation struct {
	// Name labels the activation in graphs and errors ("tanh", "softplus").
	Name string
	// Fn is σ itself.
	Fn     func(h *Node) *Node
	Deriv  func(h, y *Node) *Node // σ'(h), given h and y = σ(h)
	Deriv2 func(h, y *Node) *Node // σ''(h), given h and y = σ(h)
}

var _ Layer = (*Activation)(nil)

// Forward implements Layer.
func (a *Activation) Forward(_ *context.Context, _ *Node, x *Node) (*Node, any) {
	y := a.Fn(x)
	return y, [2]*Node{x, y}
}

// Backward implements Layer: gx = gy ⊙ σ'(h) in every copy.
func (a *Activation) Backward(_ *Node, saved any, gy *Node, bp *Backprop) *Node {
	hy := saved.([2]*Node)
	return bp.perSample(gy, a.Deriv(hy[0], hy[1]))
}

// NewTanh is σ = tanh, σ' = 1 − tanh², σ″ = −2·tanh·(1 − tanh²).
func NewTanh() *Activation {
	return &Activation{Name: "tanh", Fn: Tanh,
		Deriv:  func(_, y *Node) *Node { return OneMinus(Square(y)) },
		Deriv2: func(_, y *Node) *Node { return MulScalar(Mul(y, OneMinus(Square(y))), -2) }}
}

// NewReLU is σ = max(h, 0), σ' = 1 for h > 0 else 0, σ″ = 0 (almost
// everywhere).
func NewReLU() *Activation {
	return &Activation{Name: "relu",
		Fn: func(h *Node) *Node { return Max(h, ZerosLike(h)) },
		Deriv: func(h, _ *Node) *Node {
			return ConvertDType(GreaterThan(h, ZerosLike(h)), h.DType())
		},
		Deriv2: func(h, _ *Node) *Node { return ZerosLike(h) }}
}

// NewSoftplus is σ = log(1 + eʰ), σ' = sigmoid(h), σ″ = sigmoid(h)·(1 − sigmoid(h)).
func NewSoftplus() *Activation {
	return &Activation{Name: "softplus", Fn: Softplus,
		Deriv: func(h, _ *Node) *Node { return Sigmoid(h) },
		Deriv2: func(h, _ *Node) *Node {
			s := Sigmoid(h)
			return Mul(s, OneMinus(s))
		}}
}
