package zoo

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// TestBadInputIsAnErrorNotAPanic: nil contexts and backends, nil or
// mis-sized batches, bad indices and batch sizes are errors (ErrInvalid),
// never panics or endless loops.
func TestBadInputIsAnErrorNotAPanic(t *testing.T) {
	b := testutil.Backend()
	_, err := NewClassifier(b, nil, ClassifierConfig{})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = NewClassifier(nil, context.New(), ClassifierConfig{})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = NewCNF(b, nil, CNFConfig{})
	assert.ErrorIs(t, err, ErrInvalid)

	m, err := NewClassifier(b, context.New(), ClassifierConfig{Width: 2})
	require.NoError(t, err)
	x := tensors.FromFlatDataAndDimensions(make([]float32, 2*28*28), 2, 28, 28, 1)
	for name, batch := range map[string]*Batch{
		"nil":             nil,
		"no inputs":       {Size: 2},
		"no labels":       {X: x, Size: 2},
		"size mismatch":   {X: x, Labels: tensors.FromValue([]int32{1, 2}), Size: 3},
		"labels mismatch": {X: x, Labels: tensors.FromValue([]int32{1, 2, 3}), Size: 2},
		"scalar input":    {X: tensors.FromValue(float32(0)), Labels: tensors.FromValue([]int32{1}), Size: 1},
	} {
		assert.NotPanics(t, func() {
			_, err := m.Step(batch, false)
			assert.ErrorIs(t, err, ErrInvalid, name)
			_, _, err = m.Evaluate(batch)
			assert.ErrorIs(t, err, ErrInvalid, name)
		}, name)
	}
	c, err := NewCNF(b, context.New(), CNFConfig{Width: 4, Hidden: 2})
	require.NoError(t, err)
	_, _, err = c.Evaluate(nil)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = c.Step(&Batch{X: tensors.FromValue([][]float32{{1, 2}}), Size: 4}, false)
	assert.ErrorIs(t, err, ErrInvalid)

	_, err = ImageBatch(tinyImages(3), []int{1, 5})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = ImageBatch(tinyImages(3), []int{-1})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = EvalBatches(tinyImages(3), 0)
	assert.ErrorIs(t, err, ErrInvalid)
	batches, err := EvalBatches(tinyImages(5), 2)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 2, 1}, []int{batches[0].Size, batches[1].Size, batches[2].Size})
	assert.Nil(t, (*Images)(nil).Subset(3))
}
