package datasets

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unequalHeader is how the archive's unequal-length sets (e.g.
// CharacterTrajectories) begin: no @seriesLength, @equalLength false,
// numbered labels.
const unequalHeader = "#Example of the archive's header\r\n@problemName CharTrajLike\r\n@timeStamps false\r\n@missing true\r\n" +
	"@univariate false\r\n@dimensions 2\r\n@equalLength false\r\n@classLabel true 1 2 3\r\n@data\r\n"

// TestReadTSUnequalLengths: series are padded to the longest by repeating
// each channel's last value, keep their lengths, and the padding is marked
// unobserved; a missing value keeps its place (carried forward), leading
// missing values take the first observed one.
func TestReadTSUnequalLengths(t *testing.T) {
	body := unequalHeader +
		"1,2:10,20:2\r\n" +
		"?,5,6,7,?:?,?,30,?,50:3\r\n" +
		"8,9,10:?,?,?:1\r\n"
	ts, err := ReadTS(strings.NewReader(body), "u.ts")
	require.NoError(t, err)
	assert.Equal(t, []int{3, 5, 2}, []int{ts.N, ts.Length, ts.Channels})
	assert.Equal(t, []int{2, 5, 3}, ts.Lengths)
	assert.Equal(t, []int{1, 2, 0}, ts.Labels)
	at := func(i, k, d int) float64 { return ts.X[(i*ts.Length+k)*ts.Channels+d] }
	var got [3][5][2]float64
	for i := range 3 {
		for k := range 5 {
			for d := range 2 {
				got[i][k][d] = at(i, k, d)
			}
		}
	}
	assert.Equal(t, [5][2]float64{{1, 10}, {2, 20}, {2, 20}, {2, 20}, {2, 20}}, got[0], "padded with the last values")
	assert.Equal(t, [5][2]float64{{5, 30}, {5, 30}, {6, 30}, {7, 30}, {7, 50}}, got[1], "back-filled, carried forward")
	assert.Equal(t, [5][2]float64{{8, 0}, {9, 0}, {10, 0}, {10, 0}, {10, 0}}, got[2], "a channel without observations is 0")
	obs := func(i, d int) []bool {
		var out []bool
		for k := range 5 {
			out = append(out, ts.ObservedAt(i, k, d))
		}
		return out
	}
	assert.Equal(t, []bool{true, true, false, false, false}, obs(0, 0))
	assert.Equal(t, []bool{false, true, true, true, false}, obs(1, 0))
	assert.Equal(t, []bool{false, false, true, false, true}, obs(1, 1))
	assert.Equal(t, []bool{false, false, false, false, false}, obs(2, 1))

	// The round trip through WriteTS keeps lengths, gaps and values.
	var buf bytes.Buffer
	require.NoError(t, WriteTS(&buf, ts))
	assert.Contains(t, buf.String(), "@equalLength false")
	back, err := ReadTS(&buf, "back.ts")
	require.NoError(t, err)
	assert.Equal(t, ts.X, back.X)
	assert.Equal(t, ts.Observed, back.Observed)
	assert.Equal(t, ts.Lengths, back.Lengths)

	// Standardising counts observed values only, and a channel never
	// observed in a series stays at the mean (0).
	mean, std, err := ts.Standardize()
	require.NoError(t, err)
	wantMean0 := (1 + 2 + 5 + 6 + 7 + 8 + 9 + 10) / 8.0
	assert.InDelta(t, wantMean0, mean[0], 1e-12)
	assert.InDelta(t, (10+20+30+50)/4.0, mean[1], 1e-12)
	var ss float64
	for _, v := range []float64{1, 2, 5, 6, 7, 8, 9, 10} {
		ss += (v - wantMean0) * (v - wantMean0)
	}
	assert.InDelta(t, math.Sqrt(ss/8), std[0], 1e-12)
	for k := range 5 {
		assert.Equal(t, 0.0, at(2, k, 1))
	}
}

// TestReadTSEqualLengthDeclared: a file declaring equal lengths is held to
// them (a shorter series is an error, not padding).
func TestReadTSEqualLengthDeclared(t *testing.T) {
	_, err := ReadTS(strings.NewReader(strings.Replace(unequalHeader, "@equalLength false", "@equalLength true", 1)+"1,2:3,4:1\r\n1,2,3:4,5,6:2\r\n"), "e.ts")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "e.ts:11: dimension 1 has 3 values, want 2")
}

// TestAlignClassesByName: test files whose @classLabel lists the classes in
// another order get the training file's indices by name; a label the
// training header lacks is refused.
func TestAlignClassesByName(t *testing.T) {
	train, err := ReadTS(strings.NewReader("@classLabel true walk run sit\n@data\n1,2:walk\n3,4:sit\n5,6:run\n"), "TRAIN.ts")
	require.NoError(t, err)
	test, err := ReadTS(strings.NewReader("@classLabel true sit run walk\n@data\n1,2:sit\n3,4:walk\n5,6:run\n7,8:sit\n"), "TEST.ts")
	require.NoError(t, err)
	require.Equal(t, []int{0, 2, 1, 0}, test.Labels, "the test file's own order")
	require.NoError(t, train.AlignClasses(test))
	assert.Equal(t, []int{0, 2, 1}, train.Labels)
	assert.Equal(t, []int{2, 0, 1, 2}, test.Labels, "sit→2, walk→0, run→1 as in the training header")
	assert.Equal(t, train.Classes, test.Classes)

	stranger, err := ReadTS(strings.NewReader("@classLabel true walk jump\n@data\n1,2:walk\n3,4:jump\n"), "TEST2.ts")
	require.NoError(t, err)
	err = train.AlignClasses(stranger)
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), `TEST2.ts: series 1 has class "jump"`)
	// A declared but unused extra class is harmless.
	extra, err := ReadTS(strings.NewReader("@classLabel true zzz walk\n@data\n1,2:walk\n"), "TEST3.ts")
	require.NoError(t, err)
	require.NoError(t, train.AlignClasses(extra))
	assert.Equal(t, []int{0}, extra.Labels)
}

// TestPaperSplit: the merged set is re-split 70/15/15, each part stratified
// by class, deterministic, and a partition of the series.
func TestPaperSplit(t *testing.T) {
	spec := ArchiveSpec{Name: "S", Channels: 2, Classes: 3, Length: 4, Train: 57, Test: 43}
	a, b, err := StandIn(spec, 5)
	require.NoError(t, err)
	// Give every series a unique first value to identify it.
	for i := range a.N {
		a.X[i*a.Length*a.Channels] = float64(i)
	}
	for i := range b.N {
		b.X[i*b.Length*b.Channels] = float64(1000 + i)
	}
	tr, val, te, err := PaperSplit(a, b)
	require.NoError(t, err)
	assert.Equal(t, []int{70, 15, 15}, []int{tr.N, val.N, te.N})
	var ids []float64
	for _, s := range []*TimeSeries{tr, val, te} {
		for i := range s.N {
			ids = append(ids, s.X[i*s.Length*s.Channels])
		}
	}
	slices.Sort(ids)
	assert.Equal(t, len(slices.Compact(slices.Clone(ids))), 100, "every series once")
	count := func(s *TimeSeries) []int {
		c := make([]int, 3)
		for _, l := range s.Labels {
			c[l]++
		}
		return c
	}
	all := count(&TimeSeries{Labels: append(slices.Clone(a.Labels), b.Labels...)})
	for k, n := range count(tr) {
		assert.InDelta(t, 0.7*float64(all[k]), float64(n), 1, "class %d in training", k)
	}
	for k, n := range count(te) {
		assert.InDelta(t, 0.15*float64(all[k]), float64(n), 1.5, "class %d in test", k)
	}
	tr2, _, te2, err := PaperSplit(a, b)
	require.NoError(t, err)
	assert.Equal(t, tr.X, tr2.X, "fixed seeds")
	assert.Equal(t, te.Labels, te2.Labels)
}

// TestStandardizeNearFloatLimits: finite values near ±1e308 standardise
// without overflow; values whose spread leaves the float64 range are an
// error, never NaN or Inf.
func TestStandardizeNearFloatLimits(t *testing.T) {
	m := &Matrix{Name: "big", Rows: 3, Cols: 2, X: []float64{1e308, 1, -1e308, 2, 1.5e308, 3}}
	logScale, err := m.Standardize()
	require.NoError(t, err)
	for _, v := range m.X {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%v", m.X)
	}
	// In units of 1e308: values 1, −1, 1.5; mean 0.5; sample sd √((0.25+2.25+1)/2).
	sd := math.Sqrt((0.25 + 2.25 + 1) / 2)
	assert.InDeltaSlice(t, []float64{0.5 / sd, -1.5 / sd, 1 / sd}, []float64{m.X[0], m.X[2], m.X[4]}, 1e-12)
	assert.InDelta(t, math.Log(sd)+308*math.Log(10)+math.Log(1), logScale, 1e-9)
	tiny := &Matrix{Name: "tiny", Rows: 2, Cols: 1, X: []float64{5e-324, 1e-323}}
	_, err = tiny.Standardize()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{-math.Sqrt(0.5), math.Sqrt(0.5)}, tiny.X, 1e-12)
	// A spread beyond the float64 range still standardises; its log-scale is finite.
	wide := &Matrix{Name: "wide", Rows: 2, Cols: 1, X: []float64{-math.MaxFloat64, math.MaxFloat64}}
	ls, err := wide.Standardize()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{-math.Sqrt(0.5), math.Sqrt(0.5)}, wide.X, 1e-12)
	assert.False(t, math.IsInf(ls, 0))
	ts := &TimeSeries{Name: "ts", N: 2, Length: 1, Channels: 1, X: []float64{-1e308, 1e308}}
	_, _, err = ts.Standardize()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{-1, 1}, ts.X, 1e-12)
}

// TestReadTSByteOrderMark: a file opening with a UTF-8 byte-order mark reads
// as without it.
func TestReadTSByteOrderMark(t *testing.T) {
	ts, err := ReadTS(strings.NewReader("\ufeff#comment\n@classLabel true a b\n@data\n1,2:a\n3,4:b\n"), "bom.ts")
	require.NoError(t, err)
	assert.Equal(t, 2, ts.N)
	ts, err = ReadTS(strings.NewReader("\ufeff@classLabel true a b\n@data\n1,2:a\n"), "bom2.ts")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ts.Classes)
}

// TestReadersRespectTheCap: the text readers refuse a file whose values
// would exceed MaxBytes, naming the cap.
func TestReadersRespectTheCap(t *testing.T) {
	old := MaxBytes
	defer func() { MaxBytes = old }()
	MaxBytes = 100 // 12 float64 values
	_, err := ReadTS(strings.NewReader("@classLabel true a b\n@data\n1,2,3,4,5,6,7,8:a\n1,2,3,4,5,6,7,8:b\n"), "big.ts")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "over the 100-byte cap")
	_, err = ReadMatrixCSV(strings.NewReader("1,2,3,4\n5,6,7,8\n9,10,11,12\n13,14,15,16\n"), "big.csv")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "over the 100-byte cap")
	_, err = ReadCIFAR10(bytes.NewReader(make([]byte, cifarRecord)), "big.bin")
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "over the 100-byte cap")
}
