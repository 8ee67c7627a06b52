package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/snopt-go/snopt/trainer"
)

// TestSummarizeT1: mean t1, first recovered iteration and the tail loss of a
// small log, against sums written out by hand.
func TestSummarizeT1(t *testing.T) {
	var recs []trainer.Record
	for i := 1; i <= 30; i++ {
		t1 := 0.025 * float64(i) // reaches 0.4 at iteration 16
		recs = append(recs, trainer.Record{Iter: i, T1: t1, Loss: float64(i)})
	}
	s := summarizeT1(recs)
	assert.InDelta(t, 0.025*31/2, s.meanT1, 1e-12) // mean of 0.025·i over 1..30
	assert.Equal(t, 16, s.firstRecovered)
	assert.InDelta(t, 20.5, s.lastLoss, 1e-12) // mean of 11..30
	never := summarizeT1(recs[:5])
	assert.Equal(t, 0, never.firstRecovered)
	assert.True(t, math.IsNaN(summarizeT1(nil).meanT1))
}

// TestRunTagsDistinct: every Table 3 configuration gets its own log and
// checkpoint name, and the plain run keeps the short one.
func TestRunTagsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, policy := range []string{"fixed", "baseline", "feedback"} {
		for _, t1 := range []float64{1, 0.05} {
			tag := runTag(options{Problem: "mnist", T1Policy: policy, T1: t1}, "adam")
			assert.False(t, seen[tag], "tag %s used twice", tag)
			seen[tag] = true
		}
	}
	assert.Equal(t, "mnist-adam", runTag(options{Problem: "mnist", T1Policy: "fixed", T1: 1}, "adam"))
}
