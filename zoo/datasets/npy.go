package datasets

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Matrix is a dense row-major data matrix: sample i is X[i·Cols : (i+1)·Cols].
type Matrix struct {
	// Name labels errors (the file).
	Name string
	// Rows samples of Cols features.
	Rows, Cols int
	// X holds the values row-major: (i, j) is X[i·Cols + j].
	X []float64
}

// npyMagic opens every .npy file.
const npyMagic = "\x93NUMPY"

// maxMatrixValues bounds a matrix file (2²⁸ float64 = 2 GiB).
const maxMatrixValues = 1 << 28

// ReadNPYFile reads a .npy file (see ReadNPY); errors name the file.
func ReadNPYFile(path string) (*Matrix, error) { return readFile(path, ReadNPY) }

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadNPY parses NumPy's .npy format (versions 1–3) holding a 2-D
// little-endian float32 ('<f4') or float64 ('<f8') array in C order — the
// form the MAF/FFJORD preprocessing writes for Gas and Miniboone. Any other
// dtype, byte order, Fortran order, rank, a truncated body or a NaN or
// infinite value is ErrFormat naming the file (and the row).
func ReadNPY(r io.Reader, name string) (*Matrix, error) {
	bad := func(format string, args ...any) (*Matrix, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrFormat, name, fmt.Sprintf(format, args...))
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return bad("truncated .npy preamble: %v", err)
	}
	if string(pre[:6]) != npyMagic {
		return bad("not a .npy file (magic %q)", pre[:6])
	}
	var headerLen int
	switch pre[6] {
	case 1:
		var n uint16
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			return bad("truncated header length: %v", err)
		}
		headerLen = int(n)
	case 2, 3:
		var n uint32
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			return bad("truncated header length: %v", err)
		}
		if n > 1<<20 {
			return bad("header of %d bytes", n)
		}
		headerLen = int(n)
	default:
		return bad("unsupported .npy version %d.%d", pre[6], pre[7])
	}
	header := make([]byte, headerLen)
	if _, err := io.ReadFull(r, header); err != nil {
		return bad("truncated header: %v", err)
	}
	h := string(header)
	descr := npyDescr.FindStringSubmatch(h)
	fortran := npyFortran.FindStringSubmatch(h)
	shape := npyShape.FindStringSubmatch(h)
	if descr == nil || fortran == nil || shape == nil {
		return bad("header %.80q lacks 'descr', 'fortran_order' or 'shape'", h)
	}
	size := 0
	switch descr[1] {
	case "<f4":
		size = 4
	case "<f8":
		size = 8
	default:
		return bad("dtype %q: only little-endian float32 ('<f4') or float64 ('<f8')", descr[1])
	}
	if fortran[1] == "True" {
		return bad("Fortran order: only C-order arrays are supported")
	}
	var dims []int
	for _, f := range strings.Split(shape[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return bad("shape (%s)", shape[1])
		}
		dims = append(dims, d)
	}
	if len(dims) != 2 || dims[0] < 1 || dims[1] < 1 {
		return bad("shape (%s): a 2-D array [samples, features] with both sizes ≥ 1 is needed", shape[1])
	}
	if err := CheckDeclared(fmt.Sprintf("%s: shape (%s)", name, shape[1]), 8*uint64(dims[0])*uint64(dims[1])); err != nil {
		return nil, err
	}
	if dims[0] > maxMatrixValues/dims[1] {
		return bad("shape (%s): more than %d values", shape[1], maxMatrixValues)
	}
	// Values are read in blocks of at most 64 KiB and X grows as they
	// arrive: a header claiming more than the file holds costs what the
	// file holds.
	m := &Matrix{Name: name, Rows: dims[0], Cols: dims[1], X: make([]float64, 0, min(dims[0]*dims[1], 1<<16))}
	total := dims[0] * dims[1]
	buf := make([]byte, min(total*size, 64<<10))
	for done := 0; done < total; {
		k := min(len(buf)/size, total-done)
		if got, err := io.ReadFull(r, buf[:k*size]); err != nil {
			return bad("truncated data at row %d of %d: %v", (done+got/size)/m.Cols, m.Rows, err)
		}
		for j := range k {
			var v float64
			if size == 4 {
				v = float64(math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:])))
			} else {
				v = math.Float64frombits(binary.LittleEndian.Uint64(buf[8*j:]))
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("row %d, column %d is %g", (done+j)/m.Cols, (done+j)%m.Cols, v)
			}
			m.X = append(m.X, v)
		}
		done += k
	}
	return m, nil
}

// WriteNPY writes m as a version-1 .npy file of little-endian float64 in C
// order (what ReadNPY reads).
func WriteNPY(w io.Writer, m *Matrix) error {
	header := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }", m.Rows, m.Cols)
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	bw := bufio.NewWriter(w)
	bw.WriteString(npyMagic)
	bw.Write([]byte{1, 0})
	_ = binary.Write(bw, binary.LittleEndian, uint16(len(header)))
	bw.WriteString(header)
	var b [8]byte
	for _, v := range m.X {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		bw.Write(b[:])
	}
	return bw.Flush()
}
