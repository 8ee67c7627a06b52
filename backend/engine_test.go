package backend

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/backend/kernels"
)

// The differential suite: every graph runs on a backend with the engine
// and on a plain simplego backend in the same process, at every kernel
// level this CPU has, and the results are compared (exactly for data
// movement and add/sub/mul, within the documented bounds otherwise). The
// engine's counters prove the kernels ran, not simplego's fallback.

// engineBackend returns a backend with the engine on.
func engineBackend(t testing.TB) backends.Backend {
	t.Helper()
	t.Setenv(KernelsEnvVar, "")
	b, err := New()
	require.NoError(t, err)
	require.True(t, EngineOn(b), "engine not on: %v", engine.err)
	t.Cleanup(b.Finalize)
	return b
}

// plainBackend returns a simplego backend the engine does not run for.
func plainBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := simplego.New("ops_sequential")
	require.NoError(t, err)
	require.False(t, EngineOn(b))
	t.Cleanup(b.Finalize)
	return b
}

// allLevels runs f at every kernel level this CPU supports.
func allLevels(t *testing.T, f func(t *testing.T)) {
	prev := kernels.Current()
	defer kernels.SetLevel(prev)
	for l := kernels.LevelGo; l <= kernels.Best(); l++ {
		kernels.SetLevel(l)
		t.Run(l.String(), f)
	}
}

// counts snapshots the engine's counters.
func counts() (ran, fell map[backends.OpType]int64) {
	ran, fell = map[backends.OpType]int64{}, map[backends.OpType]int64{}
	for op := range engine.ran {
		ran[backends.OpType(op)] = engine.ran[op].Load()
		fell[backends.OpType(op)] = engine.fellBack[op].Load()
	}
	return
}

// run executes fn on b with the given inputs and returns its outputs' flat
// values (float32 as float64).
func run(t testing.TB, b backends.Backend, fn func([]*Node) []*Node, inputs ...any) [][]float64 {
	t.Helper()
	e, err := NewExecAny(b, fn)
	require.NoError(t, err)
	defer e.Finalize()
	args := make([]any, len(inputs))
	for i, in := range inputs {
		args[i] = in
		if x, ok := in.(*tensors.Tensor); ok {
			c, err := x.LocalClone() // a tensor is bound to one backend
			require.NoError(t, err)
			args[i] = c
		}
	}
	outs, err := e.Exec(args...)
	require.NoError(t, err)
	res := make([][]float64, len(outs))
	for i, o := range outs {
		flat, err := tensors.CopyFlatData[float32](o)
		require.NoError(t, err)
		for _, v := range flat {
			res[i] = append(res[i], float64(v))
		}
	}
	return res
}

// compare runs fn on both backends and checks the outputs agree within tol
// (relative to max(1, |want|)); NaN must match NaN and ±Inf must match.
// It returns the engine's counters' increase.
func compare(t *testing.T, tol float64, fn func([]*Node) []*Node, inputs ...any) (ran, fell map[backends.OpType]int64) {
	t.Helper()
	want := run(t, plainBackend(t), fn, inputs...)
	r0, f0 := counts()
	got := run(t, engineBackend(t), fn, inputs...)
	r1, f1 := counts()
	ran, fell = map[backends.OpType]int64{}, map[backends.OpType]int64{}
	for op := range r1 {
		ran[op] = r1[op] - r0[op]
		fell[op] = f1[op] - f0[op]
	}
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]), "output %d", i)
		for j, w := range want[i] {
			g := got[i][j]
			switch {
			case math.IsNaN(w):
				require.True(t, math.IsNaN(g), "output %d[%d]: got %g, want NaN", i, j, g)
			case math.IsInf(w, 0):
				require.Equal(t, w, g, "output %d[%d]", i, j)
			default:
				require.InDelta(t, w, g, tol*math.Max(1, math.Abs(w)), "output %d[%d]", i, j)
			}
		}
	}
	return ran, fell
}

func randT(r *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

func flat32(t testing.TB, x *tensors.Tensor) []float32 {
	v, err := tensors.CopyFlatData[float32](x)
	require.NoError(t, err)
	return v
}

func TestEngineInstalled(t *testing.T) {
	b := engineBackend(t)
	assert.Contains(t, Describe(b), "engine "+kernels.Current().String())
	assert.Equal(t, "SimpleGo (go), engine off", Describe(plainBackend(t)))
	t.Setenv(KernelsEnvVar, "off")
	off, err := New()
	require.NoError(t, err)
	assert.False(t, EngineOn(off), "SNOPT_KERNELS=off")
	t.Setenv(KernelsEnvVar, "bogus")
	_, err = New()
	assert.ErrorContains(t, err, "SNOPT_KERNELS")
}

// TestPlainBackendUntouched: with the engine installed, a plain simplego
// backend in the same process still runs simplego's own executors: tanh
// bit for bit as float32(math.Tanh(float64(x))), and no engine counter moves.
func TestPlainBackendUntouched(t *testing.T) {
	engineBackend(t) // installs the engine
	x := make([]float32, 300)
	for i := range x {
		x[i] = float32(i)/37 - 4
	}
	r0, f0 := counts()
	got := run(t, plainBackend(t), func(in []*Node) []*Node { return []*Node{Tanh(in[0]), Dot(in[1], in[1])} },
		x, [][]float32{{1, 2}, {3, 4}})
	r1, f1 := counts()
	assert.Equal(t, r0, r1, "no op ran on the engine")
	assert.Equal(t, f0, f1, "no op counted as a fallback")
	for i, v := range x {
		require.Equal(t, float64(float32(math.Tanh(float64(v)))), got[0][i], "tanh(%g)", v)
	}
	assert.Equal(t, []float64{7, 10, 15, 22}, got[1])
}

// TestDotGeneralLayouts: every layout of a product the project builds —
// contracting axis after or before the free one on either side, leading
// batch axes, several contracting axes — at sizes 1, 7, 17, 33 and 1000+.
func TestDotGeneralLayouts(t *testing.T) {
	allLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, sz := range [][3]int{{1, 1, 1}, {7, 17, 33}, {33, 7, 17}, {17, 33, 7}, {1029, 19, 13}, {13, 1003, 21}, {12, 16, 300}} {
			m, n, k := sz[0], sz[1], sz[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					name := fmt.Sprintf("%dx%dx%d ta=%v tb=%v", m, n, k, ta, tb)
					aDims, aC := []int{m, k}, 1
					if ta {
						aDims, aC = []int{k, m}, 0
					}
					bDims, bC := []int{k, n}, 0
					if tb {
						bDims, bC = []int{n, k}, 1
					}
					ran, fell := compare(t, 2e-5*math.Sqrt(float64(k)), func(in []*Node) []*Node {
						return []*Node{DotGeneral(in[0], []int{aC}, nil, in[1], []int{bC}, nil)}
					}, randT(r, aDims...), randT(r, bDims...))
					assert.Equal(t, int64(1), ran[backends.OpTypeDotGeneral], name)
					assert.Zero(t, fell[backends.OpTypeDotGeneral], name)
				}
			}
		}
		// Batch axes leading, on both sides, contracting after and before.
		ran, _ := compare(t, 1e-4, func(in []*Node) []*Node {
			return []*Node{
				DotGeneral(in[0], []int{3}, []int{0, 1}, in[1], []int{2}, []int{0, 1}), // [2,3,7,9]·[2,3,9,5]
				DotGeneral(in[0], []int{2}, []int{0, 1}, in[0], []int{2}, []int{0, 1}), // contract the 7s
			}
		}, randT(r, 2, 3, 7, 9), randT(r, 2, 3, 9, 5))
		assert.Equal(t, int64(2), ran[backends.OpTypeDotGeneral])
		// Two contracting axes, in order on both sides.
		ran, _ = compare(t, 1e-4, func(in []*Node) []*Node {
			return []*Node{DotGeneral(in[0], []int{1, 2}, nil, in[1], []int{0, 1}, nil)}
		}, randT(r, 11, 4, 5), randT(r, 4, 5, 13))
		assert.Equal(t, int64(1), ran[backends.OpTypeDotGeneral])
		// Layouts the engine leaves to simplego (batch axis not leading,
		// contracting axes out of order): same results through the fallback.
		ran, fell := compare(t, 1e-4, func(in []*Node) []*Node {
			return []*Node{
				DotGeneral(in[0], []int{2}, []int{1}, in[1], []int{1}, []int{0}), // [5,3,7]·[3,7,4]
				DotGeneral(in[2], []int{2, 1}, nil, in[3], []int{1, 0}, nil),     // reversed pairs
			}
		}, randT(r, 5, 3, 7), randT(r, 3, 7, 4), randT(r, 6, 4, 5), randT(r, 4, 5, 3))
		assert.Equal(t, int64(2), fell[backends.OpTypeDotGeneral])
		assert.Zero(t, ran[backends.OpTypeDotGeneral])
	})
}

// TestDotGeneralNaNInf: NaN and ±Inf in either operand propagate as in
// simplego (0·Inf = NaN, Inf + finite = Inf), on tile edges too.
func TestDotGeneralNaNInf(t *testing.T) {
	allLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		a, b := randT(r, 13, 20), randT(r, 20, 17)
		av, bv := flat32(t, a), flat32(t, b)
		av[0*20+3] = float32(math.NaN())
		av[12*20+19] = float32(math.Inf(1)) // last row, last step: an edge tile
		av[5*20+0] = float32(math.Inf(-1))
		bv[7*17+16] = float32(math.Inf(1)) // last column
		bv[2*17+4] = 0
		av[9*20+2] = float32(math.Inf(1)) // meets the zero above: NaN in column 4
		ran, _ := compare(t, 1e-4, func(in []*Node) []*Node { return []*Node{Dot(in[0], in[1])} },
			tensors.FromFlatDataAndDimensions(av, 13, 20), tensors.FromFlatDataAndDimensions(bv, 20, 17))
		assert.Equal(t, int64(1), ran[backends.OpTypeDotGeneral])
	})
}

// TestElementwiseOps: tanh, exp, logistic, log1p within their bounds and
// add/sub/mul exactly, including NaN/±Inf, in place (an owned input) and
// not (an input used twice), and with simplego's scalar broadcasting left
// to simplego.
func TestElementwiseOps(t *testing.T) {
	allLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		x := randT(r, 37, 5)
		xv := flat32(t, x)
		xv[0], xv[1], xv[2], xv[3] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 95
		xv[4], xv[5] = -120, 40
		x = tensors.FromFlatDataAndDimensions(xv, 37, 5)
		y := randT(r, 37, 5)
		ran, fell := compare(t, 6e-7, func(in []*Node) []*Node {
			a, b := in[0], in[1]
			owned := Tanh(Add(a, b))     // Add's output is owned by Tanh: in place
			shared := Mul(a, Sigmoid(a)) // a is used again: not owned
			return []*Node{owned, shared, Exp(Sub(a, b)), Tanh(a), Exp(a), Sigmoid(a), Log1P(a), Log1P(Abs(b)),
				Add(a, b), Sub(a, b), Mul(a, b), Add(Mul(a, a), Sub(b, a)),
				Add(a, Scalar(a.Graph(), dtypes.Float32, 2))} // scalar: simplego's own
		}, x, y)
		for _, op := range []backends.OpType{backends.OpTypeTanh, backends.OpTypeExp, backends.OpTypeLogistic, backends.OpTypeLog1p,
			backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul} {
			assert.Positive(t, ran[op], "%s ran on the engine", op)
		}
		assert.Positive(t, fell[backends.OpTypeAdd], "the scalar Add went to simplego")
	})
}

// TestDataMovementOps: Slice (strided, partial, whole), Concatenate on
// every axis, Gather and ScatterSum of whole rows (int32 and int64
// indices, repeated indices), all exact; out-of-range gather indices go to
// simplego (which clamps).
func TestDataMovementOps(t *testing.T) {
	allLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		x := randT(r, 4, 9, 11, 3)
		ran, fell := compare(t, 0, func(in []*Node) []*Node {
			x := in[0]
			return []*Node{
				Slice(x, AxisRange(), AxisRange(2, 9), AxisRange(1, 8), AxisRange()),
				Slice(x, AxisRange(1, 3), AxisRange(0, 9).Stride(2), AxisRange(), AxisRange(1, 2)),
				Slice(x, AxisRange(), AxisRange(), AxisRange(0, 11).Stride(3), AxisRange()),
				Slice(x, AxisRange(3, 4)),
				Concatenate([]*Node{x, x, Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, 1))}, 3),
				Concatenate([]*Node{x, Slice(x, AxisRange(), AxisRange(0, 2))}, 1),
				Concatenate([]*Node{Slice(x, AxisRange(1, 2)), x}, 0),
			}
		}, x)
		assert.Equal(t, int64(7), ran[backends.OpTypeSlice])
		assert.Equal(t, int64(3), ran[backends.OpTypeConcatenate])
		assert.Zero(t, fell[backends.OpTypeSlice]+fell[backends.OpTypeConcatenate])

		rows := randT(r, 23, 7)
		idx32 := tensors.FromValue([][]int32{{3}, {0}, {22}, {3}, {9}, {9}, {9}, {1}})
		idx64 := tensors.FromValue([][]int64{{5}, {5}, {0}, {22}})
		upd := randT(r, 8, 7)
		ran, _ = compare(t, 0, func(in []*Node) []*Node {
			return []*Node{
				Gather(in[0], in[1]), Gather(in[0], in[2]),
				ScatterSum(in[0], in[1], in[3], false, false),
				ScatterSum(ZerosLike(in[0]), in[1], in[3], false, false),
			}
		}, rows, idx32, idx64, upd)
		assert.Equal(t, int64(2), ran[backends.OpTypeGather])
		assert.Equal(t, int64(2), ran[backends.OpTypeScatterSum])

		bad := tensors.FromValue([][]int32{{-1}, {23}, {2}})
		_, fell = compare(t, 0, func(in []*Node) []*Node { return []*Node{Gather(in[0], in[1])} }, rows, bad)
		assert.Equal(t, int64(1), fell[backends.OpTypeGather], "out-of-range indices go to simplego")
	})
}

// TestAutodiffThroughEngineOps: gradients through every swapped op agree
// with plain simplego's.
func TestAutodiffThroughEngineOps(t *testing.T) {
	allLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		w, x := randT(r, 7, 5), randT(r, 13, 7)
		idx := tensors.FromValue([][]int32{{2}, {0}, {12}, {2}, {5}, {7}, {1}, {3}}) // 8×10 elements: above minElementwise
		ran, _ := compare(t, 2e-5, func(in []*Node) []*Node {
			w, x := in[0], in[1]
			h := Tanh(Dot(x, w))                         // [13, 5]
			h2 := Concatenate([]*Node{Sigmoid(h), h}, 1) // [13, 10]; no Slice: simplego has no gradient for it
			g := Gather(Mul(h2, h2), in[2])              // [4, 8]
			loss := Add(ReduceAllSum(Exp(Mul(g, Scalar(g.Graph(), dtypes.Float32, 0.1)))), ReduceAllSum(Sub(h2, Square(h2))))
			return Gradient(loss, w, x)
		}, w, x, idx)
		for _, op := range []backends.OpType{backends.OpTypeDotGeneral, backends.OpTypeTanh, backends.OpTypeLogistic,
			backends.OpTypeExp, backends.OpTypeConcatenate, backends.OpTypeGather, backends.OpTypeScatterSum, backends.OpTypeMul} {
			assert.Positive(t, ran[op], "%s ran on the engine", op)
		}
	})
}

// TestSameFieldsCatchesMismatches: a mirror with a field renamed, retyped,
// moved or missing fails verification.
func TestSameFieldsCatchesMismatches(t *testing.T) {
	//lint:ignore U1000 the fields are only read through reflect
	type real struct {
		a int
		b []int
		c bool
	}
	require.NoError(t, sameFields(reflect.TypeFor[struct {
		a int
		b []int
		c bool
	}](), reflect.TypeFor[real]()))
	for name, m := range map[string]reflect.Type{
		"renamed": reflect.TypeFor[struct {
			a int
			x []int
			c bool
		}](),
		"retyped": reflect.TypeFor[struct {
			a int
			b []int32
			c bool
		}](),
		"swapped": reflect.TypeFor[struct {
			b []int
			a int
			c bool
		}](),
		"missing": reflect.TypeFor[struct {
			a int
			b []int
		}](),
	} {
		assert.Error(t, sameFields(m, reflect.TypeFor[real]()), name)
	}
}

// TestFailedVerificationFallsBack runs a child process in which install
// fails its checks: the child must get a working plain simplego with the
// executors untouched, and print exactly one line saying so.
func TestFailedVerificationFallsBack(t *testing.T) {
	if os.Getenv("SNOPT_ENGINE_CHILD") == "1" {
		fallbackChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailedVerificationFallsBack$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SNOPT_ENGINE_CHILD=1", KernelsEnvVar+"=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "child: %s\n%s", out, stderr.String())
	lines := strings.Count(stderr.String(), "kernel engine not installed")
	assert.Equal(t, 1, lines, "one notice line, got stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "planted mismatch; plain simplego runs")
}

func fallbackChild(t *testing.T) {
	before := make([]uintptr, len(simplegoExecutors))
	for i, f := range simplegoExecutors {
		before[i] = reflect.ValueOf(f).Pointer()
	}
	installCheck = func() error { return errors.New("planted mismatch") }
	b, err := New()
	require.NoError(t, err)
	require.False(t, EngineOn(b))
	_, err = New() // a second backend: no second notice
	require.NoError(t, err)
	for i, f := range simplegoExecutors {
		require.Equal(t, before[i], reflect.ValueOf(f).Pointer(), "executor %s changed", backends.OpType(i))
	}
	var ee *EngineError
	require.ErrorAs(t, install(), &ee)
	got := run(t, b, func(in []*Node) []*Node { return []*Node{Tanh(Dot(in[0], in[0]))} }, [][]float32{{1, 2}, {3, 4}})
	assert.InDeltaSlice(t, []float64{math.Tanh(7), math.Tanh(10), math.Tanh(15), math.Tanh(22)}, got[0], 1e-6)
}
