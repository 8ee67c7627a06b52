package zoo

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/snopt-go/snopt/zoo/datasets"
)

// SeriesInputs is D for series of c channels: the channels, time, and one
// observation mask per channel (the paper's D = 27 / 19 / 7 for 13 / 9 / 3
// channels).
func SeriesInputs(channels int) int { return 2*channels + 1 }

// SeriesBatch gathers series idx of ts into an ODE-RNN batch: X float32
// [B, K, D] with, per step k, the C channel values, the time k/(K−1) and C
// observation masks (1 where the file gave the value; 0 for a missing value
// carried forward and for the padding after a shorter series' end, see
// datasets.TimeSeries), and Labels int32 [B]. A label outside ts.Classes is
// ErrInvalid.
func SeriesBatch(ts *datasets.TimeSeries, idx []int) (*Batch, error) {
	if ts == nil || len(idx) == 0 {
		return nil, fmt.Errorf("%w: a series batch needs series and at least one index", ErrInvalid)
	}
	if err := checkSeries(ts); err != nil {
		return nil, err
	}
	k, c := ts.Length, ts.Channels
	d := SeriesInputs(c)
	x := make([]float32, len(idx)*k*d)
	labels := make([]int32, len(idx))
	for i, j := range idx {
		if j < 0 || j >= ts.N {
			return nil, fmt.Errorf("%w: series index %d outside [0, %d)", ErrInvalid, j, ts.N)
		}
		if l := ts.Labels[j]; l < 0 || l >= len(ts.Classes) {
			return nil, fmt.Errorf("%w: series %d has label %d, want 0–%d", ErrInvalid, j, l, len(ts.Classes)-1)
		}
		labels[i] = int32(ts.Labels[j])
		for s := range k {
			row := x[(i*k+s)*d : (i*k+s+1)*d]
			for ch := range c {
				row[ch] = float32(ts.X[(j*k+s)*c+ch])
				if ts.ObservedAt(j, s, ch) {
					row[c+1+ch] = 1
				}
			}
			if k > 1 {
				row[c] = float32(s) / float32(k-1)
			}
		}
	}
	return &Batch{X: tensors.FromFlatDataAndDimensions(x, len(idx), k, d),
		Labels: tensors.FromFlatDataAndDimensions(labels, len(idx)), Size: len(idx)}, nil
}

// NewSeriesBatcher returns a batcher over series with the given batch size
// (reshuffled every epoch; its position checkpoints like NewImageBatcher's).
func NewSeriesBatcher(ts *datasets.TimeSeries, size int, seed uint64) (*Batcher, error) {
	if ts == nil || ts.N < 1 {
		return nil, fmt.Errorf("%w: no series to batch", ErrInvalid)
	}
	if err := checkSeries(ts); err != nil {
		return nil, err
	}
	return newBatcher(ts.N, size, seed, func(idx []int) *Batch {
		b, _ := SeriesBatch(ts, idx) // indices of a permutation of [0, N): always valid
		return b
	})
}

// SeriesEvalBatches cuts a whole set into consecutive batches of at most size ≥ 1.
func SeriesEvalBatches(ts *datasets.TimeSeries, size int) ([]*Batch, error) {
	if ts == nil || size < 1 {
		return nil, fmt.Errorf("%w: evaluation batches of size %d", ErrInvalid, size)
	}
	return batchesInOrder(ts.N, size, func(idx []int) (*Batch, error) { return SeriesBatch(ts, idx) })
}

// checkSeries checks that ts's fields agree, so batching cannot index out
// of bounds.
func checkSeries(ts *datasets.TimeSeries) error {
	m := uint64(ts.N) * uint64(ts.Length) * uint64(ts.Channels)
	switch {
	case ts.N < 1 || ts.Length < 1 || ts.Channels < 1:
		return fmt.Errorf("%w: %d series of %d steps and %d channels", ErrInvalid, ts.N, ts.Length, ts.Channels)
	case uint64(len(ts.X)) != m:
		return fmt.Errorf("%w: %d values for %d series of %d×%d", ErrInvalid, len(ts.X), ts.N, ts.Length, ts.Channels)
	case ts.Observed != nil && uint64(len(ts.Observed)) != m:
		return fmt.Errorf("%w: %d observation flags for %d values", ErrInvalid, len(ts.Observed), m)
	case len(ts.Labels) != ts.N:
		return fmt.Errorf("%w: %d labels for %d series", ErrInvalid, len(ts.Labels), ts.N)
	case len(ts.Classes) < 2:
		return fmt.Errorf("%w: %d classes (want ≥ 2)", ErrInvalid, len(ts.Classes))
	}
	return nil
}
