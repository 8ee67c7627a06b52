package zoo

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/trainer"
)

// firstBatch returns the first mini-batch of size n of a seeded batcher.
func firstBatch(t testing.TB, im *Images, n int) *Batch {
	t.Helper()
	b, err := NewImageBatcher(im, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b.Next()
}

// circles returns a batch of n points of a seeded sampler.
func circles(t testing.TB, c *Circles, n int) *Batch {
	t.Helper()
	b, err := c.Batch(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertGradientMatchesFD compares entries idx of grad, the gradient of
// m's loss on b in variable v (float64), with central differences of
// m.Evaluate, to tol relative to max(1, |fd|).
func assertGradientMatchesFD(t *testing.T, m Model, b *Batch, v *context.Variable, grad *tensors.Tensor, idx []int, tol float64) {
	t.Helper()
	g := tensors.MustCopyFlatData[float64](grad)
	orig := tensors.MustCopyFlatData[float64](v.MustValue())
	set := func(vals []float64) {
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
	}
	defer set(orig)
	for _, i := range idx {
		const h = 1e-5
		at := func(d float64) float64 {
			vals := append([]float64{}, orig...)
			vals[i] += d
			set(vals)
			l, _, err := m.Evaluate(b)
			require.NoError(t, err)
			return l
		}
		fd := (at(h) - at(-h)) / (2 * h)
		assert.InDelta(t, fd, g[i], tol*math.Max(1, math.Abs(fd)), "%s[%d]", v.ScopeAndName(), i)
	}
}

// lossFalls reports the mean training loss of the first and of the last n
// records.
func lossFalls(recs []trainer.Record, n int) (head, tail float64) {
	for i, r := range recs {
		if i < n {
			head += r.Loss / float64(n)
		}
		if i >= len(recs)-n {
			tail += r.Loss / float64(n)
		}
	}
	return head, tail
}
