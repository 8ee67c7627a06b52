package datasets

import (
	"fmt"
	"math"
)

// Images is a labelled image set. The pixels stay the bytes the files hold
// (1 byte each, channels-last: image i is Bytes[i·H·W·C : (i+1)·H·W·C]) and
// are turned into the model's float32 values one batch at a time (Image,
// Pixels): byte b of channel c becomes (b/255 − Mean[c]) / Std[c]. Mean and
// Std nil mean 0 and 1 (values in [0, 1]); StandardizeChannels sets them.
type Images struct {
	// N images of H×W pixels with C channels.
	N, H, W, C int
	// Bytes are the pixels as the files hold them, channels-last.
	Bytes []uint8
	// Mean and Std map byte b of channel c to (b/255 − Mean[c])/Std[c]; nil means
	// 0 and 1.
	Mean, Std []float64
	// Labels are the classes, 0 ≤ label < Classes.
	Labels []int
	// Classes is the number of classes.
	Classes int
}

// Size is the number of values of one image, H·W·C.
func (im *Images) Size() int { return im.H * im.W * im.C }

// Table returns, per channel, the float32 value of each of the 256 bytes.
func (im *Images) Table() [][256]float32 {
	t := make([][256]float32, im.C)
	for c := range t {
		mean, std := 0.0, 1.0
		if c < len(im.Mean) && c < len(im.Std) {
			mean, std = im.Mean[c], im.Std[c]
		}
		for b := range 256 {
			t[c][b] = float32((float64(b)/255 - mean) / std)
		}
	}
	return t
}

// Image writes image i's values into dst (len ≥ Size()) through table
// (Table's, computed once per batch).
func (im *Images) Image(dst []float32, i int, table [][256]float32) {
	size := im.Size()
	src := im.Bytes[i*size : (i+1)*size]
	c := im.C
	if c == 1 {
		t := &table[0]
		for j, b := range src {
			dst[j] = t[b]
		}
		return
	}
	for j, b := range src {
		dst[j] = table[j%c][b]
	}
}

// Pixels returns every image's values (N·H·W·C float32s: four times the
// bytes; meant for small sets and tests — batches convert per batch).
func (im *Images) Pixels() []float32 {
	out := make([]float32, im.N*im.Size())
	t := im.Table()
	for i := range im.N {
		im.Image(out[i*im.Size():], i, t)
	}
	return out
}

// Subset returns the first n images (all if n ≤ 0 or n ≥ N), sharing storage.
func (im *Images) Subset(n int) *Images {
	if im == nil || n <= 0 || n >= im.N {
		return im
	}
	out := *im
	out.N, out.Bytes, out.Labels = n, im.Bytes[:n*im.Size()], im.Labels[:n]
	return &out
}

// Validate checks that the fields agree (sizes, lengths, labels in range),
// so that batching cannot index out of bounds; a mismatch is ErrInvalid.
func (im *Images) Validate() error {
	if err := im.ValidateShape(); err != nil {
		return err
	}
	for i, l := range im.Labels {
		if l < 0 || l >= im.Classes {
			return fmt.Errorf("%w: image %d has label %d, want 0–%d", ErrInvalid, i, l, im.Classes-1)
		}
	}
	return nil
}

// ValidateShape is Validate without the pass over the labels (constant time).
func (im *Images) ValidateShape() error {
	switch {
	case im == nil:
		return fmt.Errorf("%w: no images", ErrInvalid)
	case im.N < 1 || im.H < 1 || im.W < 1 || im.C < 1:
		return fmt.Errorf("%w: images of %d×%d×%d×%d (want every size ≥ 1)", ErrInvalid, im.N, im.H, im.W, im.C)
	case uint64(im.N)*uint64(im.Size()) != uint64(len(im.Bytes)):
		return fmt.Errorf("%w: %d bytes of pixels for %d images of %d×%d×%d", ErrInvalid, len(im.Bytes), im.N, im.H, im.W, im.C)
	case len(im.Labels) != im.N:
		return fmt.Errorf("%w: %d labels for %d images", ErrInvalid, len(im.Labels), im.N)
	case im.Classes < 2:
		return fmt.Errorf("%w: %d classes (want ≥ 2)", ErrInvalid, im.Classes)
	case im.Mean != nil && len(im.Mean) != im.C || im.Std != nil && len(im.Std) != im.C || (im.Mean == nil) != (im.Std == nil):
		return fmt.Errorf("%w: %d means and %d standard deviations for %d channels", ErrInvalid, len(im.Mean), len(im.Std), im.C)
	}
	for c, s := range im.Std {
		if !(s > 0) || math.IsInf(s, 0) || math.IsNaN(im.Mean[c]) || math.IsInf(im.Mean[c], 0) {
			return fmt.Errorf("%w: channel %d's mean %v and standard deviation %v", ErrInvalid, c, im.Mean[c], s)
		}
	}
	return nil
}

// moments are per-column statistics kept in scaled form: the column's
// values divided by Scale (its largest magnitude) have mean M and standard
// deviation S, so that neither overflows nor loses precision whatever the
// magnitude of finite data.
type moments struct{ Scale, M, S []float64 }

// Mean is the column means (Scale·M).
func (m moments) Mean() []float64 {
	out := make([]float64, len(m.M))
	for k := range out {
		out[k] = m.Scale[k] * m.M[k]
	}
	return out
}

// Std is the column standard deviations (Scale·S; +Inf beyond the float64
// range).
func (m moments) Std() []float64 {
	out := make([]float64, len(m.S))
	for k := range out {
		out[k] = m.Scale[k] * m.S[k]
	}
	return out
}

// LogStd is log(Scale·S) per column, finite even where Std overflows.
func (m moments) LogStd(k int) float64 { return math.Log(m.Scale[k]) + math.Log(m.S[k]) }

// columnMoments returns the mean and the standard deviation of each of the c
// interleaved columns of x (value i belongs to column i mod c: the channels
// of a series, the columns of a row-major matrix), the squared deviations
// divided by count − ddof (0: population, 1: sample). Values where keep is
// false are left out (keep nil: all count). Columns with too few values get
// M = S = 0.
func columnMoments(x []float64, c, ddof int, keep []bool) moments {
	m := moments{Scale: make([]float64, c), M: make([]float64, c), S: make([]float64, c)}
	count := make([]int, c)
	for i, v := range x {
		if keep == nil || keep[i] {
			m.Scale[i%c] = math.Max(m.Scale[i%c], math.Abs(v))
			count[i%c]++
		}
	}
	for k := range m.Scale {
		if m.Scale[k] == 0 {
			m.Scale[k] = 1
		}
	}
	for i, v := range x {
		if keep == nil || keep[i] {
			m.M[i%c] += v / m.Scale[i%c]
		}
	}
	for k := range m.M {
		if count[k] > 0 {
			m.M[k] /= float64(count[k])
		}
	}
	for i, v := range x {
		if keep == nil || keep[i] {
			d := v/m.Scale[i%c] - m.M[i%c]
			m.S[i%c] += d * d
		}
	}
	for k := range m.S {
		if count[k] <= ddof {
			m.M[k], m.S[k] = 0, 0
			continue
		}
		m.S[k] = math.Sqrt(m.S[k] / float64(count[k]-ddof))
	}
	return m
}

// standardizeColumns maps every value v of x to (v/Scale − M)/S of its
// column, i.e. (v − mean)/sd computed without overflow (S = 0 columns are
// only centred). It reports whether every result is finite.
func standardizeColumns(x []float64, m moments) bool {
	c := len(m.M)
	ok := true
	for i, v := range x {
		k := i % c
		y := v/m.Scale[k] - m.M[k]
		if m.S[k] > 0 {
			y /= m.S[k]
		} else {
			y *= m.Scale[k] // a constant column: v − mean, in its own units
		}
		if math.IsInf(y, 0) || math.IsNaN(y) {
			ok = false
		}
		x[i] = y
	}
	return ok
}
