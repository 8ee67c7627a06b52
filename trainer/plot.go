package trainer

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette colours the runs of one figure.
var palette = []color.RGBA{
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// Series selects what a plot shows.
type Series int

const (
	// TrainLoss is the training-batch loss (smoothed over a window).
	TrainLoss Series = iota
	// EvalMetric is the held-out metric at evaluation points.
	EvalMetric
	// T1 is the integration end time.
	T1
)

// PlotCurves draws one line per run — a series against wall-clock seconds
// (bySeconds) or iterations — and saves a PNG.
func PlotCurves(runs []*Result, series Series, bySeconds bool, title, yLabel, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Tick.Marker = exactTicks{}
	p.X.Tick.Marker = exactTicks{}
	p.X.Label.Text = "iteration"
	if bySeconds {
		p.X.Label.Text = "wall-clock seconds (training)"
	}
	var all plotter.XYs
	for i, r := range runs {
		var pts plotter.XYs
		window := max(1, len(r.Records)/100)
		sum, n := 0.0, 0
		for j, rec := range r.Records {
			x := float64(rec.Iter)
			if bySeconds {
				x = rec.Seconds
			}
			var y float64
			switch series {
			case TrainLoss:
				sum += rec.Loss
				n++
				if j >= window {
					sum -= r.Records[j-window].Loss
					n--
				}
				y = sum / float64(n)
			case EvalMetric:
				y = rec.EvalMet
			case T1:
				y = rec.T1
			}
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("trainer: plot: %w", err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(r.Label, line)
		all = append(all, pts...)
	}
	placeLegend(p, all, len(runs))
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("trainer: plot %s: %w", path, err)
	}
	return nil
}

// placeLegend puts the legend in the corner of the data area that the
// curves cross least: each corner box (the legend's size, estimated from the
// number of entries) is scored by the points inside it, and by the segments
// between consecutive points that cross it, on the axes' ranges.
func placeLegend(p *plot.Plot, pts plotter.XYs, entries int) {
	if len(pts) == 0 {
		return
	}
	xmin, xmax, ymin, ymax := plotter.XYRange(pts)
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	// The legend covers about 35 % of the width and 7 % of the height per entry.
	w, h := 0.35, math.Min(0.9, 0.07*float64(max(entries, 1))+0.03)
	type corner struct {
		top, left bool
		score     int
	}
	corners := []corner{{top: true}, {top: true, left: true}, {}, {left: true}}
	for i := range corners {
		c := &corners[i]
		x0, y0 := 1-w, 1-h
		if c.left {
			x0 = 0
		}
		if !c.top {
			y0 = 0
		}
		inside := func(x, y float64) bool {
			return x >= x0 && x <= x0+w && y >= y0 && y <= y0+h
		}
		for j, q := range pts {
			x, y := (q.X-xmin)/(xmax-xmin), (q.Y-ymin)/(ymax-ymin)
			if inside(x, y) {
				c.score++
			}
			if j > 0 { // the midpoint of a segment: lines crossing the box count too
				pq := pts[j-1]
				if inside(((pq.X+q.X)/2-xmin)/(xmax-xmin), ((pq.Y+q.Y)/2-ymin)/(ymax-ymin)) {
					c.score++
				}
			}
		}
	}
	best := corners[0]
	for _, c := range corners[1:] {
		if c.score < best.score {
			best = c
		}
	}
	p.Legend.Top, p.Legend.Left = best.top, best.left
}

// exactTicks places ticks where gonum's DefaultTicks does and labels each
// major tick with the fewest decimals that still read back as the value it
// marks (DefaultTicks may round a tick at 1.55 to "1.6").
type exactTicks struct{}

// Ticks implements plot.Ticker.
func (exactTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	scale := math.Max(math.Abs(min), math.Abs(max))
	format := byte('f')
	if scale != 0 && (scale < 1e-3 || scale >= 1e7) {
		format = 'g'
	}
	for prec := 0; prec <= 15; prec++ {
		exact := true
		for _, tk := range ticks {
			if tk.Label == "" {
				continue
			}
			s := strconv.FormatFloat(tk.Value, format, prec, 64)
			v, _ := strconv.ParseFloat(s, 64)
			exact = exact && math.Abs(v-tk.Value) <= 1e-9*math.Max(scale, 1e-300)
		}
		if exact {
			for i, tk := range ticks {
				if tk.Label != "" {
					ticks[i].Label = strconv.FormatFloat(tk.Value, format, prec, 64)
				}
			}
			break
		}
	}
	return ticks
}

// SaveSideBySide draws plots in one row, their data areas aligned, on a
// width × height canvas, and saves it as a PNG at path.
func SaveSideBySide(plots []*plot.Plot, width, height vg.Length, path string) error {
	return SaveGrid([][]*plot.Plot{plots}, width, height, path)
}

// SaveGrid draws rows of plots, aligned, on one PNG of the given size (a nil
// plot leaves its cell empty).
func SaveGrid(rows [][]*plot.Plot, width, height vg.Length, path string) error {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	grid := make([][]*plot.Plot, len(rows))
	for i, r := range rows {
		grid[i] = make([]*plot.Plot, cols)
		copy(grid[i], r)
	}
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4}
	canvases := plot.Align(grid, tiles, dc)
	for i, r := range grid {
		for j, p := range r {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trainer: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return errors.Join(fmt.Errorf("trainer: plot %s: %w", path, err), f.Close())
	}
	return f.Close()
}
