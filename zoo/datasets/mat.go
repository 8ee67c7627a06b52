package datasets

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// MATLAB level-5 MAT-file data types (storage) and array classes.
const (
	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15

	mxDOUBLE = 6  // first numeric class
	mxUINT64 = 15 // last numeric class

	matHeaderSize = 128
	// matMaxBytes bounds a file and a decompressed variable (4 GiB).
	matMaxBytes = 1 << 32
)

// MATArray is one numeric variable of a MAT-file, in MATLAB's column-major
// order (the first index varies fastest). Values stored as uint8 stay bytes
// (U8); any other storage is converted to float64 (F64).
type MATArray struct {
	// Name is the variable's name in the file.
	Name  string
	Class int // MATLAB's class: 6 double, 7 single, 8 int8, 9 uint8, … 15 uint64
	// Dims are the dimensions, in MATLAB's order.
	Dims []int
	// U8 holds the values stored as uint8 (nil otherwise).
	U8 []byte
	// F64 holds the values of any other storage, as float64 (nil for uint8).
	F64 []float64
}

// Len is the number of values.
func (a *MATArray) Len() int {
	if a.U8 != nil {
		return len(a.U8)
	}
	return len(a.F64)
}

// At is value i (column-major) as float64.
func (a *MATArray) At(i int) float64 {
	if a.U8 != nil {
		return float64(a.U8[i])
	}
	return a.F64[i]
}

// ReadMAT parses a little-endian MATLAB level-5 MAT-file (MATLAB's -v6 and
// -v7 formats, zlib-compressed variables included) and returns its real
// numeric arrays by name. Variables of other kinds (cells, structs, chars,
// sparse) are skipped; a complex array, a bad header, a truncated or
// inconsistent element is ErrFormat naming the file. HDF5-based -v7.3 files
// are not this format and are rejected by the header check.
func ReadMAT(r io.Reader, name string) (map[string]*MATArray, error) {
	limit := min(int64(matMaxBytes), MaxBytes)
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrFormat, name, fmt.Sprintf(format, args...))
	}
	if int64(len(data)) > limit {
		return nil, bad("larger than %d bytes (datasets.MaxBytes; set %s to raise it)", limit, MaxBytesEnv)
	}
	if len(data) < matHeaderSize || !bytes.HasPrefix(data, []byte("MATLAB 5.0 MAT-file")) {
		return nil, bad("not a MATLAB level-5 MAT-file (no \"MATLAB 5.0 MAT-file\" header)")
	}
	switch string(data[126:128]) {
	case "IM":
	case "MI":
		return nil, bad("big-endian MAT-files are not supported")
	default:
		return nil, bad("bad endian indicator %q", data[126:128])
	}
	if v := binary.LittleEndian.Uint16(data[124:126]); v != 0x0100 {
		return nil, bad("MAT-file version %#x (want 0x0100)", v)
	}
	out := map[string]*MATArray{}
	for off := matHeaderSize; off < len(data); {
		typ, body, next, err := matElement(data, off)
		if err != nil {
			return nil, bad("element at byte %d: %v", off, err)
		}
		if typ == miCOMPRESSED {
			inner, err := inflateElement(body, fmt.Sprintf("%s: compressed element at byte %d", name, off))
			if err != nil {
				return nil, err
			}
			if typ, body, _, err = matElement(inner, 0); err != nil {
				return nil, bad("compressed element at byte %d: %v", off, err)
			}
		}
		if typ == miMATRIX {
			a, err := matArray(body)
			if err != nil {
				return nil, bad("variable at byte %d: %v", off, err)
			}
			if a != nil {
				if _, dup := out[a.Name]; dup {
					return nil, bad("variable %q appears twice", a.Name)
				}
				out[a.Name] = a
			}
		}
		off = next
	}
	return out, nil
}

// inflateElement inflates a miCOMPRESSED body: the inflated element's tag
// first, whose declared size is checked against MaxBytes before the rest is
// read (exactly that much, growing as it inflates; see ReadDeclared), so a
// zlib bomb is refused at its tag and a lying tag costs what inflates.
func inflateElement(body []byte, what string) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, what, err)
	}
	var tag [8]byte
	if _, err := io.ReadFull(zr, tag[:]); err != nil {
		return nil, fmt.Errorf("%w: %s does not inflate to an element tag: %v", ErrFormat, what, err)
	}
	n := uint64(0)
	if w := binary.LittleEndian.Uint32(tag[:]); w>>16 == 0 {
		n = uint64(binary.LittleEndian.Uint32(tag[4:]))
	}
	whole, err := readDeclared(zr, n, what+"'s tag", tag[:])
	if err != nil {
		if errors.Is(err, ErrFormat) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s does not inflate to its declared %d bytes: %v", ErrFormat, what, n, err)
	}
	return whole, nil
}

// matElement reads the data element at off: its type, its bytes and the
// offset of the next element (8-byte aligned, except after a compressed
// element; small elements take 8 bytes).
func matElement(b []byte, off int) (typ int, body []byte, next int, err error) {
	if off+8 > len(b) {
		return 0, nil, 0, fmt.Errorf("truncated tag")
	}
	w := binary.LittleEndian.Uint32(b[off:])
	if small := int(w >> 16); small != 0 {
		if small > 4 {
			return 0, nil, 0, fmt.Errorf("small element of %d bytes", small)
		}
		return int(w & 0xffff), b[off+4 : off+4+small], off + 8, nil
	}
	n := int(binary.LittleEndian.Uint32(b[off+4:]))
	if n > len(b)-off-8 {
		return 0, nil, 0, fmt.Errorf("element of %d bytes with %d left", n, len(b)-off-8)
	}
	next = off + 8 + n
	if pad := n % 8; pad != 0 && w != miCOMPRESSED { // compressed elements are not padded
		next = min(next+8-pad, len(b)) // a file may end without the last padding
	}
	return int(w), b[off+8 : off+8+n], next, nil
}

// matArray parses a miMATRIX body; nil (no error) for non-numeric classes.
func matArray(b []byte) (*MATArray, error) {
	typ, flags, off, err := matElement(b, 0)
	if err != nil || typ != miUINT32 || len(flags) != 8 {
		return nil, fmt.Errorf("bad array flags (%v)", err)
	}
	class := int(flags[0])
	if class < mxDOUBLE || class > mxUINT64 {
		return nil, nil // cell, struct, object, char or sparse
	}
	if flags[1]&0x08 != 0 {
		return nil, fmt.Errorf("complex arrays are not supported")
	}
	typ, dimBytes, off, err := matElement(b, off)
	if err != nil || typ != miINT32 || len(dimBytes) < 8 || len(dimBytes)%4 != 0 {
		return nil, fmt.Errorf("bad dimensions (%v)", err)
	}
	a := &MATArray{Class: class}
	count := 1
	for i := 0; i < len(dimBytes); i += 4 {
		d := int(int32(binary.LittleEndian.Uint32(dimBytes[i:])))
		if d < 0 {
			return nil, fmt.Errorf("negative dimension %d", d)
		}
		if d > 0 && count > matMaxBytes/d {
			return nil, fmt.Errorf("dimensions %v too large", a.Dims)
		}
		a.Dims = append(a.Dims, d)
		count *= d
	}
	typ, nameBytes, off, err := matElement(b, off)
	if err != nil || typ != miINT8 {
		return nil, fmt.Errorf("bad array name (%v)", err)
	}
	a.Name = string(nameBytes)
	typ, vals, _, err := matElement(b, off)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", a.Name, err)
	}
	size := map[int]int{miINT8: 1, miUINT8: 1, miINT16: 2, miUINT16: 2, miINT32: 4, miUINT32: 4, miSINGLE: 4,
		miDOUBLE: 8, miINT64: 8, miUINT64: 8}[typ]
	if size == 0 {
		return nil, fmt.Errorf("%q: unsupported storage type %d", a.Name, typ)
	}
	if len(vals) != count*size {
		return nil, fmt.Errorf("%q: %d bytes of type %d for dimensions %v", a.Name, len(vals), typ, a.Dims)
	}
	if typ == miUINT8 {
		a.U8 = vals
		return a, nil
	}
	a.F64 = make([]float64, count)
	le := binary.LittleEndian
	for i := range count {
		v := vals[i*size:]
		switch typ {
		case miINT8:
			a.F64[i] = float64(int8(v[0]))
		case miINT16:
			a.F64[i] = float64(int16(le.Uint16(v)))
		case miUINT16:
			a.F64[i] = float64(le.Uint16(v))
		case miINT32:
			a.F64[i] = float64(int32(le.Uint32(v)))
		case miUINT32:
			a.F64[i] = float64(le.Uint32(v))
		case miSINGLE:
			a.F64[i] = float64(math.Float32frombits(le.Uint32(v)))
		case miDOUBLE:
			a.F64[i] = math.Float64frombits(le.Uint64(v))
		case miINT64:
			a.F64[i] = float64(int64(le.Uint64(v)))
		case miUINT64:
			a.F64[i] = float64(le.Uint64(v))
		}
	}
	return a, nil
}
