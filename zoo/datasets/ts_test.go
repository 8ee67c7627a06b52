package datasets

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const header = "# a comment\n@problemName Tiny\n@timeStamps false\n@missing true\n@univariate false\n" +
	"@dimensions 2\n@equalLength true\n@seriesLength 3\n@classLabel true a b c\n@data\n"

// TestReadTSValid: a two-channel fixture with comments, blank lines and a
// missing value, which keeps its place in time (carried forward, marked
// unobserved).
func TestReadTSValid(t *testing.T) {
	body := header + "1,2,3:4,5,6:b\n\n-1.5,0,2e-3:7,?,9:a\n"
	ts, err := ReadTS(strings.NewReader(body), "tiny.ts")
	require.NoError(t, err)
	assert.Equal(t, "Tiny", ts.Name)
	assert.Equal(t, []int{2, 3, 2}, []int{ts.N, ts.Length, ts.Channels})
	assert.Equal(t, []string{"a", "b", "c"}, ts.Classes)
	assert.Equal(t, []int{1, 0}, ts.Labels)
	// Series-major, then time, then channel.
	assert.Equal(t, []float64{1, 4, 2, 5, 3, 6, -1.5, 7, 0, 7, 2e-3, 9}, ts.X)
	require.NotNil(t, ts.Observed)
	for i := range 2 {
		for k := range 3 {
			for d := range 2 {
				assert.Equal(t, !(i == 1 && k == 1 && d == 1), ts.ObservedAt(i, k, d), "(%d,%d,%d)", i, k, d)
			}
		}
	}
	assert.Nil(t, ts.Lengths, "equal lengths")
}

// TestReadTSBroken: each malformed file is ErrFormat naming the file and
// the line, never a panic.
func TestReadTSBroken(t *testing.T) {
	for name, c := range map[string]struct {
		body, want string
	}{
		"empty":              {"", "tiny.ts:0: no @data"},
		"no series":          {header, "no series after @data"},
		"truncated line":     {header + "1,2,3:4,5,6:a\n1,2,3:4,5", "tiny.ts:12: 1 dimensions, the header says 2"},
		"wrong dimensions":   {header + "1,2,3:a\n", "tiny.ts:11: 1 dimensions, the header says 2"},
		"non-numeric":        {header + "1,x,3:4,5,6:a\n", "tiny.ts:11: dimension 1, value 2"},
		"infinite":           {header + "1,2,3:4,Inf,6:a\n", "dimension 2, value 2"},
		"unequal lengths":    {header + "1,2,3:4,5:a\n", "dimension 2 has 2 values, want 3"},
		"unknown label":      {header + "1,2,3:4,5,6:z\n", `class label "z" is not among`},
		"header mismatch":    {strings.Replace(header, "@seriesLength 3", "@seriesLength 4", 1) + "1,2,3:4,5,6:a\n", "want 4"},
		"data before labels": {"@problemName X\n@data\n1:a\n", "@data before @classLabel"},
		"timestamps":         {"@timeStamps true\n", "not supported"},
		"bad dimensions":     {"@dimensions -2\n", "positive integer"},
		"unknown header":     {"@frobnicate 3\n", "unknown header @frobnicate"},
		"text before data":   {"hello\n", "expected a @header line"},
		"one class":          {"@classLabel true a\n", "at least 2"},
		"duplicate class":    {"@classLabel true a a\n", "listed twice"},
		"univariate clash":   {strings.Replace(header, "@univariate false", "@univariate true", 1), "@univariate true with @dimensions 2"},
	} {
		_, err := ReadTS(strings.NewReader(c.body), "tiny.ts")
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrFormat, name)
		assert.Contains(t, err.Error(), c.want, name)
	}
	_, err := ReadTSFile(filepath.Join(t.TempDir(), "absent.ts"))
	assert.ErrorIs(t, err, ErrFormat)
}

// TestStandInRoundTripsThroughTS: a stand-in written as .ts reads back
// exactly, and has the archive's shapes.
func TestStandInRoundTripsThroughTS(t *testing.T) {
	spec := ArchiveSpec{Name: "CharacterTrajectories", Channels: 3, Classes: 4, Length: 17, Train: 11, Test: 5}
	train, test, err := StandIn(spec, 3)
	require.NoError(t, err)
	assert.Equal(t, []int{11, 17, 3}, []int{train.N, train.Length, train.Channels})
	assert.Equal(t, 5, test.N)
	path := filepath.Join(t.TempDir(), "CharacterTrajectories_TRAIN.ts")
	var buf bytes.Buffer
	require.NoError(t, WriteTS(&buf, train))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	back, err := ReadTSFile(path)
	require.NoError(t, err)
	assert.Equal(t, train.X, back.X)
	assert.Equal(t, train.Labels, back.Labels)
	assert.Equal(t, train.Classes, back.Classes)
	again, _, _ := StandIn(spec, 3)
	assert.Equal(t, train.X, again.X, "deterministic for a seed")
	other, _, _ := StandIn(spec, 4)
	assert.NotEqual(t, train.X, other.X)
}

// TestStandInClassesAreSeparableButNotTrivially: a nearest-class-mean
// classifier on the training set beats chance on the test set by far, but
// no single time point and channel separates the classes alone.
func TestStandInClassesAreSeparableButNotTrivially(t *testing.T) {
	spec := ArchiveSpec{Name: "X", Channels: 3, Classes: 5, Length: 40, Train: 300, Test: 200}
	train, test, err := StandIn(spec, 1)
	require.NoError(t, err)
	m := train.Length * train.Channels
	means, _, acc := nearestClassMean(train.X, train.Labels, test.X, test.Labels, m, spec.Classes)
	t.Logf("nearest class mean: %.3f (chance %.3f)", acc, 1/float64(spec.Classes))
	assert.Greater(t, acc, 0.6)
	// The best single feature's within-class spread is a large share of its between-class spread.
	bestRatio := 0.0
	for j := range m {
		var within, total, mu float64
		for i := range train.N {
			mu += train.X[i*m+j] / float64(train.N)
		}
		for i := range train.N {
			e := train.X[i*m+j] - means[train.Labels[i]][j]
			within += e * e
			f := train.X[i*m+j] - mu
			total += f * f
		}
		bestRatio = math.Max(bestRatio, 1-within/total)
	}
	t.Logf("best single-feature R² %.3f", bestRatio)
	assert.Less(t, bestRatio, 0.95, "no single value determines the class")
}

// TestStandardizeUsesTrainingStatistics: the training set ends with mean 0
// and standard deviation 1 per channel; the test set is moved by the same
// affine map.
func TestStandardizeUsesTrainingStatistics(t *testing.T) {
	train := &TimeSeries{N: 2, Length: 2, Channels: 2, X: []float64{1, 10, 3, 10, 5, 10, 7, 10}}
	test := &TimeSeries{N: 1, Length: 1, Channels: 2, X: []float64{4, 12}}
	mean, std, err := train.Standardize(test)
	require.NoError(t, err)
	assert.Equal(t, []float64{4, 10}, mean)
	assert.InDelta(t, math.Sqrt(5), std[0], 1e-12)
	assert.Equal(t, 1.0, std[1], "a constant channel is only centred")
	assert.InDeltaSlice(t, []float64{-3 / math.Sqrt(5), 0, -1 / math.Sqrt(5), 0, 1 / math.Sqrt(5), 0, 3 / math.Sqrt(5), 0}, train.X, 1e-12)
	assert.InDeltaSlice(t, []float64{0, 2}, test.X, 1e-12)
	_, _, err = train.Standardize(&TimeSeries{Channels: 3})
	assert.ErrorIs(t, err, ErrFormat)
}

// FuzzReadTS: any input parses to consistent shapes or is ErrFormat.
func FuzzReadTS(f *testing.F) {
	f.Add([]byte(header + "1,2,3:4,5,6:b\n-1.5,0,2e-3:7,8,?,9:a\n"))
	f.Add([]byte(header + "1,2,3:4,5:a\n"))
	f.Add([]byte("@classLabel true 1 2\n@data\n1,?,3:1\n"))
	f.Add([]byte(unequalHeader + "1,2:10,20:2\r\n?,5,6,7,?:?,?,30,?,50:3\r\n8,9,10:?,?,?:1\r\n"))
	f.Add([]byte("@equalLength false\n@classLabel true a b\n@data\n1:a\n1,2,3,4,5,6,7,8,9:b\n?:a\n"))
	f.Add([]byte("@equalLength true\n@classLabel true a b\n@data\n1,2:3:a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ReadTS(bytes.NewReader(data), "fuzz.ts")
		if err != nil {
			require.ErrorIs(t, err, ErrFormat)
			return
		}
		require.Equal(t, ts.N*ts.Length*ts.Channels, len(ts.X))
		require.Len(t, ts.Labels, ts.N)
		for _, v := range ts.X {
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "a filled value is finite")
		}
		if ts.Observed != nil {
			require.Len(t, ts.Observed, len(ts.X))
		}
		if ts.Lengths != nil {
			require.Len(t, ts.Lengths, ts.N)
			for _, n := range ts.Lengths {
				require.True(t, n >= 1 && n <= ts.Length)
			}
		}
		for _, l := range ts.Labels {
			require.True(t, l >= 0 && l < len(ts.Classes))
		}
	})
}

// nearestClassMean fits each class's mean of the training rows (m values
// each) and returns the means, the rows per class and the share of test
// rows whose nearest mean (Euclidean) is their own class's.
func nearestClassMean[T uint8 | float64](trainX []T, trainY []int, testX []T, testY []int, m, classes int) (means [][]float64, counts []float64, acc float64) {
	means, counts = make([][]float64, classes), make([]float64, classes)
	for c := range means {
		means[c] = make([]float64, m)
	}
	for i, c := range trainY {
		counts[c]++
		for j, v := range trainX[i*m : (i+1)*m] {
			means[c][j] += float64(v)
		}
	}
	for c := range means {
		for j := range means[c] {
			means[c][j] /= counts[c]
		}
	}
	correct := 0
	for i, label := range testY {
		best, bestD := -1, math.Inf(1)
		for c := range means {
			d := 0.0
			for j, v := range testX[i*m : (i+1)*m] {
				e := float64(v) - means[c][j]
				d += e * e
			}
			if d < bestD {
				best, bestD = c, d
			}
		}
		if best == label {
			correct++
		}
	}
	return means, counts, float64(correct) / float64(len(testY))
}
