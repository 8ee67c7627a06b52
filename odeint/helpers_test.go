package odeint

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// field wraps a single-tensor vector field as a Func.
func field(fn func(t, y *Node) *Node) Func {
	return func(_ *context.Context, t *Node, y []*Node) []*Node { return []*Node{fn(t, y[0])} }
}

// flat64 copies a float64 or float32 tensor's values as float64.
func flat64(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	switch v := x.Value().(type) {
	case float64:
		return []float64{v}
	case float32:
		return []float64{float64(v)}
	}
	if x.DType().String() == "Float32" {
		vals, err := tensors.CopyFlatData[float32](x)
		require.NoError(t, err)
		out := make([]float64, len(vals))
		for i, v := range vals {
			out[i] = float64(v)
		}
		return out
	}
	vals, err := tensors.CopyFlatData[float64](x)
	require.NoError(t, err)
	return vals
}

// solve runs Solve on the shared test backend and requires success.
func solve(t *testing.T, f Func, y0 []*tensors.Tensor, ts []float64, opts *Options) *Solution {
	t.Helper()
	sol, err := Solve(testutil.Backend(), nil, f, y0, ts, opts)
	require.NoError(t, err)
	require.Len(t, sol.Ys, len(ts))
	return sol
}

// maxScaledErr returns max_i |got_i − want_i| / max(1, |want_i|).
func maxScaledErr(got, want []float64) float64 {
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(got[i]-want[i])/math.Max(1, math.Abs(want[i])))
	}
	return worst
}

func tolOpts(method Method, tol float64) *Options {
	return &Options{Method: method, RTol: tol, ATol: tol}
}
