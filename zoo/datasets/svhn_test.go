package datasets

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// matVar is one variable of a MAT-file fixture: MATLAB class, dimensions,
// storage type and the stored bytes.
type matVar struct {
	name    string
	class   int
	dims    []int
	storage int
	data    []byte
}

// matTag writes a data element: the small format for ≤ 4 bytes when small
// is set, else the tag, the data and the padding to 8 bytes.
func matTag(b *bytes.Buffer, typ int, data []byte, small bool) {
	le := binary.LittleEndian
	if small && len(data) <= 4 {
		_ = binary.Write(b, le, uint32(len(data))<<16|uint32(typ))
		b.Write(append(append([]byte{}, data...), make([]byte, 4-len(data))...))
		return
	}
	_ = binary.Write(b, le, uint32(typ))
	_ = binary.Write(b, le, uint32(len(data)))
	b.Write(data)
	if pad := len(data) % 8; pad != 0 {
		b.Write(make([]byte, 8-pad))
	}
}

// matFile writes a little-endian level-5 MAT-file as MATLAB does: a
// 128-byte header, then one miMATRIX per variable (names of ≤ 4 bytes in
// the small format), each zlib-compressed as miCOMPRESSED when compressed.
func matFile(vars []matVar, compressed bool) []byte {
	var out bytes.Buffer
	text := []byte("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Sun Nov 29 2026")
	out.Write(append(text, bytes.Repeat([]byte{' '}, 116-len(text))...))
	out.Write(make([]byte, 8))
	_ = binary.Write(&out, binary.LittleEndian, uint16(0x0100))
	out.WriteString("IM")
	for _, v := range vars {
		var body bytes.Buffer
		matTag(&body, miUINT32, []byte{byte(v.class), 0, 0, 0, 0, 0, 0, 0}, false)
		dims := make([]byte, 4*len(v.dims))
		for i, d := range v.dims {
			binary.LittleEndian.PutUint32(dims[4*i:], uint32(d))
		}
		matTag(&body, miINT32, dims, false)
		matTag(&body, miINT8, []byte(v.name), true)
		matTag(&body, v.storage, v.data, false)
		var m bytes.Buffer
		matTag(&m, miMATRIX, body.Bytes(), false)
		if !compressed {
			out.Write(m.Bytes())
			continue
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		_, _ = zw.Write(m.Bytes())
		_ = zw.Close()
		_ = binary.Write(&out, binary.LittleEndian, uint32(miCOMPRESSED))
		_ = binary.Write(&out, binary.LittleEndian, uint32(z.Len()))
		out.Write(z.Bytes()) // compressed elements are not padded
	}
	return out.Bytes()
}

// svhnFixture is an SVHN-format file of n h×w images: X uint8 [h, w, 3, n]
// in column-major order with value (3·row + 5·col + 7·ch + 11·i) mod 256, and
// y stored as MATLAB does for a double array of small integers (class double,
// storage uint8) with labels 1–10.
func svhnFixture(h, w, n int, labels []byte, compressed bool) []byte {
	x := make([]byte, h*w*3*n)
	for i := range n {
		for ch := range 3 {
			for col := range w {
				for row := range h {
					x[row+h*(col+w*(ch+3*i))] = byte((3*row + 5*col + 7*ch + 11*i) % 256)
				}
			}
		}
	}
	return matFile([]matVar{
		{name: "X", class: 9, dims: []int{h, w, 3, n}, storage: miUINT8, data: x},
		{name: "y", class: 6, dims: []int{n, 1}, storage: miUINT8, data: labels},
	}, compressed)
}

func TestReadSVHN(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		im, err := ReadSVHN(bytes.NewReader(svhnFixture(5, 4, 3, []byte{10, 3, 7}, compressed)), "train_32x32.mat")
		require.NoError(t, err, "compressed %v", compressed)
		require.Equal(t, 3, im.N)
		assert.Equal(t, []int{0, 3, 7}, im.Labels, "10 is the digit 0")
		assert.Equal(t, [3]int{5, 4, 3}, [3]int{im.H, im.W, im.C})
		for _, p := range [][4]int{{0, 0, 0, 0}, {1, 4, 3, 2}, {2, 2, 1, 1}, {0, 3, 0, 2}} {
			i, r, c, ch := p[0], p[1], p[2], p[3]
			want := float32((3*r+5*c+7*ch+11*i)%256) / 255
			assert.Equal(t, want, im.Pixels()[((i*5+r)*4+c)*3+ch], "%v", p)
		}
	}
}

// TestReadMATStorageTypes: values stored as double, single, int16 and
// uint16 arrive as float64, column-major; other classes are skipped.
func TestReadMATStorageTypes(t *testing.T) {
	f64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(-1.5))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(2.25))
	f32 := make([]byte, 8)
	binary.LittleEndian.PutUint32(f32, math.Float32bits(0.5))
	binary.LittleEndian.PutUint32(f32[4:], math.Float32bits(-3))
	i16 := []byte{0xff, 0xff, 0x02, 0x00}
	file := matFile([]matVar{
		{name: "dbl", class: 6, dims: []int{1, 2}, storage: miDOUBLE, data: f64},
		{name: "single", class: 7, dims: []int{2, 1}, storage: miSINGLE, data: f32},
		{name: "i16", class: 10, dims: []int{1, 2}, storage: miINT16, data: i16},
		{name: "u16", class: 11, dims: []int{1, 2}, storage: miUINT16, data: i16},
		{name: "txt", class: 4, dims: []int{1, 2}, storage: miUINT16, data: []byte{'h', 0, 'i', 0}},
	}, false)
	vars, err := ReadMAT(bytes.NewReader(file), "x.mat")
	require.NoError(t, err)
	assert.Equal(t, []float64{-1.5, 2.25}, vars["dbl"].F64)
	assert.Equal(t, []float64{0.5, -3}, vars["single"].F64)
	assert.Equal(t, []float64{-1, 2}, vars["i16"].F64)
	assert.Equal(t, []float64{65535, 2}, vars["u16"].F64)
	assert.NotContains(t, vars, "txt", "char arrays are skipped")
	assert.Equal(t, []int{2, 1}, vars["single"].Dims)
}

func TestReadSVHNRejectsBadFiles(t *testing.T) {
	good := svhnFixture(2, 2, 2, []byte{1, 2}, false)
	truncated := good[:len(good)-3]
	bigEndian := append([]byte{}, good...)
	copy(bigEndian[126:], "MI")
	complexX := append([]byte{}, good...)
	complexX[128+8+8+1] = 0x08 // the flags byte of X's array flags
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":      {nil, "not a MATLAB level-5 MAT-file"},
		"v7.3":       {append([]byte("MATLAB 7.3 MAT-file, HDF5"), make([]byte, 200)...), "not a MATLAB level-5"},
		"truncated":  {truncated, "element at byte"},
		"big-endian": {bigEndian, "big-endian"},
		"complex":    {complexX, "complex arrays"},
		"label 11":   {svhnFixture(2, 2, 2, []byte{1, 11}, true), "label 1 is 11"},
		"label 0":    {svhnFixture(2, 2, 2, []byte{0, 1}, false), "label 0 is 0"},
		"no y": {matFile([]matVar{{name: "X", class: 9, dims: []int{1, 1, 3, 1}, storage: miUINT8, data: []byte{1, 2, 3}}}, false),
			"X and y"},
		"2 channels": {matFile([]matVar{{name: "X", class: 9, dims: []int{1, 1, 2, 1}, storage: miUINT8, data: []byte{1, 2}},
			{name: "y", class: 6, dims: []int{1, 1}, storage: miUINT8, data: []byte{1}}}, false), "want [H, W, 3, N]"},
		"y count": {matFile([]matVar{{name: "X", class: 9, dims: []int{1, 1, 3, 1}, storage: miUINT8, data: []byte{1, 2, 3}},
			{name: "y", class: 6, dims: []int{2, 1}, storage: miUINT8, data: []byte{1, 2}}}, false), "for 1 images"},
		"short data": {matFile([]matVar{{name: "X", class: 9, dims: []int{2, 2, 3, 1}, storage: miUINT8, data: []byte{1, 2, 3}}}, false),
			"3 bytes of type 2 for dimensions [2 2 3 1]"},
	} {
		_, err := ReadSVHN(bytes.NewReader(c.data), "train_32x32.mat")
		require.ErrorIs(t, err, ErrFormat, name)
		assert.ErrorContains(t, err, c.want, name)
		assert.ErrorContains(t, err, "train_32x32.mat", name)
	}
}

func TestLoadSVHN(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, SVHNFiles.Train), svhnFixture(4, 4, 3, []byte{1, 2, 10}, true), 0o644))
	_, _, err := LoadSVHN(dir)
	assert.ErrorContains(t, err, "test_32x32.mat")
	require.NoError(t, os.WriteFile(filepath.Join(dir, SVHNFiles.Test), svhnFixture(4, 4, 2, []byte{5, 6}, false), 0o644))
	train, test, err := LoadSVHN(dir)
	require.NoError(t, err)
	assert.Equal(t, 3, train.N)
	assert.Equal(t, []int{5, 6}, test.Labels, "the test split is the test file")
}

func FuzzReadSVHN(f *testing.F) {
	f.Add(svhnFixture(2, 2, 1, []byte{3}, false))
	f.Add(svhnFixture(2, 3, 2, []byte{10, 1}, true))
	f.Add(svhnFixture(32, 32, 40, bytes.Repeat([]byte{1}, 40), true)) // zeros: a high compression ratio
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ReadSVHN(bytes.NewReader(data), "fuzz.mat")
		if err != nil {
			require.ErrorIs(t, err, ErrFormat)
			return
		}
		require.Len(t, im.Pixels(), im.N*im.H*im.W*3)
		require.Len(t, im.Labels, im.N)
	})
}
