package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// gemmShapes are the project's products: the image field's convolution at
// width 16 and 64 (patches·weights), the time-series field, the CNF's
// square layer, and their transposes as the VJPs read them.
var gemmShapes = []struct {
	name    string
	m, n, k int
	ta, tb  bool
}{
	{"conv16", 4608, 16, 154, false, false},
	{"conv16_dW", 154, 16, 4608, true, false},
	{"conv16_dX", 4608, 154, 16, false, true},
	{"conv64", 1152, 64, 586, false, false},
	{"series", 512, 32, 34, false, false},
	{"series_dX", 512, 34, 32, false, true},
	{"series_dW", 34, 32, 512, true, false},
	{"cnf", 128, 860, 860, false, false},
	{"cnf_T", 128, 860, 860, false, true},
}

// BenchmarkGemm reports GFLOP/s for each project shape at each level.
//
//	go test ./backend/kernels -run '^$' -bench Gemm
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range gemmShapes {
		a := layout(randSlice(r, s.m*s.k), s.m, s.k, s.ta)
		bm := layout(randSlice(r, s.k*s.n), s.k, s.n, s.tb)
		c := make([]float32, s.m*s.n)
		for _, l := range levels() {
			b.Run(fmt.Sprintf("%s/%s", s.name, l), func(b *testing.B) {
				withLevel(b, l, func() {
					for b.Loop() {
						Gemm(s.m, s.n, s.k, a, bm, c)
					}
				})
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
