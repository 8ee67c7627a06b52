// Command odedemo solves the Van der Pol oscillator for a batch of initial
// states with odeint on the embedded default backend, and prints the solution
// at the output times with the solver's statistics.
//
//	go run ./cmd/odedemo -method dopri5 -rtol 1e-6 -atol 1e-8 -t1 10 -n 11
package main

import (
	"flag"
	"fmt"
	"os"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/odeint"
)

func main() {
	method := flag.String("method", "dopri5", "dopri5, bosh3, rk4, midpoint or euler")
	rtol := flag.Float64("rtol", 1e-6, "relative tolerance (adaptive methods)")
	atol := flag.Float64("atol", 1e-8, "absolute tolerance (adaptive methods)")
	step := flag.Float64("step", 0.01, "step size (fixed-grid methods)")
	mu := flag.Float64("mu", 1, "Van der Pol damping μ")
	t1 := flag.Float64("t1", 10, "end time")
	n := flag.Int("n", 11, "number of output times in [0, t1]")
	flag.Parse()
	if err := run(odeint.Method(*method), *rtol, *atol, *step, *mu, *t1, *n); err != nil {
		fmt.Fprintln(os.Stderr, "odedemo:", err)
		os.Exit(1)
	}
}

// vanDerPol is d²x/dt² = μ(1 − x²)·dx/dt − x as a first-order system on rows [x, v].
func vanDerPol(mu float64) odeint.Func {
	return func(_ *context.Context, _ *Node, y []*Node) []*Node {
		g := y[0].Graph()
		x := Reshape(Dot(y[0], Const(g, [][]float64{{1}, {0}})), -1, 1)
		v := Reshape(Dot(y[0], Const(g, [][]float64{{0}, {1}})), -1, 1)
		dv := Sub(Mul(MulScalar(OneMinus(Square(x)), mu), v), x)
		return []*Node{Concatenate([]*Node{v, dv}, 1)}
	}
}

func run(method odeint.Method, rtol, atol, step, mu, t1 float64, n int) error {
	if n < 2 {
		return fmt.Errorf("-n must be at least 2")
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	ts := make([]float64, n)
	for i := range ts {
		ts[i] = t1 * float64(i) / float64(n-1)
	}
	y0 := tensors.FromValue([][]float64{{2, 0}, {0.5, 0}, {-1, 1}})
	opts := &odeint.Options{Method: method, RTol: rtol, ATol: atol, Step: step}
	sol, err := odeint.Solve(b, nil, vanDerPol(mu), []*tensors.Tensor{y0}, ts, opts)
	if err != nil {
		return err
	}
	fmt.Printf("Van der Pol, μ=%g, %s on backend %q\n", mu, method, b.Name())
	fmt.Printf("%8s  %s\n", "t", "[x v] for each of 3 initial states")
	for i, t := range sol.Ts {
		fmt.Printf("%8.3f  %v\n", t, sol.Ys[i][0].Value())
	}
	s := sol.Stats
	fmt.Printf("NFE %d, accepted %d, rejected %d, wall %v (%v inside compiled executions)\n",
		s.NFE, s.Accepted, s.Rejected, s.Wall, s.ExecTime)
	return nil
}
