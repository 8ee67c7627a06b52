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
		"label 42":        {X: x, Labels: tensors.FromValue([]int32{1, 42}), Size: 2},
		"label -1":        {X: x, Labels: tensors.FromValue([]int32{-1, 3}), Size: 2},
		"label 10":        {X: x, Labels: tensors.FromValue([]int32{10, 3}), Size: 2},
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

// TestLabelsOutOfRangeAreRefusedByEveryClassifier: the ODE-RNN and the
// hybrid refuse a label outside their classes too (7 for 3 classes, −1).
func TestLabelsOutOfRangeAreRefusedByEveryClassifier(t *testing.T) {
	b := testutil.Backend()
	rnn, err := NewODERNN(b, context.New(), ODERNNConfig{Inputs: 3, Hidden: 4, Classes: 3})
	require.NoError(t, err)
	x := tensors.FromFlatDataAndDimensions(make([]float32, 2*4*3), 2, 4, 3)
	for _, labels := range [][]int32{{0, 7}, {-1, 0}, {3, 1}} {
		batch := &Batch{X: x, Labels: tensors.FromValue(labels), Size: 2}
		_, err := rnn.Step(batch, false)
		assert.ErrorIs(t, err, ErrInvalid, "%v", labels)
		assert.ErrorContains(t, err, "outside the 3 classes")
		_, _, err = rnn.Evaluate(batch)
		assert.ErrorIs(t, err, ErrInvalid, "%v", labels)
	}
	h, err := NewHybrid(b, context.New(), ClassifierConfig{Width: 2, Classes: 3})
	require.NoError(t, err)
	img := tensors.FromFlatDataAndDimensions(make([]float32, 2*28*28), 2, 28, 28, 1)
	_, err = h.Step(&Batch{X: img, Labels: tensors.FromValue([]int32{0, 7}), Size: 2}, false)
	assert.ErrorIs(t, err, ErrInvalid)
	_, _, err = h.Evaluate(&Batch{X: img, Labels: tensors.FromValue([]int32{-1, 0}), Size: 2})
	assert.ErrorIs(t, err, ErrInvalid)
	// In range, both run.
	_, err = rnn.Step(&Batch{X: x, Labels: tensors.FromValue([]int32{0, 2}), Size: 2}, false)
	assert.NoError(t, err)
}

// TestImageHelpersRefuseInconsistentImages: images whose fields disagree
// are ErrInvalid from the batchers, never a panic.
func TestImageHelpersRefuseInconsistentImages(t *testing.T) {
	for name, im := range map[string]*Images{
		"short pixels":  {N: 3, H: 1, W: 2, C: 1, Bytes: make([]uint8, 5), Labels: make([]int, 3), Classes: 10},
		"short labels":  {N: 3, H: 1, W: 2, C: 1, Bytes: make([]uint8, 6), Labels: make([]int, 2), Classes: 10},
		"label range":   {N: 2, H: 1, W: 2, C: 1, Bytes: make([]uint8, 4), Labels: []int{0, 10}, Classes: 10},
		"zero height":   {N: 2, H: 0, W: 2, C: 1, Labels: make([]int, 2), Classes: 10},
		"one class":     {N: 2, H: 1, W: 1, C: 1, Bytes: make([]uint8, 2), Labels: make([]int, 2), Classes: 1},
		"mean mismatch": {N: 2, H: 1, W: 1, C: 1, Bytes: make([]uint8, 2), Labels: make([]int, 2), Classes: 2, Mean: []float64{0, 0}, Std: []float64{1, 1}},
		"zero std":      {N: 2, H: 1, W: 1, C: 1, Bytes: make([]uint8, 2), Labels: make([]int, 2), Classes: 2, Mean: []float64{0}, Std: []float64{0}},
	} {
		assert.NotPanics(t, func() {
			_, err := NewImageBatcher(im, 2, 1)
			assert.ErrorIs(t, err, ErrInvalid, name)
			_, err = ImageBatch(im, []int{1})
			assert.ErrorIs(t, err, ErrInvalid, name)
			_, err = EvalBatches(im, 2)
			assert.ErrorIs(t, err, ErrInvalid, name)
		}, name)
	}
}
