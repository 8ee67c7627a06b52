package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// naiveGemm is the reference: float64 sums in index order.
func naiveGemm(m, n, k int, a, b Mat) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for q := range k {
				s += float64(a.Data[i*a.RowStride+q*a.ColStride]) * float64(b.Data[q*b.RowStride+j*b.ColStride])
			}
			c[i*n+j] = s
		}
	}
	return c
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// levels returns every level this CPU can run.
func levels() []Level {
	var ls []Level
	for l := LevelGo; l <= Best(); l++ {
		ls = append(ls, l)
	}
	return ls
}

// withLevel runs f at level l and restores the previous level.
func withLevel(t testing.TB, l Level, f func()) {
	prev := Current()
	require.Equal(t, l, SetLevel(l))
	defer SetLevel(prev)
	f()
}

// layout returns the view of a row-major [r, c] matrix stored as given:
// transposed means the slice holds the [c, r] transpose, row-major.
func layout(data []float32, r, c int, transposed bool) Mat {
	if transposed {
		return Mat{Data: data, RowStride: 1, ColStride: r}
	}
	return Mat{Data: data, RowStride: c, ColStride: 1}
}

func TestGemmAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := [][3]int{{1, 1, 1}, {7, 17, 33}, {12, 16, 256}, {13, 17, 257}, {33, 7, 1}, {25, 48, 300}, {100, 3, 600}, {5, 40, 513}, {150, 35, 70}}
	for _, l := range levels() {
		for _, sz := range sizes {
			m, n, k := sz[0], sz[1], sz[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					name := fmt.Sprintf("%s/%dx%dx%d/ta=%v/tb=%v", l, m, n, k, ta, tb)
					a := layout(randSlice(r, m*k), m, k, ta)
					b := layout(randSlice(r, k*n), k, n, tb)
					want := naiveGemm(m, n, k, a, b)
					c := randSlice(r, m*n) // garbage: must be overwritten
					withLevel(t, l, func() { Gemm(m, n, k, a, b, c) })
					for i := range c {
						require.InDelta(t, want[i], float64(c[i]), 1e-4*math.Sqrt(float64(k)), "%s at %d", name, i)
					}
				}
			}
		}
	}
}

// TestGemmStridedViews: operands read through strides that are both
// non-unit (a submatrix of a larger array, every other column), the
// general packing paths, and a batch whose operands overlap (stride 0).
func TestGemmStridedViews(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, l := range levels() {
		for _, sz := range [][3]int{{7, 17, 33}, {13, 5, 300}, {25, 35, 9}} {
			m, n, k := sz[0], sz[1], sz[2]
			// A: rows 3 apart-by-(2k+5), columns 2 apart, from offset 0.
			a := Mat{Data: randSlice(r, m*(2*k+5)), RowStride: 2*k + 5, ColStride: 2}
			// B: transposed storage with a row stride 3 and column stride 3k+1.
			b := Mat{Data: randSlice(r, 3*k+(n-1)*(3*k+1)+1), RowStride: 3, ColStride: 3*k + 1}
			want := naiveGemm(m, n, k, a, b)
			c := make([]float32, m*n)
			withLevel(t, l, func() { Gemm(m, n, k, a, b, c) })
			for i := range c {
				require.InDelta(t, want[i], float64(c[i]), 1e-4*math.Sqrt(float64(k)), "%s %v at %d", l, sz, i)
			}
		}
		// A batch of 5 sharing one B (stride 0), A elements 1 apart.
		m, n, k, batch := 9, 20, 31, 5
		a := Mat{Data: randSlice(r, m*k+batch), RowStride: k, ColStride: 1}
		b := Mat{Data: randSlice(r, k*n), RowStride: n, ColStride: 1}
		c := make([]float32, batch*m*n)
		withLevel(t, l, func() { GemmBatch(batch, m, n, k, a, 1, b, 0, c) })
		for i := range batch {
			ai := Mat{Data: a.Data[i:], RowStride: k, ColStride: 1}
			want := naiveGemm(m, n, k, ai, b)
			for j := range want {
				require.InDelta(t, want[j], float64(c[i*m*n+j]), 1e-4*math.Sqrt(float64(k)), "%s batch %d at %d", l, i, j)
			}
		}
	}
}

func TestGemmOutOfBoundsPanics(t *testing.T) {
	a := Mat{Data: make([]float32, 11), RowStride: 4, ColStride: 1}
	b := Mat{Data: make([]float32, 8), RowStride: 2, ColStride: 1}
	assert.Panics(t, func() { Gemm(3, 2, 4, a, b, make([]float32, 6)) }, "A needs 12 elements")
	a.Data = make([]float32, 12)
	assert.Panics(t, func() { Gemm(3, 2, 4, a, b, make([]float32, 5)) }, "C needs 6")
	assert.NotPanics(t, func() { Gemm(3, 2, 4, a, b, make([]float32, 6)) })
	assert.Panics(t, func() { GemmBatch(2, 3, 2, 4, a, 1, b, 0, make([]float32, 12)) }, "second A runs past the end")
}
