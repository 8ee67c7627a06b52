package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sweep returns float32 values spread over the whole range: every stride-th
// bit pattern (both signs, normals, subnormals, ±0, ±Inf, NaNs), plus
// special values.
func sweep(stride uint32) []float32 {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += uint64(stride) {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	inf := float32(math.Inf(1))
	return append(xs, 0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()),
		1, -1, -0.99999994, -1.0000001, 1e-8, -1e-8, 0.41421357, -0.29289323, 88.72283, 88.7229, -87.33654, -103.9, -104, 7.9053, -7.9053, 1e-30, -1e-30, math.MaxFloat32, -math.MaxFloat32)
}

// ref is each function in float64.
var ref = map[string]func(float64) float64{
	"tanh":     math.Tanh,
	"exp":      math.Exp,
	"logistic": func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
	"log1p":    math.Log1p,
}

var fns = map[string]func(dst, src []float32){"tanh": Tanh, "exp": Exp, "logistic": Logistic, "log1p": Log1p}

// bounds are the documented error bounds: absolute for tanh, relative for
// exp and logistic (where the result is a normal float32), absolute 2⁻¹⁴⁹
// below that.
var bounds = map[string]struct{ abs, rel float64 }{
	"tanh":     {abs: 3e-7},
	"exp":      {rel: 3e-7},
	"logistic": {rel: 5e-7},
	"log1p":    {rel: 4e-7},
}

func TestElementwiseErrorBoundsOverTheFloat32Range(t *testing.T) {
	stride := uint32(997)
	if testing.Short() {
		stride = 99991
	}
	xs := sweep(stride)
	got := make([]float32, len(xs))
	for _, l := range levels() {
		for name, f := range fns {
			withLevel(t, l, func() { f(got, xs) })
			bound := bounds[name]
			worst, worstAt := 0.0, float32(0)
			for i, x := range xs {
				want := ref[name](float64(x))
				g := float64(got[i])
				if math.IsNaN(want) {
					require.True(t, math.IsNaN(g), "%s/%s(%g) = %g, want NaN", l, name, x, g)
					continue
				}
				if math.IsInf(want, 0) || math.Abs(want) > math.MaxFloat32 {
					require.Equal(t, math.Inf(int(math.Copysign(1, want))), g, "%s/%s(%g)", l, name, x)
					continue
				}
				var e float64
				switch {
				case bound.abs > 0:
					e = math.Abs(g-want) / bound.abs
				case math.Abs(want) < 0x1p-126:
					e = math.Abs(g-want) / 0x1p-149
				default:
					e = math.Abs(g-want) / math.Abs(want) / bound.rel
				}
				if e > worst {
					worst, worstAt = e, x
				}
			}
			assert.LessOrEqual(t, worst, 1.0, "%s/%s: worst error %.3g of the bound at x=%g", l, name, worst, worstAt)
			t.Logf("%s/%s: worst error %.3f of the bound (at x=%g) over %d values", l, name, worst, worstAt, len(xs))
		}
	}
}

// TestElementwiseLevelsAgree: the vector and scalar forms give the same
// values (to an ulp: FMA contraction may differ), at every position of a
// slice (whole blocks and tails), in place or not.
func TestElementwiseLevelsAgreeInPlaceAndOnTails(t *testing.T) {
	xs := sweep(1_000_003)
	for _, n := range []int{1, 7, 8, 9, 17, 33, 1001} {
		src := xs[:n]
		for name, f := range fns {
			want := make([]float32, n)
			withLevel(t, LevelGo, func() { f(want, src) })
			for _, l := range levels() {
				got := make([]float32, n)
				inplace := append([]float32(nil), src...)
				withLevel(t, l, func() {
					f(got, src)
					f(inplace, inplace)
				})
				for i := range n {
					msg := fmt.Sprintf("%s/%s n=%d i=%d x=%g", l, name, n, i, src[i])
					if math.IsNaN(float64(want[i])) {
						assert.True(t, math.IsNaN(float64(got[i])), msg)
						continue
					}
					assert.InDelta(t, want[i], got[i], 2e-7*math.Max(1, math.Abs(float64(want[i]))), msg)
					assert.Equal(t, got[i], inplace[i], msg+" (in place)")
				}
			}
		}
	}
}

func TestBinaryExactAtEveryLevel(t *testing.T) {
	xs := sweep(3_000_017)
	for _, n := range []int{1, 7, 8, 9, 33, 1001} {
		a := xs[:n]
		b := xs[len(xs)-n:]
		for _, l := range levels() {
			withLevel(t, l, func() {
				for name, f := range map[string]func(d, a, b []float32){"add": Add, "sub": Sub, "mul": Mul} {
					got := make([]float32, n)
					f(got, a, b)
					alias := append([]float32(nil), a...)
					f(alias, alias, b)
					for i := range n {
						var want float32
						switch name {
						case "add":
							want = a[i] + b[i]
						case "sub":
							want = a[i] - b[i]
						case "mul":
							want = a[i] * b[i]
						}
						if want != want {
							assert.True(t, got[i] != got[i] && alias[i] != alias[i], "%s/%s NaN at %d", l, name, i)
							continue
						}
						assert.Equal(t, want, got[i], "%s/%s n=%d i=%d", l, name, n, i)
						assert.Equal(t, want, alias[i], "%s/%s in place n=%d i=%d", l, name, n, i)
					}
				}
			})
		}
	}
}

func TestElementwiseLengthMismatchPanics(t *testing.T) {
	assert.Panics(t, func() { Tanh(make([]float32, 3), make([]float32, 4)) })
	assert.Panics(t, func() { Add(make([]float32, 4), make([]float32, 4), make([]float32, 3)) })
}
