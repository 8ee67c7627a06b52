// Package datasets reads the file formats the paper's data sets are
// distributed in, one format per file, each fuzzed: the UEA/UCR time-series
// archive's .ts text format (ts.go) and NumPy's .npy arrays of the
// MAF/FFJORD-preprocessed tabular sets (npy.go).
package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ErrFormat reports a data file that is missing, truncated or not in its
// format; the message names the file and line.
var ErrFormat = errors.New("datasets: malformed data file")

// TimeSeries is a labelled set of equal-length multivariate series, laid
// out series-major, then time, then channel: value (i, k, d) is
// X[(i·Length + k)·Channels + d].
type TimeSeries struct {
	Name             string
	N                int
	Length, Channels int
	X                []float64
	// Labels index Classes, the labels in the header's @classLabel order.
	Labels  []int
	Classes []string
}

// maxTSValues bounds the values a .ts file may hold (2²⁸ float64 = 2 GiB).
const maxTSValues = 1 << 28

// readFile opens path and parses it, the errors naming the file.
func readFile[T any](path string, parse func(io.Reader, string) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	defer f.Close()
	return parse(bufio.NewReader(f), path)
}

// ReadTSFile reads a .ts file (see ReadTS); errors name the file.
func ReadTSFile(path string) (*TimeSeries, error) { return readFile(path, ReadTS) }

// ReadTS parses the sktime .ts format of the UEA/UCR archive: '#' comments,
// a header of @problemName, @timeStamps (false only), @univariate,
// @dimensions, @equalLength, @seriesLength, @classLabel true <labels…>,
// @missing, then @data and one series per line — the dimensions separated
// by ':', values by ',', the class label last. '?' marks a missing value;
// series must be of equal length once those are removed (unequal lengths
// are an error). name labels errors ("<name>:<line>: …").
func ReadTS(r io.Reader, name string) (*TimeSeries, error) {
	p := &tsParser{name: name, dims: -1, length: -1, classIdx: map[string]int{}}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for s.Scan() {
		p.line++
		text := strings.TrimSpace(s.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var err error
		if p.inData {
			err = p.dataLine(text)
		} else {
			err = p.headerLine(text)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := s.Err(); err != nil {
		return nil, p.errf("reading: %v", err)
	}
	if !p.inData {
		return nil, p.errf("no @data section")
	}
	if p.ts.N == 0 {
		return nil, p.errf("no series after @data")
	}
	return &p.ts, nil
}

type tsParser struct {
	name        string
	line        int
	inData      bool
	dims        int // from @dimensions (−1: not given)
	length      int // from @seriesLength, else the first series' (−1: unknown)
	univariate  *bool
	hasClasses  bool
	classIdx    map[string]int
	ts          TimeSeries
	seenProblem bool
}

func (p *tsParser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrFormat, p.name, p.line, fmt.Sprintf(format, args...))
}

func (p *tsParser) headerLine(text string) error {
	if !strings.HasPrefix(text, "@") {
		return p.errf("expected a @header line before @data, got %.40q", text)
	}
	key, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	boolean := func() (bool, error) {
		switch strings.ToLower(rest) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, p.errf("%s wants true or false, got %q", key, rest)
	}
	positive := func() (int, error) {
		v, err := strconv.Atoi(rest)
		if err != nil || v < 1 || v > maxTSValues {
			return 0, p.errf("%s wants a positive integer, got %q", key, rest)
		}
		return v, nil
	}
	var err error
	switch strings.ToLower(key) {
	case "@problemname":
		p.ts.Name, p.seenProblem = rest, true
	case "@timestamps":
		var ts bool
		if ts, err = boolean(); err == nil && ts {
			err = p.errf("@timeStamps true is not supported (regularly sampled series only)")
		}
	case "@missing":
		_, err = boolean()
	case "@univariate":
		var u bool
		if u, err = boolean(); err == nil {
			p.univariate = &u
		}
	case "@dimensions", "@dimension":
		p.dims, err = positive()
	case "@equallength":
		var eq bool
		if eq, err = boolean(); err == nil && !eq {
			err = p.errf("@equalLength false: only equal-length series are supported")
		}
	case "@serieslength":
		p.length, err = positive()
	case "@classlabel":
		fields := strings.Fields(rest)
		if len(fields) == 0 || strings.ToLower(fields[0]) != "true" {
			return p.errf("@classLabel must be true with the class labels (a classification problem)")
		}
		if len(fields) < 3 {
			return p.errf("@classLabel lists %d labels, want at least 2", len(fields)-1)
		}
		for _, c := range fields[1:] {
			if _, dup := p.classIdx[c]; dup {
				return p.errf("class label %q listed twice", c)
			}
			p.classIdx[c] = len(p.ts.Classes)
			p.ts.Classes = append(p.ts.Classes, c)
		}
		p.hasClasses = true
	case "@targetlabel":
		return p.errf("@targetLabel (regression) is not supported")
	case "@data":
		if !p.hasClasses {
			return p.errf("@data before @classLabel")
		}
		if p.univariate != nil && *p.univariate && p.dims > 1 {
			return p.errf("@univariate true with @dimensions %d", p.dims)
		}
		if p.univariate != nil && *p.univariate {
			p.dims = 1
		}
		p.inData = true
	default:
		return p.errf("unknown header %s", key)
	}
	return err
}

func (p *tsParser) dataLine(text string) error {
	parts := strings.Split(text, ":")
	if len(parts) < 2 {
		return p.errf("a series needs its dimensions and a class label separated by ':'")
	}
	label := strings.TrimSpace(parts[len(parts)-1])
	dims := parts[:len(parts)-1]
	if p.dims < 0 {
		p.dims = len(dims)
	}
	if len(dims) != p.dims {
		return p.errf("%d dimensions, the header says %d", len(dims), p.dims)
	}
	cls, ok := p.classIdx[label]
	if !ok {
		return p.errf("class label %q is not among @classLabel's %v", label, p.ts.Classes)
	}
	values := make([][]float64, len(dims))
	for d, field := range dims {
		for j, v := range strings.Split(field, ",") {
			v = strings.TrimSpace(v)
			if v == "?" || strings.EqualFold(v, "nan") {
				continue // missing: removed, the series must stay equal-length
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
				return p.errf("dimension %d, value %d: %q is not a finite number", d+1, j+1, v)
			}
			values[d] = append(values[d], x)
		}
	}
	for d := range values {
		if p.length < 0 {
			p.length = len(values[d])
		}
		if len(values[d]) != p.length {
			return p.errf("dimension %d has %d values, want %d (unequal lengths, after removing missing values, are not supported)",
				d+1, len(values[d]), p.length)
		}
	}
	if p.length == 0 {
		return p.errf("an empty series")
	}
	if (p.ts.N+1)*p.length*p.dims > maxTSValues {
		return p.errf("more than %d values", maxTSValues)
	}
	p.ts.Length, p.ts.Channels = p.length, p.dims
	for k := range p.length {
		for d := range p.dims {
			p.ts.X = append(p.ts.X, values[d][k])
		}
	}
	p.ts.Labels = append(p.ts.Labels, cls)
	p.ts.N++
	return nil
}

// Standardize rescales every channel of ts (and of others, e.g. the test
// set) to the training set's per-channel mean 0 and standard deviation 1
// (a constant channel is only centred). It returns the means and standard
// deviations used.
func (ts *TimeSeries) Standardize(others ...*TimeSeries) (mean, std []float64, err error) {
	for _, o := range others {
		if o.Channels != ts.Channels {
			return nil, nil, fmt.Errorf("%w: %s has %d channels, the training set %d", ErrFormat, o.Name, o.Channels, ts.Channels)
		}
	}
	mean, std = columnMoments(ts.X, ts.Channels, 0)
	for d := range std {
		if std[d] == 0 {
			std[d] = 1
		}
	}
	for _, set := range append([]*TimeSeries{ts}, others...) {
		standardizeColumns(set.X, mean, std)
	}
	return mean, std, nil
}
