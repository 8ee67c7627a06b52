// Package matmul holds the matrix products of snopt-go's hand-written VJPs,
// laid out for the backend that runs them.
//
// simplego, the embedded pure-Go backend, runs a matrix product whose output
// has at most 16·32² entries per batch element on its "small" kernel, and
// spreads that kernel over its workers one batch element at a time. A plain
// [m, k]·[k, n] product has a single batch element, so it runs on one core.
// Larger ones go to a blocked kernel that pads k and n up to multiples of 32
// and is about 1.35× faster per multiply-add than the small one. The thin
// products of the ODE fields ([512, 34]·[34, 32] for the time-series field,
// [6272, 154]·[154, 16] for the image field's convolutions at width 16) get
// either one core or half of the blocked kernel's work wasted on padding.
// Cutting the rows of such a product into batch elements (and broadcasting
// the other operand) runs the small kernel on every core: about 2× on two
// cores. Products the blocked kernel runs with little padding (the image
// field at width 64) are left whole. docs/benchmarks.md, "Matrix products in
// row blocks", has the measurements.
//
// With the project's CPU engine (package backend, on by default) the
// products run whole: its GEMM splits a product over the cores itself, and
// whole products measured 1.8–6.4× faster than row blocks on these shapes
// (ATB within ±10 %; docs/benchmarks.md, "The CPU engine"). Row blocks are
// kept for what simplego still runs itself: float64, and everything with
// SNOPT_KERNELS=off. On other
// backends (XLA) the products are built as they are.
package matmul

import (
	"runtime"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.

	"github.com/snopt-go/snopt/backend"
)

// minWork is the number of multiply-adds below which a product is left
// whole: splitting it costs more in scheduling than it saves.
const minWork = 1 << 15

// minRows is the fewest rows a block may have.
const minRows = 4

// workers is the number of cores simplego's worker pool targets.
var workers = runtime.NumCPU()

// AB returns a·b for a [m, k] and b [k, n].
func AB(a, b *Node) *Node {
	m, k, n := a.Shape().Dimensions[0], a.Shape().Dimensions[1], b.Shape().Dimensions[1]
	p := rowBlocks(a, m, k, n)
	if p == 1 {
		return Dot(a, b)
	}
	// [p, n, k]: contracting axis last, as simplego's kernel reads it.
	bt := BroadcastPrefix(Transpose(b, 0, 1), p)
	return batched(a, bt, p, m, k, n)
}

// ABT returns a·bᵀ for a [m, k] and b [n, k].
func ABT(a, b *Node) *Node {
	m, k, n := a.Shape().Dimensions[0], a.Shape().Dimensions[1], b.Shape().Dimensions[0]
	p := rowBlocks(a, m, k, n)
	if p == 1 {
		return DotGeneral(a, []int{1}, nil, b, []int{1}, nil)
	}
	return batched(a, BroadcastPrefix(b, p), p, m, k, n)
}

// batched multiplies the p row blocks of a [m, k] by bt [p, n, k] (the same
// [n, k] matrix in every block) and returns the rows back in order, [m, n].
func batched(a, bt *Node, p, m, k, n int) *Node {
	a3 := Reshape(a, p, m/p, k)
	return Reshape(DotGeneral(a3, []int{2}, []int{0}, bt, []int{2}, []int{0}), m, n)
}

// ATB returns aᵀ·b for a [m, p] and b [m, q]: a sum over the m rows, which is
// split into blocks whose partial products are summed.
func ATB(a, b *Node) *Node {
	m, p, q := a.Shape().Dimensions[0], a.Shape().Dimensions[1], b.Shape().Dimensions[1]
	blocks := sumBlocks(a, m, p, q)
	if blocks == 1 {
		return DotGeneral(a, []int{0}, nil, b, []int{0}, nil)
	}
	a3 := Reshape(a, blocks, m/blocks, p)
	b3 := Reshape(b, blocks, m/blocks, q)
	return ReduceSum(DotGeneral(a3, []int{1}, []int{0}, b3, []int{1}, []int{0}), 0)
}

// smallLimit is the largest output (per batch element) that simplego runs on
// its small kernel for x's dtype, and the side of the square blocks of its
// blocked kernel; 0, 0 when x is not on simplego or the engine runs it
// (float32 with the engine on).
func smallLimit(x *Node) (limit, block int) {
	if _, ok := x.Graph().Backend().(*simplego.Backend); !ok {
		return 0, 0
	}
	dtype := x.DType()
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 || dtype == dtypes.Float32 && backend.EngineOn(x.Graph().Backend()) {
		return 0, 0
	}
	log2 := simplego.DotGeneralTargetBlockLog2Dim[dtype]
	return 16 << (2 * log2), 1 << log2
}

// minBlockedUse is the least fraction of useful (unpadded) work at which a
// whole product is left to the blocked kernel: it runs about 1.35× faster
// per multiply-add than row blocks on the small kernel (docs/benchmarks.md),
// so it wins unless padding k and n up to whole blocks wastes more than
// about a quarter of its work.
const minBlockedUse = 0.75

// padded rounds d up to a multiple of block.
func padded(d, block int) int { return (d + block - 1) / block * block }

// rowBlocks returns into how many row blocks to cut an [m, k]·[k, n] product:
// the fewest multiple of the worker count that divides m and keeps each
// block's output on the small kernel; 1 (whole) when none does, when the
// product is small, off simplego, or when the whole product goes to the
// blocked kernel with little padding.
func rowBlocks(x *Node, m, k, n int) int {
	limit, block := smallLimit(x)
	if limit == 0 || workers < 2 || m*k*n < minWork {
		return 1
	}
	if m*n > limit && float64(k*n)/float64(padded(k, block)*padded(n, block)) >= minBlockedUse {
		return 1
	}
	for p := workers; m/p >= minRows; p += workers {
		if m%p == 0 && (m/p)*n <= limit {
			return p
		}
	}
	return 1
}

// sumBlocks returns into how many row blocks to cut the sum over m rows of
// an [m, p]ᵀ·[m, q] product: the worker count when it divides m and the
// [p, q] output fits the small kernel, else 1.
func sumBlocks(x *Node, m, p, q int) int {
	limit, _ := smallLimit(x)
	if limit == 0 || workers < 2 || m*p*q < minWork || p*q > limit || m%workers != 0 || m/workers < minRows {
		return 1
	}
	return workers
}
