// Command ode-block puts an ODE block inside an ordinary GoMLX model: a
// stem and a head written with GoMLX graph code and snoptx's layers
// (snoptx.Segment runs them and their VJPs), and between them a Neural ODE
// dx/dt = F(t, x) trained through the adjoint (adjointx) — the
// continuous-depth classifier of the paper's image and time-series models,
// here on two interleaved spirals. Adam and SNOpt train the same model from
// the same initial weights on the same batches; SNOpt preconditions every
// layer, the stem's and head's with their K-FAC factors and the ODE field's
// with eq. (13)'s factors along the trajectory. It prints a table and
// writes the test accuracy against iterations and wall-clock as a PNG.
//
//	go run ./examples/ode-block
//	go run ./examples/ode-block -iters 600 -out out
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
)

// config is the command line.
type config struct {
	iters, batch, width, evalEvery int
	adamLR, snoptLR                float64
	seed                           uint64
	out                            string
}

func main() {
	c := config{}
	fs := flag.NewFlagSet("ode-block", flag.ContinueOnError)
	fs.IntVar(&c.iters, "iters", 300, "training iterations per optimizer")
	fs.IntVar(&c.batch, "batch", 128, "mini-batch size")
	fs.IntVar(&c.width, "width", 16, "width of the ODE state")
	fs.IntVar(&c.evalEvery, "eval-every", 10, "evaluate the test accuracy every N iterations")
	fs.Float64Var(&c.adamLR, "adam-lr", 0.01, "Adam's learning rate")
	fs.Float64Var(&c.snoptLR, "snopt-lr", 0.02, "SNOpt's learning rate (0.05: faster early, 0.1 and above: unstable here)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the data, the batches and the initial weights")
	fs.StringVar(&c.out, "out", "examples-out", "folder of the PNG")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ode-block:", err)
		os.Exit(1)
	}
}

// spirals draws n points of two interleaved spirals (label 0 or 1) with
// Gaussian noise: x float32 [n, 2], labels int32 [n].
func spirals(n int, rng *rand.Rand) (x []float32, labels []int32) {
	for i := range n {
		c := i % 2
		r := rng.Float64()
		a := 3*math.Pi*r + math.Pi*float64(c)
		x = append(x, float32(2*r*math.Cos(a)+0.08*rng.NormFloat64()), float32(2*r*math.Sin(a)+0.08*rng.NormFloat64()))
		labels = append(labels, int32(c))
	}
	return x, labels
}

// model is stem → ODE block → head, each part with its variables in its
// own scope of one context.
type model struct {
	stem, head *snoptx.Segment
	block      *adjointx.Block
	ctx        *context.Context
}

func newModel(b backends.Backend, ctx *context.Context, width int) (*model, error) {
	m := &model{ctx: ctx}
	var err error
	// An ordinary GoMLX stem: Dense(2 → width), tanh.
	if m.stem, err = snoptx.NewSegment(b, ctx.In("stem"), func(ctx *context.Context, in []*Node) []*Node {
		return []*Node{Tanh(snoptx.Dense(ctx, in[0], true, width))}
	}); err != nil {
		return nil, err
	}
	// The ODE block: F(t, x) = Linear(tanh(Linear([x, t]))), integrated over [0, 1].
	f := field.NewSequential(&field.Linear{Name: "f1", Out: width, ConcatTime: true}, field.NewTanh(),
		&field.Linear{Name: "f2", Out: width, ConcatTime: true})
	solver := &odeint.Options{Method: odeint.Dopri5, RTol: 1e-3, ATol: 1e-3}
	if m.block, err = adjointx.NewBlock(b, ctx.In("ode"), f, &adjointx.Options{Forward: solver}); err != nil {
		return nil, err
	}
	// An ordinary GoMLX head: Dense(width → 2), the batch-mean cross-entropy
	// (outputs[0], the loss) and the number of correct predictions.
	m.head, err = snoptx.NewSegment(b, ctx.In("head"), func(ctx *context.Context, in []*Node) []*Node {
		x, labels := in[0], in[1]
		logits := snoptx.Dense(ctx, x, true, 2)
		n := float64(logits.Shape().Dimensions[0])
		loss := DivScalar(Neg(ReduceAllSum(Mul(OneHot(labels, 2, logits.DType()), LogSoftmax(logits, -1)))), n)
		correct := ReduceAllSum(ConvertDType(Equal(ArgMax(logits, -1, labels.DType()), labels), dtypes.Float64))
		return []*Node{loss, correct}
	})
	return m, err
}

// step runs the forward pass, the head's VJP, the adjoint backward pass and
// the stem's VJP: the loss, every parameter's gradient and, with stats, the
// Kronecker factors of all three parts.
func (m *model) step(x, labels *tensors.Tensor, stats bool) (loss float64, grads map[string]*tensors.Tensor, factors []adjointx.LayerFactors, nfe int, err error) {
	h0, err := m.stem.Forward(x)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	tr, err := m.block.Forward([]*tensors.Tensor{h0[0]}, []float64{0, 1})
	if err != nil {
		return 0, nil, nil, 0, err
	}
	head, err := m.head.Backward([]*tensors.Tensor{tr.Final()[0], labels}, tensors.FromScalar(float32(1)), stats)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	var odeStats *adjointx.Stats
	if stats {
		odeStats = &adjointx.Stats{}
	}
	g, err := m.block.Backward(tr, [][]*tensors.Tensor{nil, {head.Input}}, &adjointx.BackwardOptions{Stats: odeStats})
	if err != nil {
		return 0, nil, nil, 0, err
	}
	stem, err := m.stem.Backward([]*tensors.Tensor{x}, g.X0[0], stats)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	grads = map[string]*tensors.Tensor{}
	for _, part := range []map[string]*tensors.Tensor{head.Params, g.Params, stem.Params} {
		maps.Copy(grads, part)
	}
	if stats {
		factors = slices.Concat(head.Stats, odeStats.Layers, stem.Stats)
	}
	return float64(head.Outputs[0].Value().(float32)), grads, factors, tr.Stats.NFE + g.Solve.NFE, nil
}

// accuracy is the share of correct predictions on a set.
func (m *model) accuracy(x, labels *tensors.Tensor) (float64, error) {
	h0, err := m.stem.Forward(x)
	if err != nil {
		return 0, err
	}
	tr, err := m.block.Forward([]*tensors.Tensor{h0[0]}, []float64{0, 1})
	if err != nil {
		return 0, err
	}
	out, err := m.head.Forward(tr.Final()[0], labels)
	if err != nil {
		return 0, err
	}
	return out[1].Value().(float64) / float64(labels.Shape().Dimensions[0]), nil
}

// outcome is one optimizer's run.
type outcome struct {
	name       string
	lr         float64
	secPerIter float64
	finalLoss  float64
	finalAcc   float64
	nfe        float64
	run        *trainer.Result
}

// train runs one optimizer from the seed's initial weights.
func train(b backends.Backend, c config, name string, trainX []float32, trainL []int32, testX []float32, testL []int32) (*outcome, error) {
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(int64(c.seed)); err != nil {
		return nil, err
	}
	m, err := newModel(b, ctx, c.width)
	if err != nil {
		return nil, err
	}
	var opt snoptx.Optimizer
	o := &outcome{name: name, run: &trainer.Result{Label: name}}
	switch name {
	case "adam":
		o.lr = c.adamLR
		opt, err = snoptx.Adam(c.adamLR, 0)
	case "snopt":
		o.lr = c.snoptLR
		opt, err = snoptx.SNOpt().LearningRate(c.snoptLR).RefreshEvery(25).Done()
	}
	if err != nil {
		return nil, err
	}
	n := len(trainL)
	batchOf := func(it int) (*tensors.Tensor, *tensors.Tensor) {
		xs, ls := make([]float32, 0, 2*c.batch), make([]int32, 0, c.batch)
		for k := range c.batch {
			i := (it*c.batch + k) % n
			xs, ls = append(xs, trainX[2*i], trainX[2*i+1]), append(ls, trainL[i])
		}
		return tensors.FromFlatDataAndDimensions(xs, c.batch, 2), tensors.FromFlatDataAndDimensions(ls, c.batch)
	}
	testXT := tensors.FromFlatDataAndDimensions(testX, len(testL), 2)
	testLT := tensors.FromFlatDataAndDimensions(testL, len(testL))
	var st *snoptx.Stepper
	var trained float64
	var nfe int
	for it := range c.iters {
		x, l := batchOf(it)
		start := time.Now()
		// SNOpt's refresh iterations (the first included) need the factors.
		stats := opt.NeedsStats(int64(it))
		loss, grads, factors, k, err := m.step(x, l, stats)
		if err != nil {
			return nil, err
		}
		if st == nil { // the parameters exist after the first forward pass
			var params []*context.Variable
			for v := range ctx.IterVariables() {
				if v.Trainable && grads[v.ScopeAndName()] != nil {
					params = append(params, v)
				}
			}
			if st, err = snoptx.NewStepper(b, ctx, opt, params); err != nil {
				return nil, err
			}
		}
		if err := st.Step(grads, factors, c.batch); err != nil {
			return nil, fmt.Errorf("%s iteration %d: %w", name, it+1, err)
		}
		trained += time.Since(start).Seconds()
		nfe += k
		rec := trainer.Record{Iter: it + 1, Seconds: trained, Loss: loss, EvalMet: math.NaN(), EvalLoss: math.NaN()}
		if (it+1)%c.evalEvery == 0 || it+1 == c.iters {
			if rec.EvalMet, err = m.accuracy(testXT, testLT); err != nil {
				return nil, err
			}
			o.finalAcc = rec.EvalMet
		}
		o.run.Records = append(o.run.Records, rec)
		o.finalLoss = loss
	}
	o.secPerIter, o.nfe = trained/float64(c.iters), float64(nfe)/float64(c.iters)
	o.run.Seconds, o.run.Iterations = trained, c.iters
	return o, nil
}

func run(c config, w io.Writer) ([]*outcome, error) {
	if c.iters < 1 || c.batch < 1 || c.width < 1 || c.evalEvery < 1 {
		return nil, fmt.Errorf("-iters, -batch, -width and -eval-every must be ≥ 1")
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.seed, 7))
	trainX, trainL := spirals(1024, rng)
	testX, testL := spirals(1024, rng)
	var outs []*outcome
	for _, name := range []string{"adam", "snopt"} {
		o, err := train(b, c, name, trainX, trainL, testX, testL)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	fmt.Fprintf(w, "Two spirals: stem (GoMLX, snoptx.Dense) → ODE block (adjointx, width %d) → head (GoMLX); %d iterations, batch %d\n\n",
		c.width, c.iters, c.batch)
	fmt.Fprintf(w, "| optimizer | lr | s/iter | NFE/iter | last train loss | test accuracy |\n|---|---|---|---|---|---|\n")
	for _, o := range outs {
		fmt.Fprintf(w, "| %s | %g | %.4f | %.0f | %.4f | %.4f |\n", o.name, o.lr, o.secPerIter, o.nfe, o.finalLoss, o.finalAcc)
	}
	target := outs[0].finalAcc
	for _, o := range outs {
		reached := "not reached"
		for _, r := range o.run.Records {
			if !math.IsNaN(r.EvalMet) && r.EvalMet >= target {
				reached = fmt.Sprintf("%.2f s (iteration %d)", r.Seconds, r.Iter)
				break
			}
		}
		fmt.Fprintf(w, "\n%s reaches Adam's final test accuracy %.4f at %s", o.name, target, reached)
	}
	fmt.Fprintln(w)
	runs := []*trainer.Result{outs[0].run, outs[1].run}
	for _, by := range []struct {
		seconds bool
		file    string
	}{{false, "ode-block-iters.png"}, {true, "ode-block-seconds.png"}} {
		path := filepath.Join(c.out, by.file)
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return nil, err
		}
		if err := trainer.PlotCurves(runs, trainer.EvalMetric, by.seconds, "ODE block in a GoMLX model: test accuracy", "test accuracy", path); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "Wrote %s\n", path)
	}
	return outs, nil
}
