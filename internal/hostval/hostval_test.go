package hostval

import (
	"testing"

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
