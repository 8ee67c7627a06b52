package kernels

import "fmt"

// Data movement for float32 tensors stored row-major. These replace
// simplego's element-at-a-time index arithmetic with copies of whole
// contiguous runs.

// Slice copies from src (of dimensions dims) the box that starts at starts
// and takes every strides[a]-th element along axis a, outDims[a] of them,
// into dst (row-major outDims). It panics when the box leaves src.
func Slice(dst, src []float32, dims, starts, strides, outDims []int) {
	rank := len(dims)
	if len(starts) != rank || len(strides) != rank || len(outDims) != rank {
		panic("kernels: Slice: rank mismatch")
	}
	size := 1
	for a := range rank {
		if outDims[a] <= 0 {
			return
		}
		if strides[a] < 1 || starts[a] < 0 || starts[a]+(outDims[a]-1)*strides[a] >= dims[a] {
			panic(fmt.Sprintf("kernels: Slice: axis %d: start %d, stride %d, %d elements out of %d", a, starts[a], strides[a], outDims[a], dims[a]))
		}
		size *= outDims[a]
	}
	if len(dst) < size {
		panic(fmt.Sprintf("kernels: Slice: destination of %d elements for %d", len(dst), size))
	}
	if rank == 0 {
		dst[0] = src[0]
		return
	}
	// Element strides of src, and the offset of the box's first element.
	srcStride := make([]int, rank)
	s, off := 1, 0
	for a := rank - 1; a >= 0; a-- {
		srcStride[a] = s
		off += starts[a] * s
		s *= dims[a]
	}
	if s > len(src) {
		panic(fmt.Sprintf("kernels: Slice: source of %d elements for dimensions %v", len(src), dims))
	}
	// Merge trailing axes taken whole into one contiguous run along axis j.
	j := rank - 1
	run := outDims[j]
	for j > 0 && strides[j] == 1 && outDims[j] == dims[j] && strides[j-1] == 1 {
		j--
		run *= outDims[j]
	}
	step := strides[j] * srcStride[j] // between elements of the run (when strided)
	if strides[j] != 1 {
		run = outDims[j]
	}
	idx := make([]int, j) // odometer over axes [0, j)
	for o := 0; o < size; o += run {
		d := dst[o : o+run]
		if strides[j] == 1 {
			copy(d, src[off:off+run])
		} else {
			for i := range d {
				d[i] = src[off+i*step]
			}
		}
		for a := j - 1; a >= 0; a-- {
			idx[a]++
			off += strides[a] * srcStride[a]
			if idx[a] < outDims[a] {
				break
			}
			idx[a] = 0
			off -= outDims[a] * strides[a] * srcStride[a]
		}
	}
}

// Concat writes the parts one after another within each of outer blocks:
// block o of dst holds part i's block o (chunks[i] elements) for every i in
// order. It is a concatenation along an axis whose preceding dimensions
// multiply to outer.
func Concat(dst []float32, parts [][]float32, outer int, chunks []int) {
	total := 0
	for i, p := range parts {
		if len(p) != outer*chunks[i] {
			panic(fmt.Sprintf("kernels: Concat: part %d has %d elements, want %d×%d", i, len(p), outer, chunks[i]))
		}
		total += chunks[i]
	}
	if len(dst) < outer*total {
		panic(fmt.Sprintf("kernels: Concat: destination of %d elements for %d", len(dst), outer*total))
	}
	for i, p := range parts {
		c := chunks[i]
		at := 0
		for j := range i {
			at += chunks[j]
		}
		if c >= 16 {
			for o := range outer {
				copy(dst[o*total+at:o*total+at+c], p[o*c:o*c+c])
			}
			continue
		}
		// Short chunks: a plain loop beats a memmove call per chunk.
		for o := range outer {
			d := dst[o*total+at : o*total+at+c]
			s := p[o*c : o*c+c]
			for k := range d {
				d[k] = s[k]
			}
		}
	}
}

// Index is the type of a gather or scatter index.
type Index interface{ ~int32 | ~int64 | ~int }

// RowsInRange reports whether every index is in [0, rows).
func RowsInRange[I Index](idx []I, rows int) bool {
	for _, i := range idx {
		if i < 0 || int64(i) >= int64(rows) {
			return false
		}
	}
	return true
}

// GatherRows copies rows idx[0], idx[1], … of src (rows of width elements)
// into consecutive rows of dst. It panics on an index out of range.
func GatherRows[I Index](dst, src []float32, width int, idx []I) {
	if len(dst) < len(idx)*width {
		panic(fmt.Sprintf("kernels: GatherRows: destination of %d elements for %d rows of %d", len(dst), len(idx), width))
	}
	for r, i := range idx {
		copy(dst[r*width:(r+1)*width], src[int(i)*width:(int(i)+1)*width])
	}
}

// ScatterAddRows adds row r of upd to row idx[r] of dst, for every r in
// order (so repeated indices accumulate in the order given). It panics on an
// index out of range.
func ScatterAddRows[I Index](dst, upd []float32, width int, idx []I) {
	if len(upd) < len(idx)*width {
		panic(fmt.Sprintf("kernels: ScatterAddRows: %d update elements for %d rows of %d", len(upd), len(idx), width))
	}
	for r, i := range idx {
		d := dst[int(i)*width : (int(i)+1)*width]
		Add(d, d, upd[r*width:(r+1)*width])
	}
}
