package adjointx

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
)

// ceLoss is the batch-mean softmax cross-entropy of logits z [B, C].
func ceLoss(z []float64, labels []int, classes int) float64 {
	total := 0.0
	for b, y := range labels {
		row := z[b*classes : (b+1)*classes]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		total += m + math.Log(s) - row[y]
	}
	return total / float64(len(labels))
}

// TestSoftmaxCrossEntropyFactorsAreExactHessian: Σ_c y_c[b] y_c[b]ᵀ equals
// the Hessian of the batch-mean cross-entropy by finite differences, block
// by block.
func TestSoftmaxCrossEntropyFactorsAreExactHessian(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const batch, classes = 3, 4
	z := randn(rng, batch, classes)
	labels := []int{1, 3, 0}
	ys, err := SoftmaxCrossEntropyFactors(z)
	require.NoError(t, err)
	require.Len(t, ys, classes)
	zv := vals(t, z)
	const h = 1e-4
	for b := range batch {
		for i := range classes {
			for j := range classes {
				// Central second difference of L in (z_bi, z_bj).
				f := func(di, dj float64) float64 {
					p := append([]float64{}, zv...)
					p[b*classes+i] += di
					p[b*classes+j] += dj
					return ceLoss(p, labels, classes)
				}
				want := (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
				got := 0.0
				for _, y := range ys {
					yv := vals(t, y)
					got += yv[b*classes+i] * yv[b*classes+j]
				}
				assert.InDeltaf(t, want, got, 1e-6, "sample %d entry (%d,%d)", b, i, j)
			}
		}
	}
}

func TestGaussianFactors(t *testing.T) {
	x := tensors.FromValue([][]float64{{1, 2}, {3, 4}})
	ys, err := GaussianFactors(x, []float64{0.5, 2})
	require.NoError(t, err)
	require.Len(t, ys, 2)
	// Σ_d y_d[b] y_d[b]ᵀ = diag(1/σ²)/B.
	for b := range 2 {
		for i := range 2 {
			for j := range 2 {
				got := 0.0
				for _, y := range ys {
					v := vals(t, y)
					got += v[b*2+i] * v[b*2+j]
				}
				want := 0.0
				if i == j {
					want = []float64{4, 0.25}[i] / 2
				}
				assert.InDelta(t, want, got, 1e-15)
			}
		}
	}
	_, err = GaussianFactors(x, []float64{0})
	assert.ErrorIs(t, err, ErrInvalidInput)
}

// TestBadInputsAreTypedErrors: non-finite cotangents, t0 == t1, mismatched
// shapes and misuse return typed errors, never panics.
func TestBadInputsAreTypedErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	b := newBlock(t, newCtx(1, 0.5), mlpField(2, 3, false), &Options{Forward: tolOpts(1e-6)})
	x0 := []*tensors.Tensor{randn(rng, 2, 2)}
	_, err := b.Forward(x0, []float64{0.5, 0.5})
	assert.ErrorIs(t, err, odeint.ErrInvalidOptions, "t0 == t1")
	tr, err := b.Forward(x0, []float64{0, 1})
	require.NoError(t, err)
	nan := tensors.FromValue([][]float64{{1, math.NaN()}, {0, 0}})
	cases := map[string]struct {
		cot  [][]*tensors.Tensor
		opts *BackwardOptions
		want error
	}{
		"non-finite cotangent": {[][]*tensors.Tensor{nil, {nan}}, nil, odeint.ErrNonFinite},
		"wrong shape":          {[][]*tensors.Tensor{nil, {randn(rng, 3, 2)}}, nil, ErrInvalidInput},
		"wrong count":          {[][]*tensors.Tensor{{randn(rng, 2, 2)}}, nil, ErrInvalidInput},
		"tuple size":           {[][]*tensors.Tensor{nil, {randn(rng, 2, 2), randn(rng, 2, 2)}}, nil, ErrInvalidInput},
		"vectors without kind": {[][]*tensors.Tensor{nil, {randn(rng, 2, 2)}},
			&BackwardOptions{Vectors: [][][]*tensors.Tensor{nil, {{randn(rng, 2, 2)}}}}, ErrInvalidInput},
		"empty vectors": {[][]*tensors.Tensor{nil, {randn(rng, 2, 2)}},
			&BackwardOptions{Curvature: Vectors, Vectors: [][][]*tensors.Tensor{nil, nil}}, ErrInvalidInput},
		"mis-shaped vector": {[][]*tensors.Tensor{nil, {randn(rng, 2, 2)}},
			&BackwardOptions{Curvature: Vectors, Vectors: [][][]*tensors.Tensor{nil, {{randn(rng, 1, 2)}}}}, ErrInvalidInput},
		"P without vectors": {[][]*tensors.Tensor{nil, {randn(rng, 2, 2)}},
			&BackwardOptions{IntegrateP: true}, ErrInvalidInput},
	}
	for name, c := range cases {
		var err error
		require.NotPanics(t, func() { _, err = b.Backward(tr, c.cot, c.opts) }, name)
		assert.Truef(t, errors.Is(err, c.want), "%s: got %v", name, err)
	}
	_, err = b.Backward(nil, nil, nil)
	assert.ErrorIs(t, err, ErrInvalidInput)
	other := newBlock(t, newCtx(1, 0.5), mlpField(2, 3, false), nil)
	_, err = other.Backward(tr, [][]*tensors.Tensor{nil, {randn(rng, 2, 2)}}, nil)
	assert.ErrorIs(t, err, ErrInvalidInput, "trajectory from another block")
	_, err = NewBlock(nil, nil, nil, nil)
	assert.ErrorIs(t, err, ErrInvalidInput)

	// Statistics need a layered field: the autodiff fallback reports none.
	auto := newBlock(t, newCtx(1, 0.5), field.Autodiff(mlpField(2, 3, false).Eval), nil)
	tr2, err := auto.Forward(x0, []float64{0, 1})
	require.NoError(t, err)
	_, err = auto.Backward(tr2, [][]*tensors.Tensor{nil, {randn(rng, 2, 2)}}, &BackwardOptions{Stats: &Stats{}})
	assert.ErrorIs(t, err, ErrInvalidInput, "statistics from an autodiff field")
}
