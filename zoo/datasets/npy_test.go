package datasets

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// npy builds a .npy file by hand: version, header dict and raw body.
func npy(version byte, header string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.Write([]byte{version, 0})
	if version == 1 {
		_ = binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(body)
	return b.Bytes()
}

func f32s(vs ...float32) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, vs)
	return b.Bytes()
}

func f64s(vs ...float64) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, vs)
	return b.Bytes()
}

// TestReadNPYValid: float32 (version 1) and float64 (version 2) 2-D arrays
// in C order read row-major; WriteNPY round-trips exactly.
func TestReadNPYValid(t *testing.T) {
	m, err := ReadNPY(bytes.NewReader(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   \n",
		f32s(1, 2, 3, -4, 5.5, 6))), "a.npy")
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, []int{m.Rows, m.Cols})
	assert.Equal(t, []float64{1, 2, 3, -4, 5.5, 6}, m.X)
	m, err = ReadNPY(bytes.NewReader(npy(2, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f8'}\n",
		f64s(math.Pi, -1e-300))), "b.npy")
	require.NoError(t, err)
	assert.Equal(t, []float64{math.Pi, -1e-300}, m.X)

	orig := &Matrix{Rows: 3, Cols: 2, X: []float64{0.1, -2, 3e10, 4, 5, 6.25}}
	path := filepath.Join(t.TempDir(), "train.npy")
	var buf bytes.Buffer
	require.NoError(t, WriteNPY(&buf, orig))
	require.Zero(t, (buf.Len()-len(orig.X)*8)%64, "header padded to 64 bytes as NumPy does")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	back, err := ReadNPYFile(path)
	require.NoError(t, err)
	assert.Equal(t, orig.X, back.X)
}

// TestReadNPYBroken: each malformed file is ErrFormat naming the file.
func TestReadNPYBroken(t *testing.T) {
	hdr := func(descr, fortran, shape string) string {
		return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n"
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"wrong magic":      {[]byte("\x93NUMPX\x01\x00\x00\x00"), "not a .npy"},
		"empty":            {nil, "truncated .npy preamble"},
		"version 9":        {npy(9, "", nil), "version 9"},
		"big-endian":       {npy(1, hdr(">f8", "False", "(1, 1)"), f64s(1)), `dtype ">f8"`},
		"int dtype":        {npy(1, hdr("<i8", "False", "(1, 1)"), f64s(1)), `dtype "<i8"`},
		"fortran order":    {npy(1, hdr("<f8", "True", "(1, 1)"), f64s(1)), "Fortran order"},
		"1-D":              {npy(1, hdr("<f8", "False", "(3,)"), f64s(1, 2, 3)), "a 2-D array"},
		"3-D":              {npy(1, hdr("<f8", "False", "(1, 1, 1)"), f64s(1)), "a 2-D array"},
		"truncated data":   {npy(1, hdr("<f8", "False", "(2, 2)"), f64s(1, 2, 3)), "truncated data at row 1"},
		"truncated header": {npy(1, hdr("<f8", "False", "(2, 2)"), nil)[:20], "truncated header"},
		"NaN row":          {npy(1, hdr("<f4", "False", "(2, 1)"), f32s(1, float32(math.NaN()))), "row 1, column 0"},
		"Inf":              {npy(1, hdr("<f8", "False", "(1, 2)"), f64s(1, math.Inf(-1))), "row 0, column 1"},
		"no shape":         {npy(1, "{'descr': '<f8', 'fortran_order': False}\n", f64s(1)), "lacks"},
		"huge shape":       {npy(1, hdr("<f8", "False", "(4294967296, 4294967296)"), nil), "more than"},
	} {
		_, err := ReadNPY(bytes.NewReader(c.data), "x.npy")
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrFormat, name)
		assert.Contains(t, err.Error(), "x.npy", name)
		assert.Contains(t, err.Error(), c.want, name)
	}
	_, err := ReadNPYFile(filepath.Join(t.TempDir(), "absent.npy"))
	assert.ErrorIs(t, err, ErrFormat)
}

// FuzzReadNPY: any input parses to a consistent finite matrix or is ErrFormat.
func FuzzReadNPY(f *testing.F) {
	f.Add(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", f32s(1, 2, 3, 4, 5, 6)))
	f.Add(npy(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }\n", f64s(1)))
	f.Add(npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }\n", f64s(1)))
	f.Add(append(npyHeader("1, 268435456"), make([]byte, 16)...)) // a header claiming 2 GiB
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadNPY(bytes.NewReader(data), "fuzz.npy")
		if err != nil {
			require.ErrorIs(t, err, ErrFormat)
			return
		}
		require.Equal(t, m.Rows*m.Cols, len(m.X))
		for _, v := range m.X {
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
		}
	})
}
