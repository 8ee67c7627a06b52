package trainer

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// TestTickLabelsReadAsTheirValues: every labelled tick's text parses back
// to the value it marks, on ranges where gonum's default labels round
// (an NLL axis around 1.55) and on ordinary ones.
func TestTickLabelsReadAsTheirValues(t *testing.T) {
	for _, r := range [][2]float64{{1.5, 1.56}, {1.549, 1.6}, {1.53, 1.57}, {0, 1}, {0.9, 0.98}, {0, 12000}, {2e-6, 9e-6}, {-3.2, -3.1}} {
		ticks := exactTicks{}.Ticks(r[0], r[1])
		labelled := 0
		for _, tk := range ticks {
			if tk.Label == "" {
				continue
			}
			labelled++
			v, err := strconv.ParseFloat(tk.Label, 64)
			require.NoError(t, err)
			assert.InDelta(t, tk.Value, v, 1e-9*math.Max(math.Abs(r[0]), math.Abs(r[1])), "range %v tick %q at %g", r, tk.Label, tk.Value)
		}
		assert.GreaterOrEqual(t, labelled, 2, "range %v", r)
	}
	// The same positions as gonum's.
	def := plot.DefaultTicks{}.Ticks(1.5, 1.56)
	got := exactTicks{}.Ticks(1.5, 1.56)
	require.Len(t, got, len(def))
	for i := range def {
		assert.Equal(t, def[i].Value, got[i].Value)
	}
}

// TestLegendGoesWhereTheCurvesAreNot: a saturating rising curve leaves the
// bottom right free, a decaying one the top right; the legend goes there.
func TestLegendGoesWhereTheCurvesAreNot(t *testing.T) {
	curve := func(f func(x float64) float64) plotter.XYs {
		var pts plotter.XYs
		for i := range 101 {
			x := float64(i) / 10
			pts = append(pts, plotter.XY{X: x, Y: f(x)})
		}
		return pts
	}
	p := plot.New()
	placeLegend(p, curve(func(x float64) float64 { return 1 - math.Exp(-x) }), 3)
	assert.False(t, p.Legend.Top, "rising: bottom")
	assert.False(t, p.Legend.Left, "rising: right")
	p = plot.New()
	placeLegend(p, curve(func(x float64) float64 { return math.Exp(-x) }), 3)
	assert.True(t, p.Legend.Top, "decaying: top")
	assert.False(t, p.Legend.Left, "decaying: right")
	p = plot.New()
	placeLegend(p, curve(func(x float64) float64 { return math.Exp(x / 3) }), 2)
	assert.True(t, p.Legend.Top, "growing: top")
	assert.True(t, p.Legend.Left, "growing: left")
}
