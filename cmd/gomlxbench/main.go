// Command gomlxbench trains ordinary GoMLX models on MNIST through GoMLX's
// own train.Trainer and train.Loop, once with GoMLX's Adam and once with
// SNOpt (snoptx.Dense/Conv2D layers, snoptx.Attach), in one run on the same
// data order, and reports per-iteration time (steps without and with a
// statistics refresh apart), the amortised refresh cost, the best periodic
// test accuracy and the training wall-clock each optimizer needed to reach
// Adam's best accuracy.
//
//	go run ./cmd/gomlxbench -model mlp -budget 3m
//	go run ./cmd/gomlxbench -model cnn -budget 3m
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
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
	"github.com/snopt-go/snopt/zoo"
)

type options struct {
	model      string
	budget     time.Duration
	batch      int
	evalEvery  int
	evalSize   int
	refresh    int
	seed       uint64
	adamLR     float64
	snoptLR    float64
	data       string
	out        string
	optimizers []string
	cpuProfile string
}

func main() {
	o, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gomlxbench:", err)
		os.Exit(2)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gomlxbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "gomlxbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("gomlxbench", flag.ContinueOnError)
	fs.StringVar(&o.model, "model", "mlp", "mlp (784-256-256-10) or cnn (conv 16 s2, conv 32 s2, dense 10)")
	fs.DurationVar(&o.budget, "budget", 3*time.Minute, "training wall-clock per optimizer (evaluation excluded)")
	fs.IntVar(&o.batch, "batch", 128, "mini-batch size")
	fs.IntVar(&o.evalEvery, "eval-every", 50, "evaluate test accuracy every N steps")
	fs.IntVar(&o.evalSize, "eval-size", 2000, "test images per evaluation")
	fs.IntVar(&o.refresh, "refresh", 100, "SNOpt: refresh the eigenbases every K steps")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the initial weights and the data order")
	fs.Float64Var(&o.adamLR, "adam-lr", 1e-3, "Adam's learning rate")
	fs.Float64Var(&o.snoptLR, "snopt-lr", 0.05, "SNOpt's learning rate")
	fs.StringVar(&o.data, "data", "", "MNIST idx folder (default: the GoMNIST module's)")
	fs.StringVar(&o.out, "out", "bench-out", "folder for the Markdown table")
	opts := fs.String("optimizers", "adam,snopt", "optimizers to run (adam, snopt)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the training here (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, n := range strings.Split(*opts, ",") {
		if n = strings.TrimSpace(n); n != "adam" && n != "snopt" {
			return o, fmt.Errorf("-optimizers %q: want adam and/or snopt", *opts)
		}
		o.optimizers = append(o.optimizers, strings.TrimSpace(n))
	}
	switch {
	case o.model != "mlp" && o.model != "cnn":
		return o, fmt.Errorf("-model %q: want mlp or cnn", o.model)
	case o.budget <= 0:
		return o, fmt.Errorf("-budget %v: want > 0", o.budget)
	case o.batch < 1, o.evalEvery < 1, o.evalSize < 1, o.refresh < 1:
		return o, fmt.Errorf("-batch, -eval-every, -eval-size and -refresh must be ≥ 1")
	case !(o.adamLR > 0) || math.IsInf(o.adamLR, 0) || !(o.snoptLR > 0) || math.IsInf(o.snoptLR, 0):
		return o, fmt.Errorf("-adam-lr and -snopt-lr must be finite and > 0")
	}
	return o, nil
}

// model builds the network with snoptx's preconditionable layers (GoMLX's
// layers.Dense variables; Adam trains exactly the same model).
func model(kind string) train.ModelFn {
	return func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		x := inputs[0] // [B, 28, 28, 1]
		b := x.Shape().Dimensions[0]
		if kind == "mlp" {
			h := activations.Relu(snoptx.Dense(ctx.In("l1"), Reshape(x, b, 28*28), true, 256))
			h = activations.Relu(snoptx.Dense(ctx.In("l2"), h, true, 256))
			return []*Node{snoptx.Dense(ctx.In("l3"), h, true, 10)}
		}
		h := activations.Relu(snoptx.Conv2D(ctx.In("c1"), x, 16, 3, 2, 1, true)) // 14×14
		h = activations.Relu(snoptx.Conv2D(ctx.In("c2"), h, 32, 3, 2, 1, true))  // 7×7
		h = ReduceMean(h, 1, 2)
		return []*Node{snoptx.Dense(ctx.In("fc"), h, true, 10)}
	}
}

// result is one optimizer's run.
type result struct {
	name                 string
	lr                   float64
	steps, refreshSteps  int
	plainSec, refreshSec float64 // summed step times
	accs                 []float64
	accSec               []float64 // training seconds at each evaluation
	best                 float64
}

func run(o options) error {
	b, err := backend.New()
	if err != nil {
		return err
	}
	dir := o.data
	if dir == "" {
		if dir, err = zoo.MNISTDir(); err != nil {
			return err
		}
	}
	train_, test, err := zoo.LoadMNIST(dir)
	if err != nil {
		return err
	}
	evalBatches, err := zoo.EvalBatches(test.Subset(o.evalSize), 500)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gomlxbench: %s on MNIST (%d training images, %d test images per evaluation), %v per optimizer\n",
		o.model, train_.N, min(o.evalSize, test.N), o.budget)
	var results []*result
	for _, name := range o.optimizers {
		r, err := runOne(b, o, name, train_, evalBatches)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, r)
	}
	report := table(o, results)
	fmt.Print(report)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.out, "gomlx-"+o.model+".md"), []byte(report), 0o644)
}

func runOne(b backends.Backend, o options, name string, trainSet *zoo.Images, evalBatches []*zoo.Batch) (*result, error) {
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(int64(o.seed)); err != nil {
		return nil, err
	}
	r := &result{name: name}
	var opt optimizers.Interface
	var snopt snoptx.Optimizer
	switch name {
	case "adam":
		r.lr = o.adamLR
		opt = optimizers.Adam().LearningRate(o.adamLR).Done()
	case "snopt":
		r.lr = o.snoptLR
		var err error
		if snopt, err = snoptx.SNOpt().LearningRate(o.snoptLR).RefreshEvery(o.refresh).Done(); err != nil {
			return nil, err
		}
		opt = snopt
	}
	tr := train.NewTrainer(b, ctx, model(o.model), losses.SparseCategoricalCrossEntropyLogits, opt, nil, nil)
	loop := train.NewLoop(tr)
	if snopt != nil {
		if err := snoptx.Attach(loop, snopt); err != nil {
			return nil, err
		}
	}
	batches, err := zoo.NewImageBatcher(trainSet, o.batch, o.seed)
	if err != nil {
		return nil, err
	}
	ds := batches.Dataset("mnist") // the same batches, in the same order, for both optimizers
	eval := evaluator(b, ctx, o.model, evalBatches)
	trained := 0.0
	for trained < o.budget.Seconds() {
		refresh := snopt != nil && snopt.NeedsStats(optimizers.GetGlobalStep(ctx))
		start := time.Now()
		if _, err := loop.RunSteps(ds, 1); err != nil {
			return nil, err
		}
		sec := time.Since(start).Seconds()
		trained += sec
		r.steps++
		if refresh {
			r.refreshSteps++
			r.refreshSec += sec
		} else {
			r.plainSec += sec
		}
		if r.steps%o.evalEvery == 0 || trained >= o.budget.Seconds() {
			acc, err := eval()
			if err != nil {
				return nil, err
			}
			r.accs, r.accSec = append(r.accs, acc), append(r.accSec, trained)
			r.best = math.Max(r.best, acc)
			fmt.Fprintf(os.Stderr, "gomlxbench: %s step %d, %.1fs: test accuracy %.4f\n", name, r.steps, trained, acc)
		}
	}
	return r, nil
}

// evaluator compiles the model's logits and returns the test accuracy.
func evaluator(b backends.Backend, ctx *context.Context, kind string, batches []*zoo.Batch) func() (float64, error) {
	var exec *context.Exec
	return func() (float64, error) {
		if exec == nil {
			var err error
			exec, err = context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, x *Node) *Node {
				return ArgMax(model(kind)(ctx, nil, []*Node{x})[0], -1, dtypes.Int32)
			})
			if err != nil {
				return 0, err
			}
		}
		correct, n := 0, 0
		for _, batch := range batches {
			out, err := exec.Exec(batch.X)
			if err != nil {
				return 0, err
			}
			pred := tensors.MustCopyFlatData[int32](out[0])
			labels := tensors.MustCopyFlatData[int32](batch.Labels)
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

// timeTo is the training time of the first evaluation at or above target.
func timeTo(r *result, target float64) float64 {
	for i, a := range r.accs {
		if a >= target {
			return r.accSec[i]
		}
	}
	return math.NaN()
}

func table(o options, rs []*result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n## GoMLX %s on MNIST through train.Trainer — %v per optimizer, batch %d, SNOpt refresh every %d\n\n",
		o.model, o.budget, o.batch, o.refresh)
	var adam *result
	for _, r := range rs {
		if r.name == "adam" {
			adam = r
		}
	}
	fmt.Fprintf(&sb, "| optimizer | lr | steps | s/step (no refresh) | ×Adam | s/step (refresh) | refresh cost, amortised | best test acc | s to Adam's best | ×Adam |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		plain := r.plainSec / float64(max(r.steps-r.refreshSteps, 1))
		ratio, refresh, amort, tAdam, tRatio := "–", "–", "–", "–", "–"
		if adam != nil {
			adamPlain := adam.plainSec / float64(max(adam.steps-adam.refreshSteps, 1))
			ratio = fmt.Sprintf("%.2f", plain/adamPlain)
			if t := timeTo(r, adam.best); !math.IsNaN(t) {
				tAdam = fmt.Sprintf("%.1f", t)
				tRatio = fmt.Sprintf("%.2f", t/timeTo(adam, adam.best))
			} else {
				tAdam = "not reached"
			}
		}
		if r.refreshSteps > 0 {
			refresh = fmt.Sprintf("%.3f", r.refreshSec/float64(r.refreshSteps))
			extra := r.refreshSec - float64(r.refreshSteps)*plain
			amort = fmt.Sprintf("%.1f%%", 100*extra/(plain*float64(r.steps)))
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %.4f | %s | %s | %s | %.4f | %s | %s |\n", r.name, strconv.FormatFloat(r.lr, 'g', -1, 64),
			r.steps, plain, ratio, refresh, amort, r.best, tAdam, tRatio)
	}
	return sb.String()
}
