package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTableFigures: per-step time without refreshes, the refresh cost
// amortised over all steps, and the time to Adam's best accuracy, against
// figures worked out by hand.
func TestTableFigures(t *testing.T) {
	adam := &result{name: "adam", lr: 1e-3, steps: 10, plainSec: 10, accs: []float64{0.5, 0.8, 0.7}, accSec: []float64{3, 6, 10}, best: 0.8}
	// SNOpt: 8 plain steps in 9.6 s (1.2 s), 2 refresh steps in 6 s: extra 6 − 2·1.2 = 3.6 s over 10·1.2 = 12 s → 30 %.
	snopt := &result{name: "snopt", lr: 0.01, steps: 10, refreshSteps: 2, plainSec: 9.6, refreshSec: 6,
		accs: []float64{0.6, 0.85}, accSec: []float64{2, 4}, best: 0.85}
	out := table(options{model: "mlp", batch: 128, refresh: 5}, []*result{adam, snopt})
	assert.Contains(t, out, "| adam | 0.001 | 10 | 1.0000 | 1.00 | – | – | 0.8000 | 6.0 | 1.00 |")
	assert.Contains(t, out, "| snopt | 0.01 | 10 | 1.2000 | 1.20 | 3.000 | 30.0% | 0.8500 | 4.0 | 0.67 |")
	never := &result{name: "snopt", steps: 1, plainSec: 1, accs: []float64{0.1}, accSec: []float64{1}, best: 0.1}
	assert.Contains(t, table(options{}, []*result{adam, never}), "not reached")
}

// TestFlagsAreValidated: bad values name their flag.
func TestFlagsAreValidated(t *testing.T) {
	for args, want := range map[string][]string{
		"-model":      {"-model", "rnn"},
		"-optimizers": {"-optimizers", "adam,lbfgs"},
		"-budget":     {"-budget", "0s"},
		"-snopt-lr":   {"-snopt-lr", "NaN"},
		"-refresh":    {"-refresh", "0"},
	} {
		_, err := parse(want)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), args)
	}
	o, err := parse([]string{"-model", "cnn", "-optimizers", "snopt"})
	require.NoError(t, err)
	assert.Equal(t, []string{"snopt"}, o.optimizers)
}
