// Command odeint-vanderpol solves the Van der Pol oscillator
//
//	x″ − μ(1 − x²)x′ + x = 0,  as  y = (x, v):  x′ = v,  v′ = μ(1 − x²)v − x,
//
// with μ = 10 (stiff-ish: slow arcs broken by fast jumps) using odeint alone:
// dopri5 with adaptive steps at rtol = atol = 1e-6, output at 400 times taken
// from the steps' dense output (the interpolant; steps are not shortened to
// hit them), for a batch of three initial states at once. It prints the
// solver's work, a table of x(t) beside a reference solve at 1e-11, and
// writes the trajectories and the phase portrait as a PNG.
//
//	go run ./examples/odeint-vanderpol
//	go run ./examples/odeint-vanderpol -mu 30 -t1 60 -out out
package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/trainer"
)

// config is the command line.
type config struct {
	mu, t1, tol float64
	outputs     int
	out         string
}

func main() {
	c := config{}
	fs := flag.NewFlagSet("odeint-vanderpol", flag.ContinueOnError)
	fs.Float64Var(&c.mu, "mu", 10, "stiffness μ")
	fs.Float64Var(&c.t1, "t1", 30, "end time")
	fs.Float64Var(&c.tol, "tol", 1e-6, "rtol = atol of the solve")
	fs.IntVar(&c.outputs, "outputs", 2000, "output times (dense output)")
	fs.StringVar(&c.out, "out", "examples-out", "folder of the PNG")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "odeint-vanderpol:", err)
		os.Exit(1)
	}
}

// result is what run reports: the largest difference from the reference and
// the solver's work.
type result struct {
	maxErr float64
	stats  odeint.Stats
	png    string
}

func run(c config, w io.Writer) (*result, error) {
	if !(c.mu > 0) || !(c.t1 > 0) || !(c.tol > 0) || c.outputs < 2 {
		return nil, fmt.Errorf("want μ, t1, tol > 0 and at least 2 outputs")
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	// The vector field: graph code on the batch [3, 2] of states.
	mu := c.mu
	f := func(_ *context.Context, _ *Node, y []*Node) []*Node {
		x := Slice(y[0], AxisRange(), AxisRange(0, 1))
		v := Slice(y[0], AxisRange(), AxisRange(1, 2))
		dv := Sub(Mul(MulScalar(OneMinus(Square(x)), mu), v), x)
		return []*Node{Concatenate([]*Node{v, dv}, 1)}
	}
	y0 := tensors.FromValue([][]float64{{2, 0}, {0.5, 0}, {-1, 3}})
	ts := make([]float64, c.outputs)
	for i := range ts {
		ts[i] = c.t1 * float64(i) / float64(c.outputs-1)
	}
	sol, err := odeint.Solve(b, nil, f, []*tensors.Tensor{y0}, ts, &odeint.Options{RTol: c.tol, ATol: c.tol})
	if err != nil {
		return nil, err
	}
	ref, err := odeint.Solve(b, nil, f, []*tensors.Tensor{y0}, ts, &odeint.Options{RTol: 1e-11, ATol: 1e-11})
	if err != nil {
		return nil, err
	}
	at := func(s *odeint.Solution, i, k int) float64 { return s.Ys[i][0].Value().([][]float64)[k][0] }
	fmt.Fprintf(w, "Van der Pol, μ = %g, t ∈ [0, %g], 3 initial states in one batch, dopri5 at rtol = atol = %g\n\n", c.mu, c.t1, c.tol)
	fmt.Fprintf(w, "| solve | evaluations of F | accepted steps | rejected steps |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| tol %g | %d | %d | %d |\n| reference, tol 1e-11 | %d | %d | %d |\n\n", c.tol,
		sol.Stats.NFE, sol.Stats.Accepted, sol.Stats.Rejected, ref.Stats.NFE, ref.Stats.Accepted, ref.Stats.Rejected)
	fmt.Fprintf(w, "| t | x (state 1) | reference | x (state 3) | reference |\n|---|---|---|---|---|\n")
	res := &result{stats: sol.Stats}
	for i := range ts {
		for k := range 3 {
			res.maxErr = math.Max(res.maxErr, math.Abs(at(sol, i, k)-at(ref, i, k)))
		}
		if i%(c.outputs/8) == 0 || i == len(ts)-1 {
			fmt.Fprintf(w, "| %.2f | %.6f | %.6f | %.6f | %.6f |\n", ts[i], at(sol, i, 0), at(ref, i, 0), at(sol, i, 2), at(ref, i, 2))
		}
	}
	fmt.Fprintf(w, "\nLargest |x − reference| over the %d output times and 3 states: %.2e\n", c.outputs, res.maxErr)
	res.png = filepath.Join(c.out, "vanderpol.png")
	if err := plotSolution(sol, ts, res.png); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "Wrote %s\n", res.png)
	return res, nil
}

// plotSolution draws x(t) of each state and the phase portrait side by side.
func plotSolution(sol *odeint.Solution, ts []float64, path string) error {
	colors := []color.Color{color.RGBA{68, 1, 84, 255}, color.RGBA{33, 145, 140, 255}, color.RGBA{220, 150, 0, 255}}
	left, right := plot.New(), plot.New()
	left.Title.Text, left.X.Label.Text, left.Y.Label.Text = "x(t)", "t", "x"
	right.Title.Text, right.X.Label.Text, right.Y.Label.Text = "phase portrait", "x", "x′"
	for k := range 3 {
		xt, phase := make(plotter.XYs, len(ts)), make(plotter.XYs, len(ts))
		for i := range ts {
			y := sol.Ys[i][0].Value().([][]float64)[k]
			xt[i], phase[i] = plotter.XY{X: ts[i], Y: y[0]}, plotter.XY{X: y[0], Y: y[1]}
		}
		for _, p := range []struct {
			plt *plot.Plot
			xy  plotter.XYs
		}{{left, xt}, {right, phase}} {
			l, err := plotter.NewLine(p.xy)
			if err != nil {
				return err
			}
			l.Color = colors[k]
			l.Width = vg.Points(1.2)
			p.plt.Add(l)
			if p.plt == right {
				right.Legend.Add(fmt.Sprintf("state %d", k+1), l)
			}
		}
	}
	// Bottom right of the phase portrait: empty, off the data.
	right.Legend.Top, right.Legend.Left = false, false
	right.Legend.XOffs, right.Legend.YOffs = -vg.Millimeter*3, vg.Millimeter*3
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return trainer.SaveSideBySide([]*plot.Plot{left, right}, 12*vg.Inch, 4.5*vg.Inch, path)
}
