package zoo

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/zoo/datasets"
)

// TestSeriesBatchMasksPaddingAndMissingValues: the observation masks of a
// batch are 1 exactly where the file gave a value — 0 on a missing value
// carried forward and on the padding after a short series — while the
// values there are the carried ones.
func TestSeriesBatchMasksPaddingAndMissingValues(t *testing.T) {
	ts, err := datasets.ReadTS(strings.NewReader("@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,?,6:b\n7,8:9,10:a\n"), "m.ts")
	require.NoError(t, err)
	b, err := SeriesBatch(ts, []int{0, 1})
	require.NoError(t, err)
	require.Equal(t, []int{2, 3, 5}, b.X.Shape().Dimensions) // C = 2: values, time, masks
	x := tensors.MustCopyFlatData[float32](b.X)
	row := func(i, k int) []float32 { return x[(i*3+k)*5 : (i*3+k+1)*5] }
	assert.Equal(t, []float32{1, 4, 0, 1, 1}, row(0, 0))
	assert.Equal(t, []float32{2, 4, 0.5, 1, 0}, row(0, 1), "missing: carried forward, mask 0")
	assert.Equal(t, []float32{3, 6, 1, 1, 1}, row(0, 2))
	assert.Equal(t, []float32{8, 10, 0.5, 1, 1}, row(1, 1))
	assert.Equal(t, []float32{8, 10, 1, 0, 0}, row(1, 2), "padding: last values repeated, masks 0")
	assert.Equal(t, []int32{1, 0}, tensors.MustCopyFlatData[int32](b.Labels))

	bad := *ts
	bad.Labels = []int{0, 2}
	_, err = SeriesBatch(&bad, []int{1})
	assert.ErrorIs(t, err, ErrInvalid)
	bad.Observed = bad.Observed[:3]
	_, err = SeriesBatch(&bad, []int{0})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = NewSeriesBatcher(&bad, 1, 1)
	assert.ErrorIs(t, err, ErrInvalid)
}
