package datasets

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadMatrixCSV: rows with comments and blank lines parse row-major;
// ragged rows, non-numbers, NaN/Inf and empty files are ErrFormat naming
// the file and line.
func TestReadMatrixCSV(t *testing.T) {
	m, err := ReadMatrixCSV(strings.NewReader("# x, y, z\n1, 2, 3\n\n-4.5,5e-3,6\n"), "a.csv")
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, []int{m.Rows, m.Cols})
	assert.Equal(t, []float64{1, 2, 3, -4.5, 5e-3, 6}, m.X)
	for name, c := range map[string]struct{ body, want string }{
		"ragged":     {"1,2,3\n4,5\n", "a.csv:2: 2 columns, the first row has 3"},
		"not number": {"1,2\n3,x\n", "a.csv:2: column 2"},
		"NaN":        {"1,NaN\n", "a.csv:1: column 2"},
		"Inf":        {"-Inf,1\n", "a.csv:1: column 1"},
		"empty":      {"# nothing\n", "a.csv: no rows"},
	} {
		_, err := ReadMatrixCSV(strings.NewReader(c.body), "a.csv")
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrFormat, name)
		assert.Contains(t, err.Error(), c.want, name)
	}
}

// FuzzReadMatrixCSV: any input parses to a consistent matrix or is ErrFormat.
func FuzzReadMatrixCSV(f *testing.F) {
	f.Add([]byte("1,2,3\n4,5,6\n"))
	f.Add([]byte("# c\n1\n\n2,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMatrixCSV(strings.NewReader(string(data)), "fuzz.csv")
		if err != nil {
			require.ErrorIs(t, err, ErrFormat)
			return
		}
		require.Equal(t, m.Rows*m.Cols, len(m.X))
	})
}
