package datasets

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImageStandInShapesAndPrefix: the sets have the spec's shapes, are
// deterministic in the seed, a smaller count is a prefix of a larger one,
// another seed or set name gives other images, and bad specs are ErrInvalid.
func TestImageStandInShapesAndPrefix(t *testing.T) {
	spec := ImageSpec{Name: "X", H: 9, W: 7, C: 3, Classes: 4, Train: 50, Test: 30}
	train, test, err := ImageStandIn(spec, 3, 0, 0)
	require.NoError(t, err)
	require.NoError(t, train.Validate())
	require.NoError(t, test.Validate())
	assert.Equal(t, []int{50, 9, 7, 3, 4}, []int{train.N, train.H, train.W, train.C, train.Classes})
	assert.Equal(t, 30, test.N)
	small, smallTest, err := ImageStandIn(spec, 3, 20, 10)
	require.NoError(t, err)
	assert.Equal(t, train.Bytes[:len(small.Bytes)], small.Bytes)
	assert.Equal(t, train.Labels[:20], small.Labels)
	assert.Equal(t, test.Bytes[:len(smallTest.Bytes)], smallTest.Bytes)
	assert.False(t, bytes.Equal(train.Bytes[:len(test.Bytes)], test.Bytes), "train and test differ")
	other, _, err := ImageStandIn(spec, 4, 20, 1)
	require.NoError(t, err)
	assert.NotEqual(t, small.Bytes, other.Bytes)
	spec2 := spec
	spec2.Name = "Y"
	named, _, err := ImageStandIn(spec2, 3, 20, 1)
	require.NoError(t, err)
	assert.NotEqual(t, small.Bytes, named.Bytes)
	for _, bad := range []ImageSpec{{Name: "a", H: 0, W: 1, C: 1, Classes: 2, Train: 1, Test: 1},
		{Name: "b", H: 2, W: 2, C: 1, Classes: 1, Train: 1, Test: 1}, {Name: "c", H: 2, W: 2, C: 1, Classes: 2, Train: 0, Test: 1}} {
		_, _, err := ImageStandIn(bad, 1, 0, 0)
		assert.True(t, errors.Is(err, ErrInvalid), "%+v: %v", bad, err)
	}
	_, _, err = ImageStandIn(spec, 1, -1, 0)
	assert.True(t, errors.Is(err, ErrInvalid))
	huge := ImageSpec{Name: "huge", H: 1 << 16, W: 1 << 16, C: 3, Classes: 2, Train: 1 << 20, Test: 1}
	_, _, err = ImageStandIn(huge, 1, 0, 0)
	assert.True(t, errors.Is(err, ErrInvalid), "a set beyond MaxBytes is refused before allocating: %v", err)
}

// TestImageStandInIsLearnableButNotTrivially: every class occurs, a
// nearest-class-mean classifier on the pixels does far better than chance
// but is far from perfect, and the pixels use the byte range.
func TestImageStandInIsLearnableButNotTrivially(t *testing.T) {
	spec := ImageSets["cifar10"]
	train, test, err := ImageStandIn(spec, 1, 2000, 500)
	require.NoError(t, err)
	_, counts, acc := nearestClassMean(train.Bytes, train.Labels, test.Bytes, test.Labels, train.Size(), spec.Classes)
	for c, n := range counts {
		require.Greater(t, n, 100.0, "class %d occurs", c)
	}
	lo, hi := uint8(255), uint8(0)
	for _, b := range train.Bytes {
		lo, hi = min(lo, b), max(hi, b)
	}
	assert.Less(t, lo, uint8(30))
	assert.Greater(t, hi, uint8(225))
	t.Logf("nearest class mean: %.3f (chance 0.1)", acc)
	assert.Greater(t, acc, 0.3)
	assert.Less(t, acc, 0.9)
}
