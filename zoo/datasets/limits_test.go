package datasets

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// npyHeader is a version-1 .npy preamble and header for a '<f8' C-order
// array of the given shape.
func npyHeader(shape string) []byte {
	h := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", shape)
	h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.Write([]byte{1, 0})
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	return b.Bytes()
}

// TestNPYHeaderCannotAllocateWhatTheFileLacks: a 100-odd-byte .npy whose
// header claims 2²⁸ values costs kilobytes to refuse, not 2 GiB; one over
// the cap is refused naming it.
func TestNPYHeaderCannotAllocateWhatTheFileLacks(t *testing.T) {
	file := append(npyHeader("1, 268435456"), make([]byte, 16)...)
	var err error
	n := allocated(func() { _, err = ReadNPY(bytes.NewReader(file), "bomb.npy") })
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "truncated data at row 0 of 1")
	assert.Less(t, n, uint64(4<<20), "bytes allocated to refuse a %d-byte file", len(file))

	_, err = ReadNPY(bytes.NewReader(npyHeader("100000, 100000")), "huge.npy")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "over the")
	assert.Contains(t, err.Error(), MaxBytesEnv)
}

// TestMATZlibBombIsRefusedAtItsTag: a compressed variable whose inflated
// tag declares more than the cap is refused before inflating it; one that
// inflates to less than its tag says costs what inflates; a legitimate one
// costs about twice its inflated size.
func TestMATZlibBombIsRefusedAtItsTag(t *testing.T) {
	compressed := func(inner []byte) []byte {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		_, _ = zw.Write(inner)
		_ = zw.Close()
		file := matFile(nil, false)
		var b bytes.Buffer
		b.Write(file)
		_ = binary.Write(&b, binary.LittleEndian, uint32(miCOMPRESSED))
		_ = binary.Write(&b, binary.LittleEndian, uint32(z.Len()))
		b.Write(z.Bytes())
		return b.Bytes()
	}
	tag := func(typ, n uint32) []byte {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.LittleEndian, [2]uint32{typ, n})
		return b.Bytes()
	}
	// The tag claims 4 GiB − 1: over the 2 GiB cap.
	var err error
	n := allocated(func() { _, err = ReadMAT(bytes.NewReader(compressed(tag(miMATRIX, 1<<32-1))), "bomb.mat") })
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "over the")
	assert.Less(t, n, uint64(4<<20))
	// The tag claims 1 GiB, 64 KiB inflate.
	n = allocated(func() {
		_, err = ReadMAT(bytes.NewReader(compressed(append(tag(miMATRIX, 1<<30), make([]byte, 64<<10)...))), "liar.mat")
	})
	require.ErrorIs(t, err, ErrFormat)
	assert.Less(t, n, uint64(40<<20), "a lying tag costs what inflates (in 16 MiB chunks), not what it claims")

	// 40 MB of zero pixels in a ~40 KB file: legitimate, about 2× to read.
	const h, w, imgs = 32, 32, 13000
	file := svhnFixture(h, w, imgs, bytes.Repeat([]byte{1}, imgs), true)
	raw := uint64(h * w * 3 * imgs)
	var im *Images
	n = allocated(func() { im, err = ReadSVHN(bytes.NewReader(file), "zeros.mat") })
	require.NoError(t, err)
	assert.Equal(t, int(raw), len(im.Bytes))
	t.Logf("%d-byte file, %d bytes of pixels, %d allocated (%.2f×)", len(file), raw, n, float64(n)/float64(raw))
	assert.Less(t, n, 2*raw+raw/4, "reading allocates at most about twice the pixels")
}

// TestMaxBytesCanBeLowered: the cap is a variable; a file over it is
// refused naming the cap and how to raise it.
func TestMaxBytesCanBeLowered(t *testing.T) {
	old := MaxBytes
	defer func() { MaxBytes = old }()
	MaxBytes = 1000
	_, err := ReadNPY(bytes.NewReader(append(npyHeader("20, 10"), make([]byte, 1600)...)), "m.npy")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "declares 1600 bytes, over the 1000-byte cap")
	MaxBytes = 2000
	_, err = ReadNPY(bytes.NewReader(append(npyHeader("20, 10"), make([]byte, 1600)...)), "m.npy")
	require.NoError(t, err)
	for in, want := range map[string]int64{"4G": 4 << 30, "512M": 512 << 20, "10KiB": 10 << 10, "123": 123} {
		got, err := ParseBytes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err = ParseBytes("lots")
	assert.ErrorIs(t, err, ErrInvalid)
}
