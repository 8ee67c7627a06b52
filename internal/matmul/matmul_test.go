package matmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/internal/testutil"
)

// product returns Σ_l x[i][l]·y[l][j] with x and y read through the
// accessors, summed in order.
func product(rows, inner, cols int, x, y func(i, l int) float64) [][]float64 {
	out := make([][]float64, rows)
	for i := range out {
		out[i] = make([]float64, cols)
		for j := range out[i] {
			for l := range inner {
				out[i][j] += x(i, l) * y(l, j)
			}
		}
	}
	return out
}

func run(t *testing.T, fn func(a, b *Node) *Node, a, b [][]float64) [][]float64 {
	t.Helper()
	exec := MustNewExec(testutil.Backend(), fn)
	out := exec.MustExec(tensors.FromValue(a), tensors.FromValue(b))[0]
	return out.Value().([][]float64)
}

func requireClose(t *testing.T, want, got [][]float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]))
		for j := range want[i] {
			require.InDelta(t, want[i][j], got[i][j], 1e-10*(1+math.Abs(want[i][j])), "entry [%d, %d]", i, j)
		}
	}
}

// TestProductsMatchBruteForce checks the three products against sums
// written out, on shapes that are cut into row blocks (with 2 and 3
// workers, so blocks are not halves only) and on shapes left whole.
func TestProductsMatchBruteForce(t *testing.T) {
	defer func(w int) { workers = w }(workers)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range []int{2, 3} {
		workers = w
		for _, sz := range [][3]int{{96, 37, 29}, {600, 13, 7}, {7, 5, 3}, {97, 41, 23}} {
			m, k, n := sz[0], sz[1], sz[2]
			t.Run(fmt.Sprintf("workers%d/%dx%dx%d", w, m, k, n), func(t *testing.T) {
				a, b, bt := testutil.RandMat(rng, m, k), testutil.RandMat(rng, k, n), testutil.RandMat(rng, n, k)
				want := product(m, k, n, func(i, l int) float64 { return a[i][l] }, func(l, j int) float64 { return b[l][j] })
				requireClose(t, want, run(t, AB, a, b))
				wantT := product(m, k, n, func(i, l int) float64 { return a[i][l] }, func(l, j int) float64 { return bt[j][l] })
				requireClose(t, wantT, run(t, ABT, a, bt))
				c := testutil.RandMat(rng, m, n)
				wantTA := product(k, m, n, func(i, l int) float64 { return a[l][i] }, func(l, j int) float64 { return c[l][j] })
				requireClose(t, wantTA, run(t, ATB, a, c))
			})
		}
	}
}

// TestBlocks checks which products are cut, and into how many blocks, with
// two workers, on simplego's own kernels; with the engine none is.
func TestBlocks(t *testing.T) {
	defer func(w int) { workers = w }(workers)
	workers = 2
	x := Parameter(NewGraph(testutil.PlainBackend(), "blocks"), "x", shapes.Make(dtypes.Float32, 1))
	engineOn := backend.EngineOn(testutil.Backend()) // false under SNOPT_KERNELS=off
	fast := Parameter(NewGraph(testutil.Backend(), "whole"), "x", shapes.Make(dtypes.Float32, 1))
	fast64 := Parameter(NewGraph(testutil.Backend(), "whole64"), "x", shapes.Make(dtypes.Float64, 1))
	cases := []struct {
		name          string
		m, k, n       int
		rows, sumRows int
	}{
		{"time-series field: halves", 512, 33, 32, 2, 2},
		{"conv field: 784-row blocks keep 784·16 outputs on the small kernel", 6272, 153, 16, 8, 2},
		{"its transpose: 98-row blocks (98·153 ≤ 16384)", 6272, 16, 153, 64, 2},
		{"conv field at width 64: the blocked kernel wastes 4 % on padding, whole", 6272, 586, 64, 1, 1},
		{"its transpose: no padding at all, whole", 6272, 576, 64, 1, 1},
		{"blocked kernel would pad 33 to 64: blocks", 4096, 33, 32, 8, 2},
		{"too small to pay", 7, 5, 3, 1, 1},
		{"odd row count: whole", 513, 33, 32, 1, 1},
		{"no block of 4 rows fits; the [785, 5000] sum is too large", 128, 785, 5000, 1, 1},
	}
	for _, c := range cases {
		require.Equal(t, c.rows, rowBlocks(x, c.m, c.k, c.n), c.name)
		require.Equal(t, c.sumRows, sumBlocks(x, c.m, c.k, c.n), c.name)
		if engineOn {
			require.Equal(t, 1, rowBlocks(fast, c.m, c.k, c.n), "engine: whole: "+c.name)
			require.Equal(t, 1, sumBlocks(fast, c.m, c.k, c.n), "engine: whole: "+c.name)
		} else {
			require.Equal(t, c.rows, rowBlocks(fast, c.m, c.k, c.n), "engine off: "+c.name)
		}
		require.Equal(t, c.rows, rowBlocks(fast64, c.m, c.k, c.n), "float64 stays on simplego: "+c.name)
	}
	workers = 1
	require.Equal(t, 1, rowBlocks(x, 512, 33, 32), "one worker: nothing to split for")
	require.Equal(t, 1, sumBlocks(x, 512, 33, 32), "one worker: nothing to split for")
}

// TestAutodiffThroughBlocks checks that GoMLX's reverse mode differentiates
// the cut products: for L = Σ (a·b) ⊙ c, ∂L/∂a = c·bᵀ and ∂L/∂b = aᵀ·c.
func TestAutodiffThroughBlocks(t *testing.T) {
	defer func(w int) { workers = w }(workers)
	workers = 2
	rng := rand.New(rand.NewPCG(3, 4))
	m, k, n := 96, 37, 29
	a, b, c := testutil.RandMat(rng, m, k), testutil.RandMat(rng, k, n), testutil.RandMat(rng, m, n)
	exec := MustNewExec(testutil.PlainBackend(), func(a, b, c *Node) []*Node {
		require.Equal(t, 2, rowBlocks(a, m, k, n), "the product must be cut for this test to mean anything")
		loss := ReduceAllSum(Mul(AB(a, b), c))
		return Gradient(loss, a, b)
	})
	out := exec.MustExec(tensors.FromValue(a), tensors.FromValue(b), tensors.FromValue(c))
	wantA := product(m, n, k, func(i, l int) float64 { return c[i][l] }, func(l, j int) float64 { return b[j][l] })
	wantB := product(k, m, n, func(i, l int) float64 { return a[l][i] }, func(l, j int) float64 { return c[l][j] })
	requireClose(t, wantA, out[0].Value().([][]float64))
	requireClose(t, wantB, out[1].Value().([][]float64))
}
