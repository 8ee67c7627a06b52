// Package hostval reads tensors' values onto the host as float64, whatever
// their floating-point dtype.
package hostval

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Float64s copies a Float32 or Float64 tensor's values as float64; other
// dtypes are an error naming the dtype.
func Float64s(t *tensors.Tensor) ([]float64, error) {
	switch t.DType() {
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t), nil
	case dtypes.Float32:
		v := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor dtype %s is not Float32 or Float64", t.DType())
}

// Tensor makes a tensor of dtype dt (Float32; anything else Float64) and
// the given dimensions from float64 values (copied).
func Tensor(vals []float64, dt dtypes.DType, dims ...int) *tensors.Tensor {
	if dt == dtypes.Float32 {
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64{}, vals...), dims...)
}
