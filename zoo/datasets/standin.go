package datasets

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ArchiveSpec is the shape of a UEA archive data set.
type ArchiveSpec struct {
	Name string // the archive's problem name (file prefix)
	// Channels, classes, the (longest) series length, and the training and test
	// set sizes.
	Channels, Classes, Length, Train, Test int
}

// Archive holds the shapes of the paper's time-series data sets (Table 1;
// the UEA archive's SpokenArabicDigits, ArticularyWordRecognition and
// CharacterTrajectories), by the short names the bench uses.
var Archive = map[string]ArchiveSpec{
	"spoad": {Name: "SpokenArabicDigits", Channels: 13, Classes: 10, Length: 93, Train: 6599, Test: 2199},
	"artwr": {Name: "ArticularyWordRecognition", Channels: 9, Classes: 25, Length: 144, Train: 275, Test: 300},
	"chart": {Name: "CharacterTrajectories", Channels: 3, Classes: 20, Length: 187, Train: 1422, Test: 1436},
}

// StandIn generates a deterministic stand-in with spec's shapes, for
// machines without the archive: each class has a smooth template per
// channel (three random sine harmonics); a series is its class's template
// under a random monotone time warp, a random amplitude and offset, plus
// white noise — separable, but not by any single value. It is NOT the
// archive's data: results on it are not the paper's Table 2.
// Sizes below 1 (or below 2 classes, 2 steps) are ErrInvalid.
func StandIn(spec ArchiveSpec, seed uint64) (train, test *TimeSeries, err error) {
	if spec.Channels < 1 || spec.Classes < 2 || spec.Length < 2 || spec.Train < 1 || spec.Test < 1 {
		return nil, nil, fmt.Errorf("%w: stand-in %q of %d channels, %d classes, length %d, %d/%d series (want ≥ 1, ≥ 2, ≥ 2, ≥ 1, ≥ 1)",
			ErrInvalid, spec.Name, spec.Channels, spec.Classes, spec.Length, spec.Train, spec.Test)
	}
	if err := CheckDeclared("stand-in "+spec.Name, 8*uint64(spec.Train+spec.Test)*uint64(spec.Length)*uint64(spec.Channels)); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	type harmonic struct{ a, phase float64 }
	tmpl := make([][][3]harmonic, spec.Classes)
	rng := rand.New(rand.NewPCG(seed, 0x7e57))
	for c := range tmpl {
		tmpl[c] = make([][3]harmonic, spec.Channels)
		for d := range tmpl[c] {
			for k := range 3 {
				tmpl[c][d][k] = harmonic{a: rng.NormFloat64() / float64(k+1), phase: 2 * math.Pi * rng.Float64()}
			}
		}
	}
	gen := func(n int, stream uint64) *TimeSeries {
		r := rand.New(rand.NewPCG(seed, stream))
		ts := &TimeSeries{Name: spec.Name, N: n, Length: spec.Length, Channels: spec.Channels,
			X: make([]float64, 0, n*spec.Length*spec.Channels), Labels: make([]int, n)}
		for c := range spec.Classes {
			ts.Classes = append(ts.Classes, strconv.Itoa(c+1))
		}
		for i := range n {
			c := r.IntN(spec.Classes)
			ts.Labels[i] = c
			warp, amp := 0.3*(2*r.Float64()-1), 1+0.3*r.NormFloat64()
			offsets := make([]float64, spec.Channels)
			for d := range offsets {
				offsets[d] = 0.5 * r.NormFloat64()
			}
			for k := range spec.Length {
				tau := float64(k) / float64(spec.Length-1)
				tau += warp * math.Sin(math.Pi*tau) // monotone for |warp| < 1/π
				for d := range spec.Channels {
					v := offsets[d]
					for h, hm := range tmpl[c][d] {
						v += amp * hm.a * math.Sin(2*math.Pi*float64(h+1)*tau+hm.phase)
					}
					// Four decimals keep the .ts text short (the archive's files
					// carry a few digits too) and the round trip exact.
					ts.X = append(ts.X, math.Round((v+0.6*r.NormFloat64())*1e4)/1e4)
				}
			}
		}
		return ts
	}
	return gen(spec.Train, 1), gen(spec.Test, 2), nil
}

// WriteTS writes ts in the .ts format ReadTS reads (values in Go's
// shortest exact formatting, so a round trip is exact): each series up to
// its own length (@equalLength false when lengths differ), '?' where a value
// was not observed.
func WriteTS(w io.Writer, ts *TimeSeries) error {
	bw := bufio.NewWriter(w)
	missing := false
	for i := range ts.N {
		for k := range ts.SeriesLength(i) {
			for d := range ts.Channels {
				missing = missing || !ts.ObservedAt(i, k, d)
			}
		}
	}
	fmt.Fprintf(bw, "# written by snopt-go\n@problemName %s\n@timeStamps false\n@missing %v\n", ts.Name, missing)
	fmt.Fprintf(bw, "@univariate %v\n@dimensions %d\n", ts.Channels == 1, ts.Channels)
	if ts.Lengths == nil {
		fmt.Fprintf(bw, "@equalLength true\n@seriesLength %d\n", ts.Length)
	} else {
		fmt.Fprintf(bw, "@equalLength false\n")
	}
	fmt.Fprintf(bw, "@classLabel true %s\n@data\n", strings.Join(ts.Classes, " "))
	var line []byte
	for i := range ts.N {
		line = line[:0]
		for d := range ts.Channels {
			for k := range ts.SeriesLength(i) {
				if k > 0 {
					line = append(line, ',')
				}
				if ts.ObservedAt(i, k, d) {
					line = strconv.AppendFloat(line, ts.X[(i*ts.Length+k)*ts.Channels+d], 'g', -1, 64)
				} else {
					line = append(line, '?')
				}
			}
			line = append(line, ':')
		}
		line = append(line, ts.Classes[ts.Labels[i]]...)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
