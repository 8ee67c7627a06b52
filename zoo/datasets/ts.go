// Package datasets reads the file formats the paper's data sets are
// distributed in, one format per file, each fuzzed: the UEA/UCR time-series
// archive's .ts text format (ts.go), NumPy's .npy arrays and CSV matrices of
// the MAF/FFJORD-preprocessed tabular sets (npy.go, csv.go), CIFAR-10's
// binary version (cifar.go) and SVHN's MATLAB level-5 files (mat.go,
// svhn.go), with deterministic stand-ins of the real shapes for machines
// without the files (standin.go, tabular.go).
//
// # How to use it
//
// Read a UEA set with ReadTSFile for both files, then AlignClasses (labels by
// name), PadTo a common length and Standardize with the training statistics.
// PaperSplit re-splits them 70/15/15 as the paper does. Images come as bytes
// with a per-channel map to values (Images.Image converts one image per
// batch); StandardizeChannels sets that map from the training set. Every
// reader checks the sizes a header declares against MaxBytes before
// allocating. A malformed file is ErrFormat naming the file and the place;
// a bad argument is ErrInvalid.
package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ErrFormat reports a data file that is missing, truncated or not in its
// format; the message names the file and line.
var ErrFormat = errors.New("datasets: malformed data file")

// ErrInvalid reports a bad argument to a function of this package (a
// negative size, an index out of range, sets that do not fit together).
var ErrInvalid = errors.New("datasets: invalid argument")

// TimeSeries is a labelled set of multivariate series, laid out
// series-major, then time, then channel: value (i, k, d) is
// X[(i·Length + k)·Channels + d].
//
// Series shorter than Length (the archive's @equalLength false sets) are
// padded to it by repeating each channel's last value, as the paper's
// pipeline pads them; Lengths keeps every series' own length. A value the
// file marks missing ('?' or NaN) is carried forward from the channel's
// last observed value (back-filled from its first one when the series
// starts with missing values; 0 when the channel has no observed value at
// all). Observed says which values were read from the file: padding and
// missing values are false there, so a model given the mask does not take
// them for observations.
type TimeSeries struct {
	// Name is the file's @problemName.
	Name string
	// N is the number of series.
	N int
	// Length is the (padded) number of steps, Channels the dimensions.
	Length, Channels int
	// X holds the values, series-major, then time, then channel.
	X []float64
	// Observed marks, in X's layout, the values read from the file; nil
	// when every value is (equal lengths, nothing missing).
	Observed []bool
	// Lengths are the series' lengths before padding; nil when every
	// series is Length long.
	Lengths []int
	// Labels index Classes.
	Labels []int
	// Classes are the class labels in the header's @classLabel order (the
	// training file's, after AlignClasses).
	Classes []string
	// Source names where the set was read from (ReadTS's name), for errors.
	Source string
}

// source is Source, else Name.
func (ts *TimeSeries) source() string {
	if ts.Source != "" {
		return ts.Source
	}
	return ts.Name
}

// ObservedAt reports whether value (i, k, d) was read from the file.
func (ts *TimeSeries) ObservedAt(i, k, d int) bool {
	return ts.Observed == nil || ts.Observed[(i*ts.Length+k)*ts.Channels+d]
}

// SeriesLength is series i's length before padding.
func (ts *TimeSeries) SeriesLength(i int) int {
	if ts.Lengths == nil {
		return ts.Length
	}
	return ts.Lengths[i]
}

// bom is the UTF-8 byte-order mark that may open a text file.
const bom = "\ufeff"

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
// by ':', values by ',', the class label last. '?' (or NaN) marks a missing
// value, which keeps its place in time. Series of unequal lengths (the
// archive's @equalLength false sets) are padded to the longest; see
// TimeSeries for how padding and missing values are filled and marked. A
// file that declares @equalLength true or a @seriesLength is held to it.
// name labels errors ("<name>:<line>: …").
func ReadTS(r io.Reader, name string) (*TimeSeries, error) {
	p := &tsParser{name: name, dims: -1, length: -1, classIdx: map[string]int{}}
	p.ts.Source = name
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for s.Scan() {
		p.line++
		text := strings.TrimSpace(s.Text())
		if p.line == 1 {
			text = strings.TrimSpace(strings.TrimPrefix(text, bom)) // a UTF-8 byte-order mark, as some editors write
		}
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
	if err := p.finish(); err != nil {
		return nil, err
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
	// equal is @equalLength (nil: not declared).
	equal *bool
	// series holds each series' values channel-major (channel d's values
	// at [d·n, (d+1)·n) for n = lengths[i]), NaN where missing, until
	// finish pads them into ts.X.
	series  [][]float64
	lengths []int
	values  int // values read so far
	missing bool
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
		if eq, err = boolean(); err == nil {
			p.equal = &eq
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
	n := 0
	for d, field := range dims {
		for j, v := range strings.Split(field, ",") {
			v = strings.TrimSpace(v)
			if v == "?" || strings.EqualFold(v, "nan") {
				values[d] = append(values[d], math.NaN()) // missing: keeps its place in time
				p.missing = true
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
				return p.errf("dimension %d, value %d: %q is not a finite number", d+1, j+1, v)
			}
			values[d] = append(values[d], x)
		}
		n = max(n, len(values[d]))
	}
	// A file that declares equal lengths (or a @seriesLength without
	// @equalLength false) is held to it; the first series sets the length
	// when only @equalLength true is declared.
	unequal := p.equal != nil && !*p.equal
	strict := !unequal && (p.length > 0 || p.equal != nil)
	for d := range values {
		if strict && p.length < 0 {
			p.length = len(values[d])
		}
		if strict && len(values[d]) != p.length {
			return p.errf("dimension %d has %d values, want %d (the header declares equal lengths)", d+1, len(values[d]), p.length)
		}
	}
	if n == 0 {
		return p.errf("an empty series")
	}
	p.values += n * p.dims
	if p.values > maxTSValues {
		return p.errf("more than %d values", maxTSValues)
	}
	if err := CheckDeclared(fmt.Sprintf("%s:%d (%d float64 values so far)", p.name, p.line, p.values), 8*uint64(p.values)); err != nil {
		return err
	}
	flat := make([]float64, n*p.dims)
	for d := range values {
		copy(flat[d*n:], values[d])
		last := math.NaN()
		if len(values[d]) > 0 {
			last = values[d][len(values[d])-1]
		}
		for k := len(values[d]); k < n; k++ { // a channel shorter than its series: padded like a short series
			flat[d*n+k] = last
		}
	}
	p.series, p.lengths = append(p.series, flat), append(p.lengths, n)
	p.ts.Labels = append(p.ts.Labels, cls)
	p.ts.N++
	return nil
}

// finish pads the series to the longest and lays them out in ts.X, filling
// missing values (see TimeSeries), and marks what was observed.
func (p *tsParser) finish() error {
	longest := slices.Max(p.lengths)
	if uint64(p.ts.N)*uint64(longest)*uint64(p.dims) > maxTSValues {
		return p.errf("padding %d series to the longest (%d steps, %d channels) needs more than %d values",
			p.ts.N, longest, p.dims, maxTSValues)
	}
	if err := CheckDeclared(fmt.Sprintf("%s: %d series padded to %d steps of %d channels", p.name, p.ts.N, longest, p.dims),
		8*uint64(p.ts.N)*uint64(longest)*uint64(p.dims)); err != nil {
		return err
	}
	p.ts.Length, p.ts.Channels = longest, p.dims
	p.ts.X = make([]float64, p.ts.N*longest*p.dims)
	padded := false
	for _, n := range p.lengths {
		padded = padded || n != longest
	}
	if padded {
		p.ts.Lengths = p.lengths
	}
	if padded || p.missing {
		p.ts.Observed = make([]bool, len(p.ts.X))
	}
	for i, flat := range p.series {
		n := p.lengths[i]
		for d := range p.dims {
			fillChannel(&p.ts, i, d, flat[d*n:(d+1)*n])
		}
		p.series[i] = nil
	}
	p.series = nil
	return nil
}

// fillChannel writes channel d of series i from raw (NaN: missing): each
// missing value carries the last observed one forward (leading ones take
// the first observed value; a channel with none is 0), and the steps after
// raw's end repeat its last value. Observed marks the values read.
func fillChannel(ts *TimeSeries, i, d int, raw []float64) {
	first := 0.0
	for _, v := range raw {
		if !math.IsNaN(v) {
			first = v
			break
		}
	}
	last := first
	for k := range ts.Length {
		at := (i*ts.Length+k)*ts.Channels + d
		if k < len(raw) && !math.IsNaN(raw[k]) {
			last = raw[k]
			if ts.Observed != nil {
				ts.Observed[at] = true
			}
		}
		ts.X[at] = last
	}
}

// AlignClasses maps the labels of others (test or validation files) to
// ts's classes by name, so that one class has one index in every set
// whatever order each file's @classLabel lists: afterwards every set's
// Classes is ts's (the training file's declared order). A label ts does not
// declare is ErrFormat naming the file; so are differing channel counts.
func (ts *TimeSeries) AlignClasses(others ...*TimeSeries) error {
	idx := make(map[string]int, len(ts.Classes))
	for i, c := range ts.Classes {
		idx[c] = i
	}
	for _, o := range others {
		if o.Channels != ts.Channels {
			return fmt.Errorf("%w: %s has %d channels, the training set %s %d", ErrFormat, o.source(), o.Channels, ts.source(), ts.Channels)
		}
		remap := make([]int, len(o.Classes))
		for i, c := range o.Classes {
			j, ok := idx[c]
			if !ok {
				j = -1
			}
			remap[i] = j
		}
		labels := make([]int, o.N)
		for i, l := range o.Labels {
			if l < 0 || l >= len(remap) {
				return fmt.Errorf("%w: %s: series %d has label index %d of %d classes", ErrFormat, o.source(), i, l, len(remap))
			}
			if remap[l] < 0 {
				return fmt.Errorf("%w: %s: series %d has class %q, which the training file's @classLabel %v does not declare",
					ErrFormat, o.source(), i, o.Classes[l], ts.Classes)
			}
			labels[i] = remap[l]
		}
		o.Labels, o.Classes = labels, slices.Clone(ts.Classes)
	}
	return nil
}

// PadTo pads every series to length steps (≥ Length), repeating each
// channel's last value and marking the padding unobserved, so that sets
// read from different files share one length.
func (ts *TimeSeries) PadTo(length int) error {
	if length < ts.Length {
		return fmt.Errorf("%w: %s: cannot pad series of %d steps to %d", ErrInvalid, ts.Name, ts.Length, length)
	}
	if length == ts.Length {
		return nil
	}
	if uint64(ts.N)*uint64(length)*uint64(ts.Channels) > maxTSValues {
		return fmt.Errorf("%w: %s: padding to %d steps needs more than %d values", ErrInvalid, ts.Name, length, maxTSValues)
	}
	c := ts.Channels
	x := make([]float64, ts.N*length*c)
	obs := make([]bool, len(x))
	lengths := make([]int, ts.N)
	for i := range ts.N {
		lengths[i] = ts.SeriesLength(i)
		for k := range length {
			src := min(k, ts.Length-1)
			for d := range c {
				x[(i*length+k)*c+d] = ts.X[(i*ts.Length+src)*c+d]
				obs[(i*length+k)*c+d] = k < ts.Length && ts.ObservedAt(i, k, d)
			}
		}
	}
	ts.X, ts.Observed, ts.Lengths, ts.Length = x, obs, lengths, length
	return nil
}

// Subset returns the series idx, in that order, as a new set (copied).
func (ts *TimeSeries) Subset(idx []int) (*TimeSeries, error) {
	m := ts.Length * ts.Channels
	out := &TimeSeries{Name: ts.Name, N: len(idx), Length: ts.Length, Channels: ts.Channels,
		X: make([]float64, 0, len(idx)*m), Labels: make([]int, len(idx)), Classes: ts.Classes}
	if ts.Observed != nil {
		out.Observed = make([]bool, 0, len(idx)*m)
	}
	if ts.Lengths != nil {
		out.Lengths = make([]int, len(idx))
	}
	for j, i := range idx {
		if i < 0 || i >= ts.N {
			return nil, fmt.Errorf("%w: series index %d outside [0, %d)", ErrInvalid, i, ts.N)
		}
		out.X = append(out.X, ts.X[i*m:(i+1)*m]...)
		if ts.Observed != nil {
			out.Observed = append(out.Observed, ts.Observed[i*m:(i+1)*m]...)
		}
		if ts.Lengths != nil {
			out.Lengths[j] = ts.Lengths[i]
		}
		out.Labels[j] = ts.Labels[i]
	}
	return out, nil
}

// Merge concatenates sets of the same length, channels and classes (align
// them first with AlignClasses and PadTo).
func Merge(name string, sets ...*TimeSeries) (*TimeSeries, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge", ErrInvalid)
	}
	first := sets[0]
	out := &TimeSeries{Name: name, Length: first.Length, Channels: first.Channels, Classes: first.Classes}
	anyObs, anyLen := false, false
	for _, s := range sets {
		if s.Length != first.Length || s.Channels != first.Channels || !slices.Equal(s.Classes, first.Classes) {
			return nil, fmt.Errorf("%w: %s (%d steps, %d channels, classes %v) and %s (%d, %d, %v) do not merge",
				ErrInvalid, s.Name, s.Length, s.Channels, s.Classes, first.Name, first.Length, first.Channels, first.Classes)
		}
		anyObs, anyLen = anyObs || s.Observed != nil, anyLen || s.Lengths != nil
	}
	for _, s := range sets {
		out.N += s.N
		out.X = append(out.X, s.X...)
		out.Labels = append(out.Labels, s.Labels...)
		if anyObs {
			if s.Observed != nil {
				out.Observed = append(out.Observed, s.Observed...)
			} else {
				out.Observed = append(out.Observed, slices.Repeat([]bool{true}, len(s.X))...)
			}
		}
		if anyLen {
			for i := range s.N {
				out.Lengths = append(out.Lengths, s.SeriesLength(i))
			}
		}
	}
	return out, nil
}

// PaperSplitSeeds are the fixed seeds of PaperSplit's two stratified cuts.
var PaperSplitSeeds = [2]uint64{0, 1}

// PaperSplit merges the archive's training and test sets and splits them
// again 70/15/15 into training, validation and test sets, each stratified
// by class, with the fixed seeds PaperSplitSeeds, as the paper's pipeline
// does (its sets are re-split because the archive ships no validation set
// and uneven train/test sizes). train and test must be aligned
// (AlignClasses, PadTo). The cuts are deterministic: every class gives
// round-to-nearest shares, adjusted so the totals are ⌈0.3·N⌉ held out and
// of those ⌈0.5·n⌉ for validation.
func PaperSplit(train, test *TimeSeries) (tr, val, te *TimeSeries, err error) {
	all, err := Merge(train.Name, train, test)
	if err != nil {
		return nil, nil, nil, err
	}
	keep, rest := stratifiedCut(all.Labels, all.N-(all.N*3+9)/10, PaperSplitSeeds[0])
	restLabels := make([]int, len(rest))
	for j, i := range rest {
		restLabels[j] = all.Labels[i]
	}
	vi, ti := stratifiedCut(restLabels, len(rest)-(len(rest)+1)/2, PaperSplitSeeds[1])
	for j := range vi {
		vi[j] = rest[vi[j]]
	}
	for j := range ti {
		ti[j] = rest[ti[j]]
	}
	if tr, err = all.Subset(keep); err == nil {
		if val, err = all.Subset(vi); err == nil {
			te, err = all.Subset(ti)
		}
	}
	return tr, val, te, err
}

// stratifiedCut splits 0…len(labels)−1 into a first part of n indices and
// the rest, each class divided in proportion (largest remainders first,
// ties to the lower class), members drawn by a seeded shuffle; both parts
// are returned in shuffled order.
func stratifiedCut(labels []int, n int, seed uint64) (first, rest []int) {
	byClass := map[int][]int{}
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	classes := slices.Sorted(maps.Keys(byClass))
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	share := make([]int, len(classes))
	type rem struct {
		frac float64
		k    int
	}
	var rems []rem
	total := 0
	for k, c := range classes {
		exact := float64(n) * float64(len(byClass[c])) / float64(len(labels))
		share[k] = int(exact)
		total += share[k]
		rems = append(rems, rem{exact - float64(share[k]), k})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for j := 0; total < n; j++ {
		share[rems[j%len(rems)].k]++
		total++
	}
	for k, c := range classes {
		members := byClass[c]
		rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })
		first = append(first, members[:share[k]]...)
		rest = append(rest, members[share[k]:]...)
	}
	rng.Shuffle(len(first), func(a, b int) { first[a], first[b] = first[b], first[a] })
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	return first, rest
}

// Standardize rescales every channel of ts (and of others, e.g. the test
// set) to the training set's per-channel mean 0 and standard deviation 1
// (a constant channel is only centred), the statistics taken over observed
// values only (padding and filled-in missing values do not count). A
// series' channel with no observed value at all is set to 0, the mean. It
// returns the means and standard deviations used; data whose statistics or
// standardised values leave the float64 range is ErrFormat.
func (ts *TimeSeries) Standardize(others ...*TimeSeries) (mean, std []float64, err error) {
	for _, o := range others {
		if o.Channels != ts.Channels {
			return nil, nil, fmt.Errorf("%w: %s has %d channels, the training set %d", ErrFormat, o.Name, o.Channels, ts.Channels)
		}
	}
	mom := columnMoments(ts.X, ts.Channels, 0, ts.Observed)
	mean, std = mom.Mean(), mom.Std()
	for d := range std {
		if std[d] == 0 {
			std[d] = 1 // only centred
		}
	}
	for _, set := range append([]*TimeSeries{ts}, others...) {
		if !standardizeColumns(set.X, mom) {
			return nil, nil, fmt.Errorf("%w: %s: standardised values leave the float64 range (mean %v, sd %v)", ErrFormat, set.Name, mean, std)
		}
		set.zeroUnobservedChannels()
	}
	return mean, std, nil
}

// zeroUnobservedChannels sets every series' channel that holds no observed
// value to 0.
func (ts *TimeSeries) zeroUnobservedChannels() {
	if ts.Observed == nil {
		return
	}
	for i := range ts.N {
		for d := range ts.Channels {
			seen := false
			for k := range ts.Length {
				seen = seen || ts.ObservedAt(i, k, d)
			}
			if !seen {
				for k := range ts.Length {
					ts.X[(i*ts.Length+k)*ts.Channels+d] = 0
				}
			}
		}
	}
}
