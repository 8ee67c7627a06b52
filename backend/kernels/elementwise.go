package kernels

import (
	"fmt"
	"math"
)

// Element-wise float32 functions. Each writes f(src[i]) (or a[i] op b[i])
// into dst[i] for i < len(src); dst may be the same slice as an input, and
// len(dst) must be at least len(src) (they panic otherwise). At LevelAVX2
// and above they run 8 lanes at a time in assembly (AVX2+FMA: the
// AVX-512 level uses the same code); at LevelGo they run the same formulas
// one element at a time.
//
// Error bounds, measured by the tests over the whole float32 range
// (elementwise_test.go) against float64 math:
//   - Tanh: absolute error ≤ 3e-7 (the rational approximation Eigen and XLA
//     use, on x clamped to ±7.90531); ±Inf → ±1.
//   - Exp: relative error ≤ 3e-7 where the result is a normal float32
//     (Cephes' polynomial after reduction by ln 2, scaled by 2ⁿ in two
//     steps); results below 2⁻¹²⁶ are within 2⁻¹⁴⁹ absolute; x > 88.7228
//     gives +Inf, -Inf gives 0.
//   - Logistic: relative error ≤ 5e-7 (1/(1+e^-|x|), or e^-|x|/(1+e^-|x|)
//     for x < 0, with the Exp above).
//   - Log1p: relative error ≤ 4e-7 (Cephes' log on u = 1+x, times x/(u-1));
//     -1 gives -Inf, x < -1 gives NaN, +Inf gives +Inf.
//   - Add, Sub, Mul: exact (IEEE single precision, as simplego).
//
// NaN in gives NaN out in every function, as in simplego.

// vecConsts holds the element-wise kernels' constants, each repeated over
// 8 lanes (one ymm register); the assembly reads row i at offset 32·i, so
// the order is fixed.
//
//lint:ignore U1000 read by the assembly (elementwise_amd64.s)
var vecConsts = func() (c [44][8]float32) {
	v := []float32{
		tanhClamp, -tanhClamp,
		tanhA[0], tanhA[1], tanhA[2], tanhA[3], tanhA[4], tanhA[5], tanhA[6],
		tanhB[0], tanhB[1], tanhB[2], tanhB[3],
		expHi, expLo, math.Log2E, expC1, expC2,
		expP[0], expP[1], expP[2], expP[3], expP[4], expP[5],
		1,
		math.Float32frombits(0x7fffffff), math.Float32frombits(127),
		math.Float32frombits(126), math.Float32frombits(0x807fffff), 0.5, sqrtHalf,
		logP[0], logP[1], logP[2], logP[3], logP[4], logP[5], logP[6], logP[7], logP[8],
		-0.5, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	}
	for i, x := range v {
		for j := range 8 {
			c[i][j] = x
		}
	}
	return c
}()

// tanh(x) ≈ x·P(x²)/Q(x²) on x clamped to ±tanhClamp.
const tanhClamp = 7.90531110763549805

var (
	tanhA = [7]float32{4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
		5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16}
	tanhB = [4]float32{4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06}
)

// exp(x) = 2ⁿ·e^r with n = round(x·log₂e), r = x - n·(c1+c2), e^r by
// Cephes' degree-7 polynomial.
const (
	expHi = 88.8
	expLo = -105
	expC1 = 0.693359375
	expC2 = -2.12194440e-4
)

var expP = [6]float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1}

// log(u) for a normal u > 0: u = m·2ᵉ with m in [√½, √2), then Cephes'
// polynomial in m-1; log1p(x) = log(u)·x/(u-1) with u = 1+x rounded
// (exact where u = 1: then log1p(x) = x).
const sqrtHalf = 0.707106781186547524

var logP = [9]float32{7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
	1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1}

func logCore(u float32) float32 {
	bits := math.Float32bits(u)
	e := float32(int32(bits>>23) - 126)
	m := math.Float32frombits(bits&0x807fffff | 0x3f000000)
	if m < sqrtHalf {
		e--
		m += m
	}
	m--
	z := m * m
	y := logP[0]
	for i := 1; i < 9; i++ {
		y = fma32(m, y, logP[i])
	}
	y = y * m * z
	y = fma32(e, expC2, y)
	y = fma32(z, -0.5, y)
	return fma32(e, expC1, m+y)
}

func log1p1(x float32) float32 {
	u := 1 + x
	switch {
	case x != x || u == 1 || x > math.MaxFloat32:
		return x
	case u == 0:
		return float32(math.Inf(-1))
	case u < 0:
		return float32(math.NaN())
	}
	return logCore(u) * (x / (u - 1))
}

// minNaN returns min(c, x), or x when x is NaN (as the assembly's MINPS).
func minNaN(c, x float32) float32 {
	if c < x {
		return c
	}
	return x
}

// maxNaN returns max(c, x), or x when x is NaN.
func maxNaN(c, x float32) float32 {
	if c > x {
		return c
	}
	return x
}

func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

func tanh1(x float32) float32 {
	x = maxNaN(-tanhClamp, minNaN(tanhClamp, x))
	x2 := x * x
	p := tanhA[6]
	for i := 5; i >= 0; i-- {
		p = fma32(x2, p, tanhA[i])
	}
	p *= x
	q := tanhB[3]
	for i := 2; i >= 0; i-- {
		q = fma32(x2, q, tanhB[i])
	}
	return p / q
}

// expCore is exp on x already clamped to [expLo, expHi] (or NaN).
func expCore(x float32) float32 {
	fx := float32(math.RoundToEven(float64(x * math.Log2E)))
	x = fma32(-fx, expC1, x)
	x = fma32(-fx, expC2, x)
	z := x * x
	y := expP[0]
	for i := 1; i < 6; i++ {
		y = fma32(x, y, expP[i])
	}
	y = fma32(z, y, x) + 1
	if fx != fx {
		return fx
	}
	n := int32(fx)
	n1 := n >> 1
	n2 := n - n1
	return y * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}

func exp1(x float32) float32 { return expCore(maxNaN(expLo, minNaN(expHi, x))) }

func logistic1(x float32) float32 {
	e := expCore(maxNaN(expLo, -float32(math.Abs(float64(x)))))
	r := 1 / (1 + e)
	if x < 0 {
		return e * r
	}
	return r
}

func checkLen(dst int, srcs ...int) {
	for _, s := range srcs {
		if s != srcs[0] {
			panic(fmt.Sprintf("kernels: operands of %v elements", srcs))
		}
	}
	if dst < srcs[0] {
		panic(fmt.Sprintf("kernels: destination of %d elements for %d", dst, srcs[0]))
	}
}

// unaryOp names an element-wise function for the dispatch.
type unaryOp int

const (
	opTanh unaryOp = iota
	opExp
	opLogistic
	opLog1p
)

var unaryGo = [...]func(float32) float32{opTanh: tanh1, opExp: exp1, opLogistic: logistic1, opLog1p: log1p1}

// unary applies op: the vector kernel on whole blocks of 8, and on the tail
// through an 8-element buffer, so every element gets the same formula
// whatever its position.
func unary(op unaryOp, dst, src []float32) {
	checkLen(len(dst), len(src))
	n := len(src)
	if n == 0 {
		return
	}
	if Current() >= LevelAVX2 && vecUnary(op, dst, src) {
		return
	}
	f := unaryGo[op]
	for i, x := range src {
		dst[i] = f(x)
	}
}

// Tanh sets dst[i] = tanh(src[i]).
func Tanh(dst, src []float32) { unary(opTanh, dst, src) }

// Exp sets dst[i] = e^src[i].
func Exp(dst, src []float32) { unary(opExp, dst, src) }

// Logistic sets dst[i] = 1/(1+e^-src[i]).
func Logistic(dst, src []float32) { unary(opLogistic, dst, src) }

// Log1p sets dst[i] = ln(1+src[i]).
func Log1p(dst, src []float32) { unary(opLog1p, dst, src) }

// binaryOp names a same-shape binary operation.
type binaryOp int

const (
	opAdd binaryOp = iota
	opSub
	opMul
)

func binary(op binaryOp, dst, a, b []float32) {
	checkLen(len(dst), len(a), len(b))
	n := len(a)
	done := 0
	if Current() >= LevelAVX2 {
		done = vecBinary(op, dst, a, b)
	}
	a, b, dst = a[done:n], b[done:n], dst[done:n]
	switch op {
	case opAdd:
		for i := range a {
			dst[i] = a[i] + b[i]
		}
	case opSub:
		for i := range a {
			dst[i] = a[i] - b[i]
		}
	case opMul:
		for i := range a {
			dst[i] = a[i] * b[i]
		}
	}
}

// Add sets dst[i] = a[i] + b[i].
func Add(dst, a, b []float32) { binary(opAdd, dst, a, b) }

// Sub sets dst[i] = a[i] - b[i].
func Sub(dst, a, b []float32) { binary(opSub, dst, a, b) }

// Mul sets dst[i] = a[i] · b[i].
func Mul(dst, a, b []float32) { binary(opMul, dst, a, b) }
