package kernels

import (
	"fmt"
	"math"
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

// BenchmarkElementwise reports ns per element for each function at each
// level, and for the float64 math form simplego runs ("simplego"), on
// 64 Ki elements in [-4, 4).
//
//	go test ./backend/kernels -run '^$' -bench Elementwise
func BenchmarkElementwise(b *testing.B) {
	const n = 1 << 16
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%8192)/1024 - 4
	}
	dst := make([]float32, n)
	simplego := map[string]func(float64) float64{
		"tanh": math.Tanh, "exp": math.Exp, "log1p": math.Log1p,
		"logistic": func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
	}
	for _, name := range []string{"tanh", "exp", "logistic", "log1p"} {
		f := fns[name]
		for _, l := range levels() {
			b.Run(name+"/"+l.String(), func(b *testing.B) {
				withLevel(b, l, func() {
					for b.Loop() {
						f(dst, src)
					}
				})
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
			})
		}
		g := simplego[name]
		b.Run(name+"/simplego", func(b *testing.B) {
			for b.Loop() {
				for i, x := range src {
					dst[i] = float32(g(float64(x)))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
		})
	}
	for name, f := range map[string]func(d, a, b []float32){"add": Add, "mul": Mul} {
		for _, l := range levels() {
			b.Run(name+"/"+l.String(), func(b *testing.B) {
				withLevel(b, l, func() {
					for b.Loop() {
						f(dst, src, src)
					}
				})
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
			})
		}
	}
}
