package zoo

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/snopt-go/snopt/zoo/datasets"
)

// RowBatch gathers rows idx of a tabular data set into a density-estimation
// batch: X float32 [B, Cols]. An index outside the set is ErrInvalid.
func RowBatch(m *datasets.Matrix, idx []int) (*Batch, error) {
	if m == nil || len(idx) == 0 {
		return nil, fmt.Errorf("%w: a row batch needs data and at least one index", ErrInvalid)
	}
	x := make([]float32, 0, len(idx)*m.Cols)
	for _, i := range idx {
		if i < 0 || i >= m.Rows {
			return nil, fmt.Errorf("%w: row %d outside [0, %d)", ErrInvalid, i, m.Rows)
		}
		for _, v := range m.X[i*m.Cols : (i+1)*m.Cols] {
			x = append(x, float32(v))
		}
	}
	return &Batch{X: tensors.FromFlatDataAndDimensions(x, len(idx), m.Cols), Size: len(idx)}, nil
}

// NewRowBatcher returns a batcher over the rows of a tabular data set.
func NewRowBatcher(m *datasets.Matrix, size int, seed uint64) (*Batcher, error) {
	if m == nil || m.Rows < 1 || m.Cols < 1 {
		return nil, fmt.Errorf("%w: no rows to batch", ErrInvalid)
	}
	return newBatcher(m.Rows, size, seed, func(idx []int) *Batch {
		b, _ := RowBatch(m, idx) // indices of a permutation of [0, Rows): always valid
		return b
	})
}

// RowEvalBatches cuts the first n rows (all when n ≤ 0) into batches of at
// most size rows, in order.
func RowEvalBatches(m *datasets.Matrix, n, size int) ([]*Batch, error) {
	if m == nil || m.Rows < 1 || size < 1 {
		return nil, fmt.Errorf("%w: evaluation batches need rows and a size ≥ 1", ErrInvalid)
	}
	if n <= 0 || n > m.Rows {
		n = m.Rows
	}
	return batchesInOrder(n, size, func(idx []int) (*Batch, error) { return RowBatch(m, idx) })
}
