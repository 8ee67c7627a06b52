package backend

import (
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pkg/errors"

	"github.com/snopt-go/snopt/backend/kernels"
)

// The engine's data-movement executors: Slice, Concatenate, and Gather and
// ScatterSum of whole rows (the form the convolutions' patch extraction and
// its transpose take). Other forms go to simplego.

// sliceMirror mirrors simplego's Slice node data.
type sliceMirror struct{ starts, limits, strides []int }

// gatherMirror mirrors simplego's Gather node data.
type gatherMirror struct {
	indexVectorAxis                                                  int
	offsetOutputAxes, collapsedSlicesAxes, startIndexMap, sliceSizes []int
	indicesAreSorted                                                 bool
}

// scatterMirror mirrors simplego's Scatter* node data.
type scatterMirror struct {
	indexVectorAxis                                                int
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int
	indicesAreSorted, uniqueIndices                                bool
}

// dataOf returns node's data as *T when its dynamic type is the one
// verifyMirrors checked for op, else nil.
func dataOf[T any](node *simplego.Node, op backends.OpType) *T {
	d := mirrorOf(node).data
	if d == nil || engine.dataTypes[op] == nil || typeOf(d) != engine.dataTypes[op] {
		return nil
	}
	return (*T)(pointerOf(d))
}

func product(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

// execSlice copies a float32 slice by contiguous runs.
func execSlice(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	const op = backends.OpTypeSlice
	nm := mirrorOf(node)
	src := float32Flat(b, inputs[0])
	sd := dataOf[sliceMirror](node, op)
	if src == nil || sd == nil || nm.shape.DType != dtypes.Float32 {
		return fallback(op, b, node, inputs, owned)
	}
	out := b.NewBuffer(nm.shape)
	if out == nil {
		return nil, errors.New("Slice: backend finalized")
	}
	engine.ran[op].Add(1)
	dims := shapeOf(b, inputs[0]).Dimensions
	if err := catch(func() { kernels.Slice(float32Flat(b, out), src, dims, sd.starts, sd.strides, nm.shape.Dimensions) }); err != nil {
		return nil, errors.WithMessagef(err, "Slice of %v", dims)
	}
	return out, nil
}

// execConcatenate concatenates float32 tensors block by block.
func execConcatenate(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	const op = backends.OpTypeConcatenate
	nm := mirrorOf(node)
	axis, ok := nm.data.(int)
	if !ok || nm.shape.DType != dtypes.Float32 || axis < 0 || axis >= nm.shape.Rank() {
		return fallback(op, b, node, inputs, owned)
	}
	parts := make([][]float32, len(inputs))
	chunks := make([]int, len(inputs))
	for i, in := range inputs {
		if parts[i] = float32Flat(b, in); parts[i] == nil {
			return fallback(op, b, node, inputs, owned)
		}
		chunks[i] = product(shapeOf(b, in).Dimensions[axis:])
	}
	out := b.NewBuffer(nm.shape)
	if out == nil {
		return nil, errors.New("Concatenate: backend finalized")
	}
	engine.ran[op].Add(1)
	if err := catch(func() {
		kernels.Concat(float32Flat(b, out), parts, product(nm.shape.Dimensions[:axis]), chunks)
	}); err != nil {
		return nil, errors.WithMessage(err, "Concatenate")
	}
	return out, nil
}

// rowIndices returns the indices of a whole-row gather or scatter: an
// indices tensor whose last axis is the index vector, of size 1.
func rowIndices(b *simplego.Backend, buf *simplego.Buffer, indexVectorAxis int) (flat any, n int, ok bool) {
	s := shapeOf(b, buf)
	if s.Rank() == 0 || indexVectorAxis != s.Rank()-1 || s.Dimensions[s.Rank()-1] != 1 {
		return nil, 0, false
	}
	flat, err := b.BufferData(buf)
	if err != nil {
		return nil, 0, false
	}
	switch flat.(type) {
	case []int32, []int64:
		return flat, s.Size(), true
	}
	return nil, 0, false
}

// trailing reports whether axes are the last n of a rank-r tensor, in order.
func trailing(axes []int, n, r int) bool {
	if len(axes) != n {
		return false
	}
	for i, a := range axes {
		if a != r-n+i {
			return false
		}
	}
	return true
}

// execGather gathers whole rows (along axis 0) of a float32 operand.
func execGather(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	const op = backends.OpTypeGather
	nm := mirrorOf(node)
	src := float32Flat(b, inputs[0])
	gd := dataOf[gatherMirror](node, op)
	if src == nil || gd == nil {
		return fallback(op, b, node, inputs, owned)
	}
	dims := shapeOf(b, inputs[0]).Dimensions
	r := len(dims)
	idx, n, ok := rowIndices(b, inputs[1], gd.indexVectorAxis)
	if !ok || r == 0 || !slices.Equal(gd.collapsedSlicesAxes, []int{0}) || !slices.Equal(gd.startIndexMap, []int{0}) ||
		len(gd.sliceSizes) != r || gd.sliceSizes[0] != 1 || !slices.Equal(gd.sliceSizes[1:], dims[1:]) ||
		!trailing(gd.offsetOutputAxes, r-1, nm.shape.Rank()) {
		return fallback(op, b, node, inputs, owned)
	}
	width := product(dims[1:])
	if nm.shape.Size() != n*width || !inRange(idx, dims[0]) {
		return fallback(op, b, node, inputs, owned) // simplego clamps out-of-range indices
	}
	out := b.NewBuffer(nm.shape)
	if out == nil {
		return nil, errors.New("Gather: backend finalized")
	}
	engine.ran[op].Add(1)
	dst := float32Flat(b, out)
	switch ix := idx.(type) {
	case []int32:
		kernels.GatherRows(dst, src, width, ix)
	case []int64:
		kernels.GatherRows(dst, src, width, ix)
	}
	return out, nil
}

func inRange(idx any, rows int) bool {
	switch ix := idx.(type) {
	case []int32:
		return kernels.RowsInRange(ix, rows)
	case []int64:
		return kernels.RowsInRange(ix, rows)
	}
	return false
}

// execScatterSum adds whole rows of float32 updates into rows (along axis
// 0) of the operand, in index order as simplego does.
func execScatterSum(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	const op = backends.OpTypeScatterSum
	nm := mirrorOf(node)
	operand, upd := float32Flat(b, inputs[0]), float32Flat(b, inputs[2])
	sd := dataOf[scatterMirror](node, op)
	if operand == nil || upd == nil || sd == nil {
		return fallback(op, b, node, inputs, owned)
	}
	dims := shapeOf(b, inputs[0]).Dimensions
	r := len(dims)
	udims := shapeOf(b, inputs[2]).Dimensions
	idx, n, ok := rowIndices(b, inputs[1], sd.indexVectorAxis)
	if !ok || r == 0 || !slices.Equal(sd.insertedWindowAxes, []int{0}) || !slices.Equal(sd.scatterAxesToOperandAxes, []int{0}) ||
		!trailing(sd.updateWindowAxes, r-1, len(udims)) || len(udims) < r-1 || !slices.Equal(udims[len(udims)-(r-1):], dims[1:]) {
		return fallback(op, b, node, inputs, owned)
	}
	width := product(dims[1:])
	if len(upd) != n*width || !inRange(idx, dims[0]) {
		return fallback(op, b, node, inputs, owned)
	}
	out := inputs[0]
	if owned[0] {
		inputs[0] = nil
	} else {
		if out = b.NewBuffer(nm.shape); out == nil {
			return nil, errors.New("ScatterSum: backend finalized")
		}
		copy(float32Flat(b, out), operand)
	}
	engine.ran[op].Add(1)
	dst := float32Flat(b, out)
	switch ix := idx.(type) {
	case []int32:
		kernels.ScatterAddRows(dst, upd, width, ix)
	case []int64:
		kernels.ScatterAddRows(dst, upd, width, ix)
	}
	return out, nil
}
