package main

import (
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// tabularProblems are the paper's FFJORD density-estimation problems: App.
// A.4's model and batch size.
var tabularProblems = map[string]struct {
	batch int
	model func() zoo.FFJORDConfig
}{
	"gas":       {batch: 1000, model: zoo.GasFFJORD},
	"miniboone": {batch: 128, model: zoo.MinibooneFFJORD},
}

// tabularData is a loaded tabular problem: training and test rows, and —
// for a stand-in — the exact test NLL of the density it was drawn from.
type tabularData struct {
	train, test *datasets.Matrix
	trueNLL     *float64 // nil for real data
}

// readSplit reads <name>.npy, or <name>.csv when there is no .npy, from dir.
func readSplit(dir, name string) (*datasets.Matrix, error) {
	path := filepath.Join(dir, name+".npy")
	if _, err := os.Stat(path); err == nil {
		return datasets.ReadNPYFile(path)
	}
	csv := filepath.Join(dir, name+".csv")
	if _, err := os.Stat(csv); err == nil {
		return datasets.ReadMatrixCSVFile(csv)
	}
	return nil, fmt.Errorf("%s: neither %s.npy nor %s.csv", dir, name, name)
}

// loadTabular reads train/val/test (.npy or .csv) from o.Data — the
// MAF/FFJORD-preprocessed files, used as they are — or, without it, writes a
// deterministic stand-in with the real shapes as .npy under o.Out, reads it
// back, standardises it with the training statistics and computes its
// exact test NLL in those coordinates. It says which ran.
func loadTabular(o options, finalRows int) (*tabularData, error) {
	spec := datasets.Tabular[o.Problem]
	dir := o.Data
	standIn := dir == ""
	var dens *datasets.StandInDensity
	if standIn {
		dir = filepath.Join(o.Out, fmt.Sprintf("standin-%s-seed%d", o.Problem, o.dataSeed()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var train, val, test *datasets.Matrix
		var err error
		if train, val, test, dens, err = datasets.TabularStandIn(spec, o.dataSeed()); err != nil {
			return nil, err
		}
		for name, m := range map[string]*datasets.Matrix{"train": train, "val": val, "test": test} {
			if err := writeOnce(filepath.Join(dir, name+".npy"), func(w io.Writer) error { return datasets.WriteNPY(w, m) }); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(os.Stderr, "bench: %s: the real data set is not available here; training on a deterministic stand-in "+
			"with its shapes (%d-D, %d train / %d test rows, seed %d) written to %s — NOT the paper's Table 2 data\n",
			o.Problem, spec.Dim, spec.Train, spec.Test, o.dataSeed(), dir)
	} else {
		fmt.Fprintf(os.Stderr, "bench: %s: reading train, val and test (.npy or .csv) from %s\n", o.Problem, dir)
	}
	d := &tabularData{}
	var err error
	if d.train, err = readSplit(dir, "train"); err != nil {
		return nil, err
	}
	val, err := readSplit(dir, "val")
	if err != nil {
		return nil, err
	}
	if d.test, err = readSplit(dir, "test"); err != nil {
		return nil, err
	}
	for _, m := range []*datasets.Matrix{d.train, val, d.test} {
		if m.Cols != spec.Dim {
			return nil, fmt.Errorf("%s: %s has %d columns; %s has %d dimensions", o.Problem, m.Name, m.Cols, o.Problem, spec.Dim)
		}
	}
	if !standIn {
		return d, nil
	}
	rows := d.test.Rows
	if finalRows > 0 && finalRows < rows {
		rows = finalRows
	}
	raw := 0.0
	for i := range rows {
		lp, err := dens.LogProb(d.test.X[i*spec.Dim : (i+1)*spec.Dim])
		if err != nil {
			return nil, err
		}
		raw -= lp / float64(rows)
	}
	logScale, err := d.train.Standardize(val, d.test)
	if err != nil {
		return nil, err
	}
	trueNLL := raw - logScale
	d.trueNLL = &trueNLL
	return d, nil
}

// newTabularProblem builds an FFJORD problem with its data.
func newTabularProblem(o options, b backends.Backend, ctx *context.Context) (*problem, error) {
	finalRows := o.FinalSize
	if finalRows <= 0 {
		finalRows = defaultTabularFinal
	}
	data, err := loadTabular(o, finalRows)
	if err != nil {
		return nil, err
	}
	train := data.train
	if o.TrainSize > 0 && o.TrainSize < train.Rows {
		cut := *train
		cut.Rows, cut.X = o.TrainSize, train.X[:o.TrainSize*train.Cols]
		train = &cut
	}
	cfg := tabularProblems[o.Problem].model()
	cfg.Seed = o.Seed
	if o.Width > 0 {
		for i := range cfg.Hidden {
			cfg.Hidden[i] = o.Width // a narrower field for short runs on a CPU
		}
	}
	cfg.Solver = solverFor(o, 1e-6) // the paper's tolerance unless -tol
	m, err := zoo.NewFFJORD(b, ctx, cfg)
	if err != nil {
		return nil, err
	}
	batches, err := zoo.NewRowBatcher(train, o.Batch, o.Seed)
	if err != nil {
		return nil, err
	}
	evalSet, err := zoo.RowEvalBatches(data.test, o.EvalSize, 1000)
	if err != nil {
		return nil, err
	}
	fullSet, err := zoo.RowEvalBatches(data.test, finalRows, 1000)
	if err != nil {
		return nil, err
	}
	about := fmt.Sprintf("%s from %s", o.Problem, o.Data)
	if o.Data == "" {
		about = fmt.Sprintf("STAND-IN for %s (a deterministic density with its shapes; not the paper's data: pass -data with its train/val/test .npy or .csv)", o.Problem)
	}
	p := &problem{data: about, model: m, next: func() (*zoo.Batch, error) { return batches.Next(), nil }, stream: batches,
		eval: meanEval(m, evalSet), final: meanEval(m, fullSet), trueNLL: data.trueNLL,
		extra: map[string]trainer.Stateful{"probes": m}}
	p.after = func(tag string) error {
		n := min(1000, data.test.Rows)
		samples, err := m.Sample(n, o.Seed+7)
		if err != nil {
			return err
		}
		return plotSamples(data.test, samples, n, o.Problem, filepath.Join(o.Out, tag+"-samples.png"))
	}
	return p, nil
}

// defaultTabularFinal is the number of test rows the final evaluation uses
// when -final-size is 0 (the exact-trace evaluation of all of Gas's 10,520
// rows takes tens of minutes on two cores).
const defaultTabularFinal = 2000

// plotSamples draws the first two coordinates of n test rows beside n model
// samples and saves a PNG.
func plotSamples(test *datasets.Matrix, samples *tensors.Tensor, n int, title, path string) error {
	s, err := tensors.CopyFlatData[float32](samples)
	if err != nil {
		return err
	}
	data, model := make(plotter.XYs, n), make(plotter.XYs, n)
	for i := range n {
		data[i].X, data[i].Y = test.X[i*test.Cols], test.X[i*test.Cols+1]
		model[i].X, model[i].Y = float64(s[i*test.Cols]), float64(s[i*test.Cols+1])
	}
	var panels []*plot.Plot
	for _, part := range []struct {
		name string
		pts  plotter.XYs
		c    color.Color
	}{{"test data", data, color.RGBA{B: 160, A: 255}}, {"model samples", model, color.RGBA{R: 180, A: 255}}} {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s (coordinates 0, 1)", title, part.name)
		p.X.Label.Text, p.Y.Label.Text = "x0", "x1"
		sc, err := plotter.NewScatter(part.pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Radius = vg.Points(1)
		sc.GlyphStyle.Color = part.c
		p.Add(sc)
		panels = append(panels, p)
	}
	// One axis range for both panels.
	for _, ax := range []func(*plot.Plot) *plot.Axis{func(p *plot.Plot) *plot.Axis { return &p.X }, func(p *plot.Plot) *plot.Axis { return &p.Y }} {
		lo, hi := math.Min(ax(panels[0]).Min, ax(panels[1]).Min), math.Max(ax(panels[0]).Max, ax(panels[1]).Max)
		for _, p := range panels {
			ax(p).Min, ax(p).Max = lo, hi
		}
	}
	return trainer.SaveSideBySide(panels, 12*vg.Inch, 5.5*vg.Inch, path)
}

// densityGrid is a model's density on a square grid (plotter.GridXYZ).
type densityGrid struct {
	n      int
	lo, hi float64
	z      []float64 // row-major, row = y index
}

// Dims implements plotter.GridXYZ: columns and rows.
func (g densityGrid) Dims() (c, r int) { return g.n, g.n }

// Z implements plotter.GridXYZ: the density at a cell.
func (g densityGrid) Z(c, r int) float64 { return g.z[r*g.n+c] }

// X implements plotter.GridXYZ: a column's centre.
func (g densityGrid) X(c int) float64 { return g.lo + (g.hi-g.lo)*(float64(c)+0.5)/float64(g.n) }

// Y implements plotter.GridXYZ: a row's centre.
func (g densityGrid) Y(r int) float64 { return g.X(r) }

// plotCircleDensity draws the Circle CNF's density exp(log p) beside the
// true density of the two circles on [−1.5, 1.5]², on one colour scale
// (viridis, perceptually uniform), each as an image (no cell seams).
func plotCircleDensity(m *zoo.CNF, path string) error {
	g := densityGrid{n: 120, lo: -1.5, hi: 1.5}
	pts := make([]float32, 0, 2*g.n*g.n)
	for r := range g.n {
		for c := range g.n {
			pts = append(pts, float32(g.X(c)), float32(g.Y(r)))
		}
	}
	model := make([]float64, 0, g.n*g.n)
	for lo := 0; lo < g.n*g.n; lo += 600 {
		n := min(600, g.n*g.n-lo)
		b := &zoo.Batch{X: tensors.FromFlatDataAndDimensions(pts[2*lo:2*(lo+n)], n, 2), Size: n}
		lp, err := m.LogDensity(b)
		if err != nil {
			return err
		}
		for _, v := range lp {
			model = append(model, math.Exp(v))
		}
	}
	truth := make([]float64, g.n*g.n)
	for r := range g.n {
		for c := range g.n {
			truth[r*g.n+c] = circlesDensity(g.X(c), g.Y(r))
		}
	}
	top := 0.0
	for i := range truth {
		top = math.Max(top, math.Max(truth[i], model[i]))
	}
	var panels []*plot.Plot
	for _, panel := range []struct {
		title string
		z     []float64
	}{{"true density (two circles, σ = 0.06)", truth}, {"model density", model}} {
		p := plot.New()
		p.Title.Text = "circle: " + panel.title
		p.X.Label.Text, p.Y.Label.Text = "x0", "x1"
		p.Add(plotter.NewImage(densityImage(g.n, panel.z, top), g.lo, g.lo, g.hi, g.hi))
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = g.lo, g.hi, g.lo, g.hi
		panels = append(panels, p)
	}
	return trainer.SaveSideBySide(panels, 12*vg.Inch, 6*vg.Inch, path)
}

// circlesDensity is the exact density of zoo.Circles at (x, y): half the
// mass on each of the circles of radius 1 and 0.5, each blurred by an
// isotropic Gaussian of σ = 0.06 — the average over the circle's angle of
// the Gaussian, by the trapezoid rule on 720 angles (exact to the float's
// precision for this periodic integrand).
func circlesDensity(x, y float64) float64 {
	const sigma, angles = 0.06, 720
	p := 0.0
	for _, r := range []float64{1, 0.5} {
		sum := 0.0
		for k := range angles {
			a := 2 * math.Pi * float64(k) / angles
			dx, dy := x-r*math.Cos(a), y-r*math.Sin(a)
			sum += math.Exp(-(dx*dx + dy*dy) / (2 * sigma * sigma))
		}
		p += 0.5 * sum / angles / (2 * math.Pi * sigma * sigma)
	}
	return p
}

// densityImage renders z (row-major, row 0 at the bottom) on [0, top] with
// viridis, as an image with row 0 at the bottom.
func densityImage(n int, z []float64, top float64) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for r := range n {
		for c := range n {
			v := 0.0
			if top > 0 && !math.IsNaN(z[r*n+c]) {
				v = math.Min(1, z[r*n+c]/top)
			}
			img.Set(c, n-1-r, viridis(v))
		}
	}
	return img
}

// viridis maps [0, 1] to matplotlib's viridis colormap (linear between nine
// of its colours).
func viridis(v float64) color.RGBA {
	anchors := [][3]float64{{68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142}, {33, 144, 141},
		{39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37}}
	v = math.Max(0, math.Min(1, v)) * float64(len(anchors)-1)
	i := min(int(v), len(anchors)-2)
	f := v - float64(i)
	var c [3]uint8
	for k := range 3 {
		c[k] = uint8(math.Round(anchors[i][k] + f*(anchors[i+1][k]-anchors[i][k])))
	}
	return color.RGBA{R: c[0], G: c[1], B: c[2], A: 255}
}
