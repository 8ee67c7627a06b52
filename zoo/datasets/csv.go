package datasets

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadMatrixCSVFile reads a CSV matrix file (see ReadMatrixCSV); errors name the file.
func ReadMatrixCSVFile(path string) (*Matrix, error) { return readFile(path, ReadMatrixCSV) }

// ReadMatrixCSV parses a numeric matrix as text: one sample per line, its
// features separated by commas; blank lines and lines starting with '#'
// are skipped. Every row must have the first row's number of columns and
// only finite numbers; anything else is ErrFormat naming the file and line.
func ReadMatrixCSV(r io.Reader, name string) (*Matrix, error) {
	m := &Matrix{Name: name}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for s.Scan() {
		line++
		text := strings.TrimSpace(s.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, bom)
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, ",")
		if m.Rows == 0 {
			m.Cols = len(fields)
		} else if len(fields) != m.Cols {
			return nil, fmt.Errorf("%w: %s:%d: %d columns, the first row has %d", ErrFormat, name, line, len(fields), m.Cols)
		}
		if (m.Rows+1)*m.Cols > maxMatrixValues {
			return nil, fmt.Errorf("%w: %s:%d: more than %d values", ErrFormat, name, line, maxMatrixValues)
		}
		if err := CheckDeclared(fmt.Sprintf("%s:%d (%d rows of %d float64 values)", name, line, m.Rows+1, m.Cols), 8*uint64(m.Rows+1)*uint64(m.Cols)); err != nil {
			return nil, err
		}
		for j, f := range fields {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%w: %s:%d: column %d: %q is not a finite number", ErrFormat, name, line, j+1, f)
			}
			m.X = append(m.X, v)
		}
		m.Rows++
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrFormat, name, line, err)
	}
	if m.Rows == 0 {
		return nil, fmt.Errorf("%w: %s: no rows", ErrFormat, name)
	}
	return m, nil
}
