package zoo

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tinyImages(n int) *Images {
	im := &Images{N: n, H: 1, W: 2, C: 1, Bytes: make([]uint8, 2*n), Labels: make([]int, n), Classes: 10,
		Mean: []float64{0}, Std: []float64{1.0 / 255}} // byte b reads as b
	for i := range n {
		im.Bytes[2*i] = uint8(i)
		im.Labels[i] = i % 10
	}
	return im
}

// firstPixels identifies a batch by its images' first pixels.
func firstPixels(b *Batch) []float32 {
	x := tensors.MustCopyFlatData[float32](b.X)
	var out []float32
	for i := range b.Size {
		out = append(out, x[2*i])
	}
	return out
}

// TestBatcherStateContinuesTheStream: a batcher restored from a state saved
// mid-epoch (and one saved across an epoch boundary) yields exactly the
// batches the original goes on to yield.
func TestBatcherStateContinuesTheStream(t *testing.T) {
	im := tinyImages(23)
	for _, saveAfter := range []int{0, 3, 5, 7} { // 5 batches of 4 per epoch
		a, err := NewImageBatcher(im, 4, 9)
		require.NoError(t, err)
		for range saveAfter {
			a.Next()
		}
		state, err := a.MarshalBinary()
		require.NoError(t, err)
		b, err := NewImageBatcher(im, 4, 1234) // another seed: the state decides
		require.NoError(t, err)
		require.NoError(t, b.UnmarshalBinary(state))
		for k := range 8 {
			assert.Equal(t, firstPixels(a.Next()), firstPixels(b.Next()), "saved after %d, batch %d", saveAfter, k)
		}
		assert.Equal(t, a.Epoch(), b.Epoch())
	}
	other, err := NewImageBatcher(tinyImages(30), 4, 9)
	require.NoError(t, err)
	a, _ := NewImageBatcher(im, 4, 9)
	state, _ := a.MarshalBinary()
	assert.ErrorIs(t, other.UnmarshalBinary(state), ErrInvalid, "a state for another data set")
	assert.ErrorIs(t, other.UnmarshalBinary([]byte("{")), ErrInvalid)
}

// TestCirclesStateContinuesTheStream: likewise for the circles sampler.
func TestCirclesStateContinuesTheStream(t *testing.T) {
	a := NewCircles(5)
	circles(t, a, 7)
	state, err := a.MarshalBinary()
	require.NoError(t, err)
	b := NewCircles(6)
	require.NoError(t, b.UnmarshalBinary(state))
	assert.Equal(t, tensors.MustCopyFlatData[float32](circles(t, a, 9).X), tensors.MustCopyFlatData[float32](circles(t, b, 9).X))
	assert.ErrorIs(t, b.UnmarshalBinary([]byte{1, 2}), ErrInvalid)
}

// TestBatchSizesAreValidated: zero or negative sizes are ErrInvalid.
func TestBatchSizesAreValidated(t *testing.T) {
	for _, n := range []int{0, -3} {
		_, err := NewImageBatcher(tinyImages(5), n, 1)
		assert.ErrorIs(t, err, ErrInvalid)
		_, err = NewCircles(1).Batch(n)
		assert.ErrorIs(t, err, ErrInvalid)
	}
	_, err := NewImageBatcher(&Images{}, 4, 1)
	assert.ErrorIs(t, err, ErrInvalid)
}

// FuzzBatcherUnmarshal: any saved state restores or is ErrInvalid, and a
// restored batcher keeps yielding full batches.
func FuzzBatcherUnmarshal(f *testing.F) {
	a, _ := NewImageBatcher(tinyImages(11), 3, 1)
	a.Next()
	good, _ := a.MarshalBinary()
	f.Add(good)
	f.Add([]byte(`{"N":11,"Size":3,"PermSrc":null,"Pos":2,"Epoch":0,"Src":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, _ := NewImageBatcher(tinyImages(11), 3, 1)
		if err := b.UnmarshalBinary(data); err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		for range 5 {
			require.Equal(t, 3, b.Next().Size)
		}
	})
}

// TestBatcherDatasetYieldsItsBatches: the GoMLX dataset of a batcher yields
// the batcher's next batch, labels reshaped to [B, 1].
func TestBatcherDatasetYieldsItsBatches(t *testing.T) {
	a, err := NewImageBatcher(tinyImages(10), 4, 3)
	require.NoError(t, err)
	b, err := NewImageBatcher(tinyImages(10), 4, 3)
	require.NoError(t, err)
	ds := a.Dataset("tiny")
	assert.Equal(t, "tiny", ds.Name())
	for range 3 {
		_, in, labels, err := ds.Yield()
		require.NoError(t, err)
		want := b.Next()
		assert.Equal(t, firstPixels(want), firstPixels(&Batch{X: in[0], Size: want.Size}))
		assert.Equal(t, []int{want.Size, 1}, labels[0].Shape().Dimensions)
		assert.Equal(t, tensors.MustCopyFlatData[int32](want.Labels), tensors.MustCopyFlatData[int32](labels[0]))
	}
}
