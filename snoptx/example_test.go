package snoptx_test

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/snoptx"
)

// One SNOpt update of a layer y = x·W + b from gradients and Kronecker
// factors computed elsewhere (by adjointx, or by field layers outside an
// ODE block), keyed by the variables' ScopeAndName. Right after a refresh,
// with α = 1 and no momentum, the step is −lr·(Ā ⊗ B̄ + εI)⁻¹ vec(G) (eq. 14),
// checked here against the dense inverse.
func ExampleStepper() {
	b, err := backend.New()
	if err != nil {
		panic(err)
	}
	ctx := context.New()
	w := ctx.In("layer").VariableWithValue("weights", [][]float64{{0.1, -0.2, 0.3}, {0.4, 0.5, -0.6}})
	bias := ctx.In("layer").VariableWithValue("biases", []float64{0, 0.1, -0.1})
	// Ā over the layer's input with a 1 appended (3×3), B̄ over its outputs (3×3).
	aBar := [][]float64{{2, 0.3, 0.1}, {0.3, 1, 0.2}, {0.1, 0.2, 1}}
	bBar := [][]float64{{1.5, -0.2, 0}, {-0.2, 1, 0.4}, {0, 0.4, 0.8}}
	gW := [][]float64{{0.5, -0.1, 0.2}, {0.3, 0.05, -0.4}}
	gB := []float64{0.2, -0.3, 0.1}

	// README:snoptx begin
	opt, err := snoptx.SNOpt().LearningRate(0.1).Momentum(0).Alpha(1).Damping(0.05).Done()
	if err != nil {
		panic(err)
	}
	st, err := snoptx.NewStepper(b, ctx, opt, []*context.Variable{w, bias})
	if err != nil {
		panic(err)
	}
	grads := map[string]*tensors.Tensor{
		w.ScopeAndName():    tensors.FromValue(gW),
		bias.ScopeAndName(): tensors.FromValue(gB),
	}
	var stats []adjointx.LayerFactors // only on refresh iterations
	if st.NeedsStats() {
		stats = []adjointx.LayerFactors{{Layer: "/layer", Weights: w.ScopeAndName(), Bias: bias.ScopeAndName(),
			A: tensors.FromValue(aBar), B: tensors.FromValue(bBar), Locations: 1}}
	}
	if err := st.Step(grads, stats, 1); err != nil { // a NaN gradient is snoptx.ErrNonFinite, nothing updated
		panic(err)
	}
	// README:snoptx end

	// Dense check: vec(Δθ) = −lr·(Ā ⊗ B̄ + εI)⁻¹ vec([G_W; g_b]).
	var kron mat.Dense
	kron.Kronecker(mat.NewDense(3, 3, flat(aBar)), mat.NewDense(3, 3, flat(bBar)))
	for i := range 9 {
		kron.Set(i, i, kron.At(i, i)+0.05)
	}
	var step mat.VecDense
	if err := step.SolveVec(&kron, mat.NewVecDense(9, append(flat(gW), gB...))); err != nil {
		panic(err)
	}
	before := append(flat([][]float64{{0.1, -0.2, 0.3}, {0.4, 0.5, -0.6}}), 0, 0.1, -0.1)
	after := append(tensors.MustCopyFlatData[float64](w.MustValue()), tensors.MustCopyFlatData[float64](bias.MustValue())...)
	worst := 0.0
	for i := range after {
		worst = math.Max(worst, math.Abs(after[i]-(before[i]-0.1*step.AtVec(i))))
	}
	fmt.Println("iterations:", st.Iteration())
	fmt.Println("update matches the dense Kronecker preconditioner:", worst < 1e-12)
	// Output:
	// iterations: 1
	// update matches the dense Kronecker preconditioner: true
}

func flat(m [][]float64) []float64 {
	var out []float64
	for _, row := range m {
		out = append(out, row...)
	}
	return out
}
