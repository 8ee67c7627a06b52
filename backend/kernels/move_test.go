package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// naiveSlice indexes every output element from its coordinates.
func naiveSlice(src []float32, dims, starts, strides, outDims []int) []float32 {
	size := 1
	for _, d := range outDims {
		size *= d
	}
	out := make([]float32, size)
	coord := make([]int, len(dims))
	for o := range out {
		rem := o
		for a := len(dims) - 1; a >= 0; a-- {
			coord[a] = rem % outDims[a]
			rem /= outDims[a]
		}
		flat := 0
		for a := range dims {
			flat = flat*dims[a] + starts[a] + coord[a]*strides[a]
		}
		out[o] = src[flat]
	}
	return out
}

func TestSliceAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	dims := []int{3, 5, 7, 4}
	src := randSlice(r, 3*5*7*4)
	cases := []struct{ starts, strides, out []int }{
		{[]int{0, 0, 0, 0}, []int{1, 1, 1, 1}, []int{3, 5, 7, 4}}, // everything
		{[]int{1, 0, 0, 0}, []int{1, 1, 1, 1}, []int{2, 5, 7, 4}}, // trailing axes whole: one run per outer
		{[]int{0, 1, 2, 0}, []int{1, 1, 1, 1}, []int{3, 3, 4, 4}}, // shifted windows (the convolution's)
		{[]int{0, 0, 0, 1}, []int{1, 1, 1, 1}, []int{3, 5, 7, 2}}, // partial last axis
		{[]int{0, 0, 1, 0}, []int{1, 2, 3, 1}, []int{3, 3, 2, 4}}, // strided middle axes
		{[]int{2, 4, 6, 3}, []int{1, 1, 1, 1}, []int{1, 1, 1, 1}}, // one element
		{[]int{0, 0, 0, 0}, []int{1, 1, 1, 3}, []int{3, 5, 7, 2}}, // strided last axis
		{[]int{0, 1, 0, 0}, []int{2, 1, 1, 1}, []int{2, 4, 7, 4}}, // strided first axis, rest whole
	}
	for _, c := range cases {
		want := naiveSlice(src, dims, c.starts, c.strides, c.out)
		got := make([]float32, len(want))
		Slice(got, src, dims, c.starts, c.strides, c.out)
		require.Equal(t, want, got, "%+v", c)
	}
	assert.Panics(t, func() { Slice(make([]float32, 8), src, dims, []int{0, 0, 5, 0}, []int{1, 1, 1, 1}, []int{1, 1, 3, 1}) })
}

func TestConcatAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, chunks := range [][]int{{1, 2, 3}, {16, 17}, {40, 1, 15}} {
		outer := 7
		parts := make([][]float32, len(chunks))
		var want []float32
		for i, c := range chunks {
			parts[i] = randSlice(r, outer*c)
		}
		for o := range outer {
			for i, c := range chunks {
				want = append(want, parts[i][o*c:(o+1)*c]...)
			}
		}
		got := make([]float32, len(want))
		Concat(got, parts, outer, chunks)
		require.Equal(t, want, got, fmt.Sprint(chunks))
	}
}

func TestGatherScatterRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	src := randSlice(r, 6*5)
	idx := []int32{5, 0, 5, 2}
	got := make([]float32, 4*5)
	GatherRows(got, src, 5, idx)
	for i, row := range idx {
		assert.Equal(t, src[int(row)*5:int(row)*5+5], got[i*5:i*5+5])
	}
	dst := append([]float32(nil), src...)
	upd := randSlice(r, 4*5)
	ScatterAddRows(dst, upd, 5, []int64{5, 0, 5, 2})
	want := append([]float32(nil), src...)
	for i, row := range []int{5, 0, 5, 2} {
		for j := range 5 {
			want[row*5+j] += upd[i*5+j]
		}
	}
	assert.Equal(t, want, dst)
	assert.True(t, RowsInRange([]int32{0, 5}, 6))
	assert.False(t, RowsInRange([]int32{0, 6}, 6))
	assert.False(t, RowsInRange([]int64{-1}, 6))
}
