package hostval

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFloat64s: both float dtypes read back exactly (the float32 values are
// exactly representable); an integer tensor is refused.
func TestFloat64s(t *testing.T) {
	got, err := Float64s(tensors.FromFlatDataAndDimensions([]float32{1.5, -2, 0.25}, 3))
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2, 0.25}, got)
	got, err = Float64s(tensors.FromFlatDataAndDimensions([]float64{0.1, 3}, 2))
	require.NoError(t, err)
	assert.Equal(t, []float64{0.1, 3}, got)
	_, err = Float64s(tensors.FromFlatDataAndDimensions([]int32{1}, 1))
	assert.ErrorContains(t, err, "Int32")
}

// TestTensorRoundTrips: Tensor builds float32 or float64 tensors of the
// given shape that Float64s reads back, and copies its input.
func TestTensorRoundTrips(t *testing.T) {
	vals := []float64{1.5, -2, 0.25, 4, 5, 6}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		x := Tensor(vals, dt, 2, 3)
		assert.Equal(t, dt, x.DType())
		assert.Equal(t, []int{2, 3}, x.Shape().Dimensions)
		got, err := Float64s(x)
		require.NoError(t, err)
		assert.Equal(t, vals, got)
	}
	x := Tensor(vals, dtypes.Float64, 6)
	vals[0] = 99
	got, _ := Float64s(x)
	assert.Equal(t, 1.5, got[0], "the input is copied")
}
