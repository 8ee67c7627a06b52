package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

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
