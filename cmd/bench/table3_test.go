package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	s := summarizeT1(recs, 0.4)
	assert.InDelta(t, 0.025*31/2, s.meanT1, 1e-12) // mean of 0.025·i over 1..30
	assert.Equal(t, 16, s.firstRecovered)
	assert.Equal(t, 4, summarizeT1(recs, 0.1).firstRecovered)
	assert.InDelta(t, 20.5, s.lastLoss, 1e-12) // mean of 11..30
	never := summarizeT1(recs[:5], 0.4)
	assert.Equal(t, 0, never.firstRecovered)
	assert.True(t, math.IsNaN(summarizeT1(nil, 0.4).meanT1))
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

// TestTimeToTarget: Adam's last periodic accuracy is the target; each
// optimizer's time is the first evaluation at or above it, as a ratio to
// Adam's own first time there.
func TestTimeToTarget(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, rows ...string) string {
		path := filepath.Join(dir, name+".csv")
		body := "iter,seconds,step_seconds,loss,metric,nfe_forward,nfe_backward,stats,eval_loss,eval_metric,t1,dldt1\n" +
			strings.Join(rows, "\n") + "\n"
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
		return path
	}
	// Adam: 0.5 at 10 s, 0.8 at 20 s, 0.7 at 30 s (last) → target 0.7, first reached at 20 s.
	adam := write("adam", "1,10,10,1,0,1,1,false,1,0.5,1,", "2,20,10,1,0,1,1,false,1,0.8,1,", "3,30,10,1,0,1,1,false,1,0.7,1,")
	// SNOpt reaches exactly 0.7 at 5 s (at or above counts); SGD never does.
	snopt := write("snopt", "1,5,5,1,0,1,1,false,1,0.7,1,")
	sgd := write("sgd", "1,40,40,1,0,1,1,false,1,0.6,1,")
	out := timeToTarget([]*workerResult{
		{Optimizer: "adam", MetricName: "accuracy", CSV: adam},
		{Optimizer: "snopt", MetricName: "accuracy", CSV: snopt},
		{Optimizer: "sgd", MetricName: "accuracy", CSV: sgd},
	})
	assert.Contains(t, out, "(0.7000)")
	assert.Contains(t, out, "| adam | 20.0 | 1.00 |")
	assert.Contains(t, out, "| snopt | 5.0 | 0.25 |")
	assert.Contains(t, out, "| sgd | not reached | – |")
	assert.Empty(t, timeToTarget([]*workerResult{{Optimizer: "snopt", CSV: snopt}}), "no Adam run, no table")
}
