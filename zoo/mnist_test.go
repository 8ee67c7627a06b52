package zoo

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idxImages writes an idx3 image file: magic 0x803, n, rows, cols, pixels.
func idxImages(n, h, w uint32, pix []byte) []byte {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.BigEndian, [4]uint32{0x803, n, h, w})
	buf.Write(pix)
	return buf.Bytes()
}

// idxLabels writes an idx1 label file: magic 0x801, n, labels.
func idxLabels(labels []byte) []byte {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.BigEndian, [2]uint32{0x801, uint32(len(labels))})
	buf.Write(labels)
	return buf.Bytes()
}

// TestIDXRoundTrip: a 3-image 2×4 fixture in the exact idx format, gzipped
// as MNIST ships it, loads with normalised pixels in row-major order.
func TestIDXRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pix := make([]byte, 3*2*4)
	for i := range pix {
		pix[i] = byte(i * 10)
	}
	write := func(name string, data []byte) {
		var buf bytes.Buffer
		z := gzip.NewWriter(&buf)
		_, _ = z.Write(data)
		require.NoError(t, z.Close())
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".gz"), buf.Bytes(), 0o644))
	}
	write("train-images-idx3-ubyte", idxImages(3, 2, 4, pix))
	write("train-labels-idx1-ubyte", idxLabels([]byte{7, 0, 9}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte"), idxImages(1, 2, 4, pix[:8]), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), idxLabels([]byte{3}), 0o644))
	train, test, err := LoadMNIST(dir)
	require.NoError(t, err)
	assert.Equal(t, []int{3, 2, 4, 1}, []int{train.N, train.H, train.W, train.C})
	assert.Equal(t, []int{7, 0, 9}, train.Labels)
	assert.Equal(t, 1, test.N)
	got := train.Pixels()
	for i, b := range pix {
		assert.InDelta(t, (float64(b)/255-mnistMean)/mnistStd, float64(got[i]), 1e-6)
	}
}

// TestIDXRejectsBadHeaders: overflowing or zero dimensions, truncated data,
// wrong magic and out-of-range labels are ErrCorruptData, never a panic.
func TestIDXRejectsBadHeaders(t *testing.T) {
	for name, data := range map[string][]byte{
		"product overflows int":    idxImages(math.MaxUint32, math.MaxUint32, math.MaxUint32, nil),
		"product wraps to zero":    idxImages(1<<16, 1<<16, 1<<16, nil),
		"zero rows":                idxImages(5, 0, 4, nil),
		"more than the file holds": idxImages(1000, 28, 28, make([]byte, 100)),
		"wrong magic":              idxLabels([]byte{1}),
		"short header":             {0, 0, 8},
	} {
		_, err := ReadIDXImages(bytes.NewReader(data))
		assert.ErrorIs(t, err, ErrCorruptData, name)
	}
	for name, data := range map[string][]byte{
		"label 10":  idxLabels([]byte{1, 10}),
		"truncated": idxLabels([]byte{1, 2})[:9],
		"huge":      idxImages(0xffffffff, 1, 1, nil)[:8],
	} {
		_, err := ReadIDXLabels(bytes.NewReader(data))
		assert.ErrorIs(t, err, ErrCorruptData, name)
	}
}

// FuzzReadIDXImages: any input parses or is ErrCorruptData; parsed images
// have consistent sizes.
func FuzzReadIDXImages(f *testing.F) {
	f.Add(idxImages(2, 3, 2, make([]byte, 12)))
	f.Add(idxImages(1<<16, 1<<16, 1<<16, nil))
	f.Add(idxImages(1, 1, 1, nil))
	f.Add(idxImages(342392, 28, 28, make([]byte, 100))) // claims 268 MB, holds 100 bytes
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ReadIDXImages(bytes.NewReader(data))
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptData)
			return
		}
		require.Equal(t, im.N*im.H*im.W*im.C, len(im.Bytes))
		require.LessOrEqual(t, len(im.Bytes), len(data))
	})
}

// FuzzReadIDXLabels: any input parses to labels 0–9 or is ErrCorruptData.
func FuzzReadIDXLabels(f *testing.F) {
	f.Add(idxLabels([]byte{0, 9, 3}))
	f.Add(idxLabels([]byte{11}))
	f.Fuzz(func(t *testing.T, data []byte) {
		labels, err := ReadIDXLabels(bytes.NewReader(data))
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptData)
			return
		}
		for _, l := range labels {
			require.True(t, l >= 0 && l <= 9)
		}
	})
}

// TestMNISTDirFindsTheModule: the go command locates the GoMNIST module's
// idx files (the test runs inside this module, whose go.mod requires it).
func TestMNISTDirFindsTheModule(t *testing.T) {
	dir, err := MNISTDir()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	assert.NoError(t, err)
}

// TestLoadFashionMNISTStandardizes: the idx files load as for MNIST and the
// training pixels end with mean 0 and variance 1.
func TestLoadFashionMNISTStandardizes(t *testing.T) {
	train, test, err := LoadFashionMNIST("../testdata/mnist-small")
	require.NoError(t, err)
	require.Positive(t, test.N)
	mean, sq := 0.0, 0.0
	pix := train.Pixels()
	for _, v := range pix {
		mean += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(pix))
	assert.InDelta(t, 0, mean/n, 1e-4)
	assert.InDelta(t, 1, sq/n, 1e-3)
	_, _, err = LoadFashionMNIST(t.TempDir())
	assert.ErrorIs(t, err, ErrCorruptData)
}

// TestIDXBombCostsAtMostTwiceItsPixels: a gzipped idx file of 50,000 blank
// images (tens of kilobytes on disk, 39 MB of pixels) loads keeping the
// pixels as bytes, allocating about twice their size at most (it was 6×:
// float32 pixels and a doubling read buffer).
func TestIDXBombCostsAtMostTwiceItsPixels(t *testing.T) {
	const n, side = 50000, 28
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(idxImages(n, side, side, make([]byte, n*side*side)))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
	require.NoError(t, err)
	im, err := ReadIDXImages(zr)
	require.NoError(t, err)
	runtime.ReadMemStats(&b)
	raw := uint64(n * side * side)
	t.Logf("%d-byte file, %d bytes of pixels, %d allocated", gz.Len(), raw, b.TotalAlloc-a.TotalAlloc)
	assert.Equal(t, int(raw), len(im.Bytes))
	assert.Less(t, b.TotalAlloc-a.TotalAlloc, 2*raw+raw/4)
}

// TestLoadMNISTRefusesATestSetOfAnotherSize: a test set whose images are
// not the training set's size is refused naming both files and sizes.
func TestLoadMNISTRefusesATestSetOfAnotherSize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	write("train-images-idx3-ubyte", idxImages(2, 3, 4, make([]byte, 24)))
	write("train-labels-idx1-ubyte", idxLabels([]byte{1, 2}))
	write("t10k-images-idx3-ubyte", idxImages(1, 4, 3, make([]byte, 12)))
	write("t10k-labels-idx1-ubyte", idxLabels([]byte{3}))
	_, _, err := LoadMNIST(dir)
	require.ErrorIs(t, err, ErrCorruptData)
	assert.Contains(t, err.Error(), "t10k-images-idx3-ubyte are 4×3")
	assert.Contains(t, err.Error(), "train-images-idx3-ubyte 3×4")
	_, _, err = LoadFashionMNIST(dir)
	assert.ErrorIs(t, err, ErrCorruptData)
}
