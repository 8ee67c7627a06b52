package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/freehorizon"
	"github.com/snopt-go/snopt/internal/hostval"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// workerResult is what one optimizer's run reports to the orchestrator.
type workerResult struct {
	Optimizer   string  `json:"optimizer"`
	T1Policy    string  `json:"t1_policy"`
	T1Start     float64 `json:"t1_start"`
	T1Final     float64 `json:"t1_final"`
	LR          float64 `json:"lr"`
	Iterations  int     `json:"iterations"`
	Seconds     float64 `json:"seconds"`
	SecPerIter  float64 `json:"sec_per_iter"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	FinalLoss   float64 `json:"final_loss"`
	FinalMetric float64 `json:"final_metric"`
	MetricName  string  `json:"metric_name"`
	CSV         string  `json:"csv"`
	NFEForward  float64 `json:"nfe_forward"`
	NFEBackward float64 `json:"nfe_backward"`
	// DivergedAt is the iteration (numbered as in the CSV) whose loss or
	// gradient was not finite; 0 when the run finished.
	DivergedAt int    `json:"diverged_at,omitempty"`
	Divergence string `json:"divergence,omitempty"`
	// TrueNLL is the exact NLL of a stand-in density on the final test rows.
	TrueNLL *float64 `json:"true_nll,omitempty"`
	// Seed is the run's -seed.
	Seed uint64 `json:"seed"`
	// Backend says what computed the run, e.g. "SimpleGo (go), engine avx512".
	Backend string `json:"backend,omitempty"`
	// Data says which data set and split ran (stand-in or real files).
	Data string `json:"data,omitempty"`
	// Stopped is set when a signal ended the run early: Iterations are
	// those done, a checkpoint holds them, and there is no final evaluation.
	Stopped bool `json:"stopped,omitempty"`
}

// defaultLR per problem and optimizer (overridable with -lr; see -sweep).
// MNIST's are the best of our sweep (docs/benchmarks.md); the others are
// the official implementation's run scripts' (scripts/run_*.sh of
// github.com/ghliu/snopt), on the time-series problems the ODE field's (the
// GRU and head train with Adam at restLR).
var defaultLR = map[string]map[string]float64{
	"mnist":     {"adam": 3e-3, "sgd": 0.01, "snopt": 0.01},
	"fashion":   {"adam": 3e-3, "sgd": 0.01, "snopt": 0.01}, // MNIST's
	"cifar10":   {"adam": 1e-3, "sgd": 0.01, "snopt": 0.01},
	"svhn":      {"adam": 5e-4, "sgd": 0.02, "snopt": 0.01},
	"circle":    {"adam": 3e-2, "sgd": 3e-2, "snopt": 1e-2}, // ours: not in the scripts
	"spoad":     {"adam": 3e-3, "sgd": 1e-2, "snopt": 5e-3},
	"uea":       {"adam": 3e-3, "sgd": 1e-2, "snopt": 5e-3}, // SpoAD's
	"artwr":     {"adam": 1e-3, "sgd": 3e-3, "snopt": 3e-3},
	"chart":     {"adam": 1e-3, "sgd": 1e-3, "snopt": 3e-3},
	"gas":       {"adam": 2e-3, "sgd": 1e-2, "snopt": 1e-2},
	"miniboone": {"adam": 3e-3, "sgd": 1e-2, "snopt": 5e-3},
}

// defaultDamping is SNOpt's Tikhonov damping ε per problem where the
// official run scripts change it from snoptx.DefaultDamping.
var defaultDamping = map[string]float64{"cifar10": 0.03, "artwr": 0.1, "miniboone": 0.1}

// damping is SNOpt's ε: -damping, else the problem's.
func (o options) damping() float64 {
	if o.Damping > 0 {
		return o.Damping
	}
	if d, ok := defaultDamping[o.Problem]; ok {
		return d
	}
	return snoptx.DefaultDamping
}

func newOptimizer(name string, lr, wd, damping float64, refresh int) (snoptx.Optimizer, error) {
	switch name {
	case "adam":
		return snoptx.Adam(lr, wd)
	case "sgd":
		return snoptx.SGD().LearningRate(lr).WeightDecay(wd).Done()
	case "snopt":
		return snoptx.SNOpt().LearningRate(lr).WeightDecay(wd).Damping(damping).RefreshEvery(refresh).Done()
	}
	return nil, fmt.Errorf("unknown optimizer %q (want adam, sgd or snopt)", name)
}

// problem is a model with its data.
type problem struct {
	// updater builds what applies the optimizer (nil: one Stepper over every parameter).
	updater func(opt snoptx.Optimizer) (trainer.Updater, error)
	model   zoo.Model
	next    func() (*zoo.Batch, error)
	stream  trainer.Stateful  // the training stream's position, checkpointed
	eval    trainer.Evaluator // periodic (subset)
	final   trainer.Evaluator // the whole test set
	// extra state checkpointed besides the stream (e.g. a model's probes).
	extra map[string]trainer.Stateful
	// trueNLL is the exact test NLL of a stand-in density (nil: none).
	trueNLL *float64
	// after, when set, runs once training ends (e.g. plots samples); tag
	// names the run's files.
	after func(tag string) error
	// data says which data and split ran ("" for the problems that need
	// no note).
	data string
}

func newProblem(o options, b backends.Backend, ctx *context.Context) (*problem, error) {
	switch o.Problem {
	case "mnist", "fashion", "cifar10", "svhn":
		train, test, about, err := loadImages(o)
		if err != nil {
			return nil, err
		}
		train = train.Subset(o.TrainSize)
		m, err := zoo.NewClassifier(b, ctx, zoo.ClassifierConfig{Width: o.Width, T1: o.T1, Classes: train.Classes,
			Solver: solverFor(o, 1e-3), StatsBatch: o.StatsBatch})
		if err != nil {
			return nil, err
		}
		batches, err := zoo.NewImageBatcher(train, o.Batch, o.Seed)
		if err != nil {
			return nil, err
		}
		// Evaluation runs in batches of the training batch's size: larger
		// ones would set the run's peak memory (at width 64 the second stem
		// convolution's patches of 500 images take 346 MB).
		evalSet, err := zoo.EvalBatches(test.Subset(o.EvalSize), o.Batch)
		if err != nil {
			return nil, err
		}
		fullSet, err := zoo.EvalBatches(test.Subset(o.FinalSize), o.Batch) // FinalSize 0: the whole test set
		if err != nil {
			return nil, err
		}
		return &problem{model: m, next: func() (*zoo.Batch, error) { return batches.Next(), nil }, stream: batches,
			eval: meanEval(m, evalSet), final: meanEval(m, fullSet), data: about}, nil
	case "circle":
		tol := o.Tol
		opts := &odeint.Options{Method: odeint.Dopri5, RTol: 1e-6, ATol: 1e-8}
		if tol > 0 {
			opts.RTol, opts.ATol = tol, tol
		}
		m, err := zoo.NewCNF(b, ctx, zoo.CNFConfig{Solver: opts})
		if err != nil {
			return nil, err
		}
		data := zoo.NewCircles(o.Seed)
		evalBatch, err := zoo.NewCircles(o.Seed + 1000).Batch(o.EvalSize)
		if err != nil {
			return nil, err
		}
		finalSize := o.FinalSize
		if finalSize <= 0 {
			finalSize = 2000
		}
		finalBatch, err := zoo.NewCircles(o.Seed + 2000).Batch(finalSize)
		if err != nil {
			return nil, err
		}
		return &problem{model: m, next: func() (*zoo.Batch, error) { return data.Batch(o.Batch) }, stream: data,
			eval: meanEval(m, []*zoo.Batch{evalBatch}), final: meanEval(m, []*zoo.Batch{finalBatch}),
			after: func(tag string) error { return plotCircleDensity(m, filepath.Join(o.Out, tag+"-density.png")) }}, nil
	}
	if _, ok := seriesProblems[o.Problem]; ok {
		return newSeriesProblem(o, b, ctx)
	}
	if _, ok := tabularProblems[o.Problem]; ok {
		return newTabularProblem(o, b, ctx)
	}
	return nil, fmt.Errorf("unknown problem %q", o.Problem)
}

// loadImages reads the image problem's training and test sets: MNIST from
// -data or the GoMNIST module; Fashion-MNIST from -data or Debian's
// dataset-fashion-mnist; CIFAR-10 (binary version) and SVHN (cropped digits)
// from -data, or without it their deterministic stand-ins
// (datasets.ImageStandIn), standardised per channel with the training
// statistics. about says which data ran ("" for MNIST and Fashion-MNIST).
func loadImages(o options) (train, test *datasets.Images, about string, err error) {
	dir := o.Data
	switch o.Problem {
	case "mnist":
		if dir == "" {
			if dir, err = zoo.MNISTDir(); err != nil {
				return nil, nil, "", err
			}
		}
		train, test, err = zoo.LoadMNIST(dir)
		return train, test, "", err
	case "fashion":
		if dir == "" {
			dir = zoo.FashionMNISTDebianDir
		}
		if train, test, err = zoo.LoadFashionMNIST(dir); err != nil {
			return nil, nil, "", fmt.Errorf("fashion: %w (install Debian's dataset-fashion-mnist, which puts the idx files in %s, or pass -data DIR)",
				err, zoo.FashionMNISTDebianDir)
		}
		return train, test, "", nil
	case "cifar10", "svhn":
		if dir == "" {
			spec := datasets.ImageSets[o.Problem]
			// Only the images the run uses are generated: the first
			// -train-size, and the larger of the evaluation sizes.
			nTest := max(o.EvalSize, o.FinalSize)
			if o.FinalSize == 0 {
				nTest = 0 // the final evaluation uses the whole test set
			}
			if train, test, err = datasets.ImageStandIn(spec, o.dataSeed(), o.TrainSize, nTest); err != nil {
				return nil, nil, "", err
			}
			about = fmt.Sprintf("STAND-IN for %s (deterministic synthetic images of its shapes, data seed %d; "+
				"not the paper's data: pass -data with %s for the real set)", spec.Name, o.dataSeed(), needsData[o.Problem])
		} else if o.Problem == "cifar10" {
			train, test, err = datasets.LoadCIFAR10(dir)
		} else {
			train, test, err = datasets.LoadSVHN(dir)
		}
	}
	if err != nil {
		return nil, nil, "", err
	}
	if about == "" {
		about = fmt.Sprintf("%s from %s", o.Problem, dir)
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %d training and %d test images: %s\n", o.Problem, train.N, test.N, about)
	if _, _, err := train.StandardizeChannels(test); err != nil {
		return nil, nil, "", err
	}
	return train, test, about, nil
}

// solverFor is dopri5 at -tol, or at def when -tol is 0.
func solverFor(o options, def float64) *odeint.Options {
	tol := o.Tol
	if tol == 0 {
		tol = def
	}
	return &odeint.Options{Method: odeint.Dopri5, RTol: tol, ATol: tol}
}

// meanEval averages loss and metric over batches, weighted by size.
func meanEval(m zoo.Model, batches []*zoo.Batch) trainer.Evaluator {
	return func() (float64, float64, error) {
		var loss, metric float64
		n := 0
		for _, b := range batches {
			l, mt, err := m.Evaluate(b)
			if err != nil {
				return 0, 0, err
			}
			loss += l * float64(b.Size)
			metric += mt * float64(b.Size)
			n += b.Size
		}
		return loss / float64(n), metric / float64(n), nil
	}
}

// workerGCPercent is the image problems' GOGC unless the environment sets one.
const workerGCPercent = 10

// runWorker trains one optimizer and writes its result JSON to
// md.worker; a divergence is a result (DivergedAt), not an error.
func runWorker(o options, md mode) error {
	watchParent(md.workerParent)
	stop := stopOnSignal("worker " + o.Optimizers)
	if os.Getenv("GOGC") == "" && slices.Contains(imageProblems, o.Problem) {
		// The image classifier's graph executions leave large short-lived
		// buffers behind; at Go's default GOGC=100 the heap doubles before
		// they are collected. At 10 its peak RSS falls from about 1.3 GiB to
		// under 600 MiB at the same speed. The small models keep the default:
		// there frequent collections cost ~20 % (docs/benchmarks.md).
		debug.SetGCPercent(workerGCPercent)
	}
	resultPath := md.worker
	name := o.Optimizers
	lr := lrFor(o, name)
	opt, err := newOptimizer(name, lr, o.WD, o.damping(), o.RefreshK)
	if err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	ctx := context.New()
	_ = ctx.SetRNGStateFromSeed(int64(o.Seed))
	p, err := newProblem(o, b, ctx)
	if err != nil {
		return err
	}
	// Parameters exist after the first step: warm up with one batch. (A
	// resumed run draws it too, then restores the stream's position.)
	warm, err := p.next()
	if err != nil {
		return err
	}
	if _, err := p.model.Step(warm, false); err != nil {
		return err
	}
	var st trainer.Updater
	if p.updater != nil {
		st, err = p.updater(opt)
	} else {
		st, err = snoptx.NewStepper(b, ctx, opt, p.model.Params())
	}
	if err != nil {
		return err
	}
	hook, policy, err := endTimeHook(o, p.model, ctx)
	if err != nil {
		return err
	}
	if o.LRDecayEvery > 0 {
		hook = withLRDecay(hook, ctx, o.LRDecay, o.LRDecayEvery)
	}
	state := map[string]trainer.Stateful{"data": p.stream}
	for k, v := range p.extra {
		state[k] = v
	}
	if policy != nil {
		state["t1"] = policy
	}
	tag := runTag(o, name)
	if o.RunTag != "" {
		tag = o.RunTag
	}
	csv := filepath.Join(o.Out, tag+".csv")
	res, err := trainer.Run(p.model, st, p.next, p.eval, trainer.Config{
		Iterations: o.Iters, Budget: o.Budget, EvalEvery: o.EvalEvery, EvalSeconds: o.EvalSeconds, CSV: csv,
		CheckpointDir: filepath.Join(o.Out, tag+"-ckpt"), CheckpointEvery: o.CheckpointEvery, Resume: o.Resume,
		Progress: o.Progress, Label: fmt.Sprintf("%s lr=%g", name, lr), Hook: hook,
		State: state, Settings: o.settings(name, lr, backend.Describe(b)), Stop: stop,
	})
	// A run that ended early (a signal, a divergence) reports what it did,
	// without a final evaluation.
	partial := func() workerResult {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return workerResult{Optimizer: name, T1Policy: o.T1Policy, T1Start: o.T1, LR: lr, Backend: backend.Describe(b),
			Iterations: res.Iterations, Seconds: res.Seconds, SecPerIter: res.Seconds / float64(max(res.Iterations, 1)),
			PeakRSSMiB: peakRSSMiB(), MetricName: p.model.MetricName(), CSV: csv, FinalLoss: math.NaN(), FinalMetric: math.NaN(),
			Seed: o.Seed, Data: p.data}
	}
	var stopped *trainer.StoppedError
	if errors.As(err, &stopped) {
		r := partial()
		r.Stopped = true
		return writeResult(resultPath, r)
	}
	var div *trainer.DivergedError
	if errors.As(err, &div) {
		r := partial()
		r.DivergedAt, r.Divergence = div.Iteration, div.Cause
		return writeResult(resultPath, r)
	}
	if err != nil {
		return err
	}
	finalLoss, finalMetric, err := p.final()
	if trainer.SolverBroke(err) {
		// The trained parameters cannot be integrated on the test set: the
		// run diverged in its last iteration.
		r := partial()
		r.DivergedAt, r.Divergence = res.Iterations, "final evaluation: "+err.Error()
		return writeResult(resultPath, r)
	}
	if err != nil {
		return err
	}
	if p.after != nil {
		if err := p.after(tag); err != nil {
			return err
		}
	}
	var nfeF, nfeB float64
	for _, r := range res.Records {
		nfeF += float64(r.NFEForward)
		nfeB += float64(r.NFEBwd)
	}
	n := float64(max(len(res.Records), 1))
	t1Final := o.T1
	if r, ok := p.model.(trainer.T1Reporter); ok {
		t1Final = r.T1()
	}
	out := workerResult{Optimizer: name, T1Policy: o.T1Policy, T1Start: o.T1, T1Final: t1Final, LR: lr, Iterations: res.Iterations, Seconds: res.Seconds,
		SecPerIter: res.Seconds / float64(max(res.Iterations, 1)), PeakRSSMiB: peakRSSMiB(),
		FinalLoss: finalLoss, FinalMetric: finalMetric, MetricName: p.model.MetricName(), CSV: csv,
		NFEForward: nfeF / n, NFEBackward: nfeB / n, Seed: o.Seed, TrueNLL: p.trueNLL, Backend: backend.Describe(b), Data: p.data}
	return writeResult(resultPath, out)
}

// writeResult writes a worker's result JSON (NaN metrics as null).
func writeResult(path string, r workerResult) error {
	type alias workerResult
	data, err := json.MarshalIndent(struct {
		alias
		FinalLoss   *float64 `json:"final_loss"`
		FinalMetric *float64 `json:"final_metric"`
	}{alias(r), finiteOrNil(r.FinalLoss), finiteOrNil(r.FinalMetric)}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func finiteOrNil(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// settings are the flags that decide a run's iterates: a checkpoint written
// under other ones is refused on resume (the learning rate included: the
// checkpoint's optimizer state would otherwise silently win).
// The backend is the resolved one (backend.Describe: the backend's name and
// the engine level), so that $GOMLX_BACKEND spelled differently for the same
// backend ("", "go", "go:ops_sequential") resumes, while another engine
// level, whose results differ in the last bits, does not.
func (o options) settings(optimizer string, lr float64, resolvedBackend string) map[string]string {
	return map[string]string{
		"problem": o.Problem, "optimizer": optimizer, "lr": fmt.Sprint(lr), "wd": fmt.Sprint(o.WD),
		"batch": fmt.Sprint(o.Batch), "width": fmt.Sprint(o.Width), "train-size": fmt.Sprint(o.TrainSize),
		"eval-size": fmt.Sprint(o.EvalSize), "eval-every": fmt.Sprint(o.EvalEvery), "seed": fmt.Sprint(o.Seed),
		"refresh": fmt.Sprint(o.RefreshK), "damping": fmt.Sprint(o.damping()), "t1": fmt.Sprint(o.T1), "t1-policy": o.T1Policy, "t1-lr": fmt.Sprint(o.T1LR),
		"t1-reg": fmt.Sprint(o.T1Reg), "t1-every": fmt.Sprint(o.T1Every), "t1-warmup": fmt.Sprint(o.T1Warmup),
		"t1-decay": fmt.Sprint(o.T1Decay), "lr-decay": fmt.Sprint(o.LRDecay), "lr-decay-every": fmt.Sprint(o.LRDecayEvery), "t1-curvature": o.T1Curvature, "tol": fmt.Sprint(o.Tol), "data": o.Data,
		"data-seed": fmt.Sprint(o.dataSeed()), "stats-batch": fmt.Sprint(o.StatsBatch),
		"backend": resolvedBackend, "split": o.Split, "uea-name": o.UEAName, "hidden": fmt.Sprint(o.Hidden),
	}
}

// withLRDecay runs hook (if any), then every `every` iterations multiplies
// every learning rate of the context by factor.
func withLRDecay(hook func(int, *zoo.StepResult) error, ctx *context.Context, factor float64, every int) func(int, *zoo.StepResult) error {
	return func(iter int, res *zoo.StepResult) error {
		if hook != nil {
			if err := hook(iter, res); err != nil {
				return err
			}
		}
		if iter%every != 0 {
			return nil
		}
		_, err := snoptx.ScaleLearningRates(ctx, factor)
		return err
	}
}

// watchParent ends this worker when the orchestrator that started it is
// gone (its parent changes), on systems without a parent-death signal and
// in the instant before the signal is armed.
func watchParent(parent int) {
	if parent == 0 {
		return
	}
	check := func() {
		if os.Getppid() != parent {
			fmt.Fprintln(os.Stderr, "bench: worker: the orchestrator is gone; stopping (the last checkpoint is kept)")
			os.Exit(3)
		}
	}
	check()
	go func() {
		for range time.Tick(time.Second) {
			check()
		}
	}()
}

// peakRSSMiB reads the process's peak resident set size (VmHWM) from /proc.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "VmHWM:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// endTimeHook builds the free-horizon policy (or none for "fixed") as a
// trainer hook that feeds it each iteration's dL/dt1, gradient and
// parameters, and moves the model's t1 when the policy updates.
func endTimeHook(o options, m zoo.Model, ctx *context.Context) (func(int, *zoo.StepResult) error, trainer.Stateful, error) {
	if o.T1Policy == "fixed" || o.T1Policy == "" {
		return nil, nil, nil
	}
	setter, ok := m.(interface {
		SetT1(float64)
		T1() float64
	})
	if !ok {
		return nil, nil, fmt.Errorf("problem %s has no adjustable end time", o.Problem)
	}
	curv, err := freehorizon.ParseCurvature(o.T1Curvature)
	if err != nil {
		return nil, nil, err
	}
	// The floor is the default 0.1, or half the starting t1 when that is smaller
	// (so a run started from an unstable 0.05 really starts there).
	cfg := freehorizon.Config{LR: o.T1LR, C: o.T1Reg, Every: o.T1Every, Warmup: o.T1Warmup, Floor: min(freehorizon.DefaultFloor, o.T1/2),
		Decay: o.T1Decay, Curvature: curv, Warn: func(msg string) { fmt.Fprintln(os.Stderr, msg) }}
	var pol freehorizon.Policy
	switch o.T1Policy {
	case "baseline":
		pol, err = freehorizon.NewBaseline(setter.T1(), cfg)
	case "feedback":
		pol, err = freehorizon.NewFeedback(setter.T1(), cfg)
	default:
		return nil, nil, fmt.Errorf("unknown -t1-policy %q (want fixed, baseline or feedback)", o.T1Policy)
	}
	if err != nil {
		return nil, nil, err
	}
	odeParams, ok := m.(interface{ ODEParams() []*context.Variable })
	if !ok && pol.Name() == "feedback" {
		return nil, nil, fmt.Errorf("problem %s does not name its ODE parameters (the feedback policy needs them)", o.Problem)
	}
	hook := func(iter int, res *zoo.StepResult) error {
		obs := freehorizon.Observation{DLdT: res.DLdT1}
		if pol.Name() == "feedback" {
			// Q_Tu·δθ of eq. (16) runs over the ODE's own parameters (the
			// controls u), read after the first Step has registered them.
			for _, v := range odeParams.ODEParams() {
				var gv []float64
				if g := res.Grads[v.ScopeAndName()]; g != nil {
					var err error
					if gv, err = hostval.Float64s(g); err != nil {
						return fmt.Errorf("gradient of %s: %w", v.ScopeAndName(), err)
					}
				}
				tv, err := hostval.Float64s(v.MustValue())
				if err != nil {
					return fmt.Errorf("parameter %s: %w", v.ScopeAndName(), err)
				}
				obs.Grad, obs.Theta = append(obs.Grad, gv...), append(obs.Theta, tv...)
			}
		}
		if pol.Observe(obs) {
			u := pol.Last()
			fmt.Fprintf(os.Stderr, "t1 %s at iteration %d: %.4f → %.4f (Q_T %.4g, Q_TT %.4g, Q_Tu·δθ %.4g, limited %v)\n",
				pol.Name(), iter, u.From, u.To, u.QT, u.QTT, u.Feedback, u.Limited)
			setter.SetT1(pol.T())
		}
		return nil
	}
	return hook, &policyState{pol: pol, setT1: setter.SetT1}, nil
}

// policyState checkpoints an end-time policy (trainer.Stateful); restoring
// it also puts the model's t1 where the policy had it.
type policyState struct {
	pol   freehorizon.Policy
	setT1 func(float64)
}

func (p *policyState) MarshalBinary() ([]byte, error) { return json.Marshal(p.pol.State()) }

func (p *policyState) UnmarshalBinary(data []byte) error {
	var st freehorizon.State
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	if err := p.pol.Restore(st); err != nil {
		return err
	}
	p.setT1(p.pol.T())
	return nil
}

// runTag names one run's CSV log and checkpoint folder: problem and
// optimizer, plus the t1 policy and start whenever they differ from a fixed
// t1 = 1, so that runs sharing an output folder never overwrite each other.
func runTag(o options, name string) string {
	tag := fmt.Sprintf("%s-%s", o.Problem, name)
	if o.Seeds > 1 {
		tag += fmt.Sprintf("-seed%d", o.Seed)
	}
	if (o.T1Policy != "fixed" && o.T1Policy != "") || o.T1 != 1 {
		policy := o.T1Policy
		if policy == "" {
			policy = "fixed"
		}
		tag += fmt.Sprintf("-t1%s-%g", policy, o.T1)
	}
	return tag
}
