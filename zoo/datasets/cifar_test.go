package datasets

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cifarFixture writes n records in CIFAR-10's binary layout: record i has
// label (3i+1) mod 10 and pixel byte (i + 7·plane + 3·row + 5·col) mod 256.
func cifarFixture(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteByte(byte((3*i + 1) % 10))
		for plane := range 3 {
			for row := range 32 {
				for col := range 32 {
					b.WriteByte(byte((i + 7*plane + 3*row + 5*col) % 256))
				}
			}
		}
	}
	return b.Bytes()
}

func TestReadCIFAR10(t *testing.T) {
	im, err := ReadCIFAR10(bytes.NewReader(cifarFixture(3)), "batch.bin")
	require.NoError(t, err)
	require.Equal(t, 3, im.N)
	assert.Equal(t, []int{1, 4, 7}, im.Labels)
	assert.Equal(t, 10, im.Classes)
	require.Len(t, im.Pixels(), 3*32*32*3)
	// Channels-last: image i, row r, column c, channel ch.
	for _, p := range [][4]int{{0, 0, 0, 0}, {1, 2, 5, 1}, {2, 31, 17, 2}, {2, 4, 30, 0}} {
		i, r, c, ch := p[0], p[1], p[2], p[3]
		want := float32((i+7*ch+3*r+5*c)%256) / 255
		assert.Equal(t, want, im.Pixels()[((i*32+r)*32+c)*3+ch], "%v", p)
	}
}

func TestReadCIFAR10RejectsBadFiles(t *testing.T) {
	good := cifarFixture(2)
	badLabel := append([]byte{}, good...)
	badLabel[cifarRecord] = 10
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":     {nil, "no records"},
		"truncated": {good[:len(good)-5], "record 1 is truncated (3068 of 3073 bytes)"},
		"label":     {badLabel, "record 1 has label 10"},
	} {
		_, err := ReadCIFAR10(bytes.NewReader(c.data), "x.bin")
		require.ErrorIs(t, err, ErrFormat, name)
		assert.ErrorContains(t, err, "x.bin: "+c.want, name)
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	for i, f := range CIFAR10Files.Train {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), cifarFixture(i+1), 0o644))
	}
	_, _, err := LoadCIFAR10(dir)
	assert.ErrorContains(t, err, "has no test_batch.bin")
	require.NoError(t, os.WriteFile(filepath.Join(dir, CIFAR10Files.Test), cifarFixture(2), 0o644))
	train, test, err := LoadCIFAR10(dir)
	require.NoError(t, err)
	assert.Equal(t, 1+2+3+4+5, train.N)
	assert.Len(t, train.Labels, 15)
	assert.Len(t, train.Pixels(), 15*3072)
	assert.Equal(t, 2, test.N)
	// Batch 2's first image follows batch 1's single one.
	assert.Equal(t, float32(0)/255, train.Pixels()[3072])
	assert.Equal(t, 1, train.Labels[1])
}

// TestStandardizeChannels: each training channel ends with mean 0 and
// variance 1; the test set moves by the training statistics.
func TestStandardizeChannels(t *testing.T) {
	train, err := ReadCIFAR10(bytes.NewReader(cifarFixture(4)), "train")
	require.NoError(t, err)
	test, err := ReadCIFAR10(bytes.NewReader(cifarFixture(1)), "test")
	require.NoError(t, err)
	raw := test.Pixels()[5]
	mean, std, err := train.StandardizeChannels(test)
	require.NoError(t, err)
	pix := train.Pixels()
	for c := range 3 {
		m, sq, n := 0.0, 0.0, 0.0
		for i := c; i < len(pix); i += 3 {
			m += float64(pix[i])
			sq += float64(pix[i]) * float64(pix[i])
			n++
		}
		assert.InDelta(t, 0, m/n, 1e-5)
		assert.InDelta(t, 1, sq/n, 1e-4)
	}
	assert.InDelta(t, (float64(raw)-mean[2])/std[2], float64(test.Pixels()[5]), 1e-6) // pixel 5 is channel 2
	flat := &Images{N: 1, H: 1, W: 1, C: 1, Bytes: []uint8{128}}
	_, _, err = flat.StandardizeChannels()
	assert.ErrorContains(t, err, "constant")
	_, _, err = train.StandardizeChannels(flat)
	assert.ErrorIs(t, err, ErrFormat)
	assert.False(t, math.IsNaN(mean[0]))
}

func FuzzReadCIFAR10(f *testing.F) {
	f.Add(cifarFixture(1))
	f.Add(cifarFixture(2)[:4000])
	f.Add([]byte{11})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ReadCIFAR10(bytes.NewReader(data), "fuzz")
		if err != nil {
			require.ErrorIs(t, err, ErrFormat)
			return
		}
		require.Equal(t, len(data)/cifarRecord, im.N)
		require.Len(t, im.Pixels(), im.N*3072)
	})
}
