// Command bench trains a problem of the paper with Adam, SGD and SNOpt on
// the same gradient pipeline, each in its own process (so peak memory is
// measured per optimizer), under the same budget, and prints the paper's
// tables for it as Markdown — per-iteration runtime (Table 6) and its ratio
// to Adam, peak memory (Table 7) and its ratio, the final test metric
// (Table 2) — with the per-iteration CSV logs and PNG curves against
// wall-clock and iterations.
//
//	go run ./cmd/bench -problem mnist -budget 10m -out bench-out
//	go run ./cmd/bench -problem mnist -sweep -budget 1m    # learning rates from Table 5's grid
//	go run ./cmd/bench -reproduce full -out repro-out -page docs -jobs 2   # docs/reproduction.md
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snopt-go/snopt/freehorizon"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// options are the flags shared by the orchestrator and its workers.
type options struct {
	Problem    string        `json:"problem"`
	Optimizers string        `json:"optimizers"`
	Budget     time.Duration `json:"budget"`
	Iters      int           `json:"iters"`
	Batch      int           `json:"batch"`
	Width      int           `json:"width"`
	TrainSize  int           `json:"train_size"`
	EvalSize   int           `json:"eval_size"`
	EvalEvery  int           `json:"eval_every"`
	Out        string        `json:"out"`
	// LRDecay multiplies every learning rate every LRDecayEvery iterations.
	LRDecay      float64 `json:"lr_decay"`
	LRDecayEvery int     `json:"lr_decay_every"`
	// CheckpointEvery is the checkpoint interval in iterations.
	CheckpointEvery int     `json:"checkpoint_every"`
	Seed            uint64  `json:"seed"`
	LR              lrFlags `json:"lr"`
	WD              float64 `json:"wd"`
	RefreshK        int     `json:"refresh"`
	// Damping is SNOpt's Tikhonov damping ε (0: the problem's).
	Damping     float64 `json:"damping"`
	T1          float64 `json:"t1"`
	T1Policy    string  `json:"t1_policy"`
	T1LR        float64 `json:"t1_lr"`
	T1Reg       float64 `json:"t1_reg"`
	T1Every     int     `json:"t1_every"`
	T1Warmup    int     `json:"t1_warmup"`
	T1Decay     float64 `json:"t1_decay"`
	T1Curvature string  `json:"t1_curvature"`
	T1Recovered float64 `json:"t1_recovered"`
	Tol         float64 `json:"tol"`
	Data        string  `json:"data"`
	Progress    bool    `json:"progress"`
	Resume      bool    `json:"resume"`
	SweepRange  string  `json:"sweep_range"`
	Grid        string  `json:"grid"`
	FinalSize   int     `json:"final_size"`
	// Seeds runs every optimizer with seeds Seed … Seed+Seeds−1.
	Seeds int `json:"seeds"`
	// DataSeed seeds the stand-in data sets; 0 means Seed.
	DataSeed uint64 `json:"data_seed"`
	// StatsBatch is the image classifier's sub-batch for SNOpt's statistics.
	StatsBatch int `json:"stats_batch"`
	// UEAName names the data set of -problem uea (default: the one
	// <Name>_TRAIN.ts in -data).
	UEAName string `json:"uea_name"`
	// Split is the time-series split: "archive" (the files' own) or
	// "paper" (merged and re-split 70/15/15, stratified).
	Split string `json:"split"`
	// Hidden is the ODE-RNN's hidden width (0: the problem's default).
	Hidden int `json:"hidden"`
	// MemoryCheck refuses a configuration whose memory estimate exceeds
	// the machine's memory.
	MemoryCheck bool `json:"memory_check"`
	// RunTag, when set, names the run's log and checkpoint folder instead of
	// runTag's name (a sweep gives each learning rate its own).
	RunTag string `json:"run_tag"`
	// EvalSeconds evaluates whenever this much training time has passed
	// since the last evaluation (budgeted runs without -eval-every: a
	// thirtieth of the budget), besides every EvalEvery iterations.
	EvalSeconds float64 `json:"eval_seconds"`
}

// dataSeed is the seed of the stand-in data sets.
func (o options) dataSeed() uint64 {
	if o.DataSeed != 0 {
		return o.DataSeed
	}
	return o.Seed
}

// Bounds of -tol and -t1 that the solver can meet.
const (
	minTol, maxTol = 1e-10, 0.5
	minT1, maxT1   = 1e-4, 100.0
)

// knownOptimizers are the optimizers the bench compares.
var knownOptimizers = []string{"adam", "sgd", "snopt"}

// knownProblems are the problems the bench trains.
var knownProblems = []string{"mnist", "fashion", "cifar10", "svhn", "circle", "spoad", "artwr", "chart", "uea", "gas", "miniboone"}

// evalPointsPerBudget is how many evaluations a budgeted run makes without
// -eval-every (time-based; see options.EvalSeconds).
const evalPointsPerBudget = 30

// defaultStatsBatch is the image problems' -stats-batch.
const defaultStatsBatch = 32

// imageProblems train the image classifier.
var imageProblems = []string{"mnist", "fashion", "cifar10", "svhn"}

// dataFiles are the files -data must hold for the needsData problems.
var dataFiles = map[string][]string{
	"cifar10": append(append([]string{}, datasets.CIFAR10Files.Train...), datasets.CIFAR10Files.Test),
	"svhn":    {datasets.SVHNFiles.Train, datasets.SVHNFiles.Test},
}

// needsData says where the files of the problems that cannot be obtained
// here come from. -data is required for those without a stand-in (the
// image sets of datasets.ImageSets have one).
var needsData = map[string]string{
	"cifar10": "CIFAR-10's binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked: the folder cifar-10-batches-bin with data_batch_1..5.bin and test_batch.bin)",
	"svhn":    "SVHN's cropped digits (train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/)",
	"uea":     "a UEA archive data set (<Name>_TRAIN.ts and <Name>_TEST.ts from https://www.timeseriesclassification.com, e.g. Multivariate2018_ts.zip unpacked)",
}

// sweepBounds parses -sweep-range ("lo:hi"); without it every rate is in range.
func (o options) sweepBounds() (lo, hi float64, err error) {
	if o.SweepRange == "" {
		return 0, math.Inf(1), nil
	}
	a, b, ok := strings.Cut(o.SweepRange, ":")
	if !ok {
		return 0, 0, fmt.Errorf("-sweep-range %q: want lo:hi", o.SweepRange)
	}
	if lo, err = parsePositive(a); err == nil {
		hi, err = parsePositive(b)
	}
	if err != nil || lo > hi {
		return 0, 0, fmt.Errorf("-sweep-range %q: want lo:hi with 0 < lo ≤ hi", o.SweepRange)
	}
	return lo, hi, nil
}

// parsePositive reads a whole string as a finite number > 0.
func parsePositive(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number > 0", s)
	}
	return v, nil
}

// lrFlags holds one learning rate per optimizer ("adam=1e-3,sgd=0.1,snopt=0.01").
type lrFlags map[string]float64

func (l lrFlags) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%g", k, l[k]))
	}
	return strings.Join(parts, ",")
}

// Set parses name=value pairs strictly: a known optimizer and a finite
// rate > 0, nothing after the number.
func (l lrFlags) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%q: want name=value, e.g. adam=1e-3", part)
		}
		if !slices.Contains(knownOptimizers, name) {
			return fmt.Errorf("%q: unknown optimizer %q (want %s)", part, name, strings.Join(knownOptimizers, ", "))
		}
		v, err := parsePositive(value)
		if err != nil {
			return fmt.Errorf("%q: learning rate %w", part, err)
		}
		if old, dup := l[name]; dup {
			return fmt.Errorf("%q: a second learning rate for %s (already %g); give each optimizer one", part, name, old)
		}
		l[name] = v
	}
	return nil
}

// internalFlags are set by the orchestrator for its workers and hidden
// from -h.
var internalFlags = map[string]bool{"worker": true, "worker-parent": true, "worker-options": true}

const usageHeader = `bench trains a problem of the SNOpt paper with Adam, SGD and SNOpt, each in
its own process under the same budget, and prints the paper's tables:
per-iteration runtime (Table 6), peak memory (Table 7) and the final test
metric (Table 2), with CSV logs, checkpoints and PNG curves in -out.

Examples:
  bench -problem circle -budget 30s -out bench-out          # about 2 minutes on 2 cores
  bench -problem mnist -budget 10m -out bench-out           # Tables 6, 7, 2 on MNIST
  bench -problem mnist -budget 10m -out bench-out -resume   # continue after a kill
  bench -problem mnist -sweep -budget 75s -grid 1e-2,3e-2,1e-1 -optimizers snopt
  bench -problem mnist -optimizers snopt -t1-policy feedback -iters 200
  bench -problem mnist -table3 -iters 200 -eval-every 40
  bench -reproduce full -out repro-out -page docs -jobs 2  # the paper's tables and figures, all nine problems

Exit status: 0 when every run finished; 1 when a run diverged or failed
(its row says so); 2 for a wrong command line.

Flags:
`

// usage prints the header and every public flag.
func usage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, usageHeader)
		fs.VisitAll(func(f *flag.Flag) {
			if internalFlags[f.Name] {
				return
			}
			name, help := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  -%s %s\n    \t%s", f.Name, name, help)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
}

// mode is what one invocation does.
type mode struct {
	worker       string
	workerParent int
	// workerOptions is the file holding the orchestrator's options for a
	// worker (every option, serialised whole: none can be lost on the way).
	workerOptions string
	sweep         bool
	table3        bool
	// reproduce names the -reproduce profile; page is where its page goes;
	// jobs is how many runs go side by side.
	reproduce string
	page      string
	jobs      int
	only      []string
	pageOnly  bool
}

// parseArgs parses and validates a command line.
func parseArgs(args []string, out io.Writer) (options, mode, error) {
	o := options{LR: lrFlags{}}
	var md mode
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = usage(fs)
	fs.StringVar(&o.Problem, "problem", "mnist", "problem: "+strings.Join(knownProblems, ", ")+" (spoad, artwr, chart: the paper's UEA time series, stand-ins unless -data; uea: any UEA data set in -data; gas, miniboone: FFJORD density estimation, stand-ins unless -data)")
	fs.StringVar(&o.UEAName, "uea-name", "", "-problem uea: the data set's name, the prefix of <Name>_TRAIN.ts (default: the one such file in -data)")
	fs.StringVar(&o.Split, "split", "archive", "time series: archive (the files' own train/test split) or paper (both merged and re-split 70/15/15 stratified with fixed seeds, as the paper)")
	fs.BoolVar(&o.MemoryCheck, "memory-check", true, "refuse a configuration whose estimated memory exceeds the machine's (or the cgroup's) before building it")
	fs.IntVar(&o.Hidden, "hidden", 0, "time series: the ODE-RNN's hidden width (0: the problem's, App. A.4; 32 for uea)")
	fs.StringVar(&o.Optimizers, "optimizers", "adam,sgd,snopt", "comma-separated optimizers to compare")
	fs.DurationVar(&o.Budget, "budget", 0, "training wall-clock budget per optimizer (e.g. 10m)")
	fs.IntVar(&o.Iters, "iters", 0, "iterations per optimizer (when no budget)")
	fs.IntVar(&o.Batch, "batch", 128, "mini-batch size")
	fs.IntVar(&o.Width, "width", 16, "channels of the image model (the paper's 64 for GPU); for gas and miniboone, when given, every hidden width of the field (default: the paper's 160 and 860)")
	fs.IntVar(&o.TrainSize, "train-size", 0, "use only the first N training samples (0: all)")
	fs.IntVar(&o.EvalSize, "eval-size", 2000, "test samples for the periodic evaluations (the final one uses all)")
	fs.IntVar(&o.EvalEvery, "eval-every", 50, "evaluate every N iterations (0: only at the end); with -budget and without this flag, also about 30 times evenly spaced in training time")
	fs.Float64Var(&o.EvalSeconds, "eval-seconds", 0, "with -budget: evaluate whenever this much training time passed since the last evaluation (0: a thirtieth of the budget, unless -eval-every is given)")
	fs.IntVar(&o.CheckpointEvery, "checkpoint-every", 50, "write a checkpoint every N iterations (and at the end)")
	fs.StringVar(&o.Out, "out", "bench-out", "output folder (CSV logs, checkpoints, PNG curves, tables)")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fs.IntVar(&o.Seeds, "seeds", 1, "run every optimizer with seeds -seed … -seed+N−1 and report mean and spread")
	fs.Uint64Var(&o.DataSeed, "data-seed", 0, "seed of the stand-in data sets (0: -seed; -seeds keeps it at the first seed)")
	fs.Var(o.LR, "lr", "learning rates, e.g. adam=1e-3,sgd=0.1,snopt=0.01 (defaults per problem)")
	fs.Float64Var(&o.WD, "wd", 0, "weight decay for every optimizer")
	fs.Float64Var(&o.LRDecay, "lr-decay", 1, "multiply every learning rate by this every -lr-decay-every iterations")
	fs.IntVar(&o.LRDecayEvery, "lr-decay-every", 0, "learning-rate decay period in iterations (0: no decay)")
	fs.IntVar(&o.RefreshK, "refresh", 100, "SNOpt: refresh the eigenbases every K iterations")
	fs.Float64Var(&o.Damping, "damping", 0, "SNOpt: Tikhonov damping ε of eq. (14) (0: the problem's, as the official run scripts: 0.03 cifar10, 0.1 artwr and miniboone, else 0.05)")
	fs.IntVar(&o.StatsBatch, "stats-batch", 0, "SNOpt, image problems: Kronecker statistics of the ODE block from the first N samples of the batch (0: all; default 32 for the image problems)")
	fs.Float64Var(&o.T1, "t1", 1, "integration end time of the image model (> 0)")
	fs.StringVar(&o.T1Policy, "t1-policy", "fixed", "end time t1: fixed, baseline (first order) or feedback (eq. 16)")
	fs.Float64Var(&o.T1LR, "t1-lr", 0.1, "end-time learning rate η")
	fs.Float64Var(&o.T1Reg, "t1-reg", 0.3, "end-time penalty c of (c/2)·t1² (loss units; t1 settles near −dL/dt1 / c)")
	fs.IntVar(&o.T1Every, "t1-every", 20, "update t1 every N iterations")
	fs.IntVar(&o.T1Warmup, "t1-warmup", 0, "iterations before t1 updates start")
	fs.Float64Var(&o.T1Decay, "t1-decay", 0.95, "factor of the t1 policies' moving averages, in [0, 1)")
	fs.Float64Var(&o.T1Recovered, "t1-recovered", freehorizon.DefaultFloor, "Table 3: the t1 a run from a small start counts as recovered at")
	fs.StringVar(&o.T1Curvature, "t1-curvature", freehorizon.SquaredMean.String(), "feedback policy's (dL/dt1)² in Q_TT: squared-mean or mean-square")
	fs.Float64Var(&o.Tol, "tol", 0, "ODE solver rtol = atol (0: per problem)")
	fs.StringVar(&o.Data, "data", "", "MNIST idx folder (default: the GoMNIST module's), the folder of <Name>_TRAIN.ts and <Name>_TEST.ts, or of train/val/test .npy or .csv (default: stand-ins)")
	fs.BoolVar(&o.Progress, "progress", true, "show a progress bar")
	fs.BoolVar(&o.Resume, "resume", false, "resume each optimizer from its checkpoint in -out (same settings required)")
	fs.StringVar(&o.SweepRange, "sweep-range", "", "sweep only learning rates in lo:hi")
	fs.StringVar(&o.Grid, "grid", "", "sweep these learning rates (comma list) instead of Table 5's grid")
	fs.IntVar(&o.FinalSize, "final-size", 0, "test samples for the final evaluation (0: all of MNIST's; circle: 0 means 2000)")
	fs.BoolVar(&md.sweep, "sweep", false, "sweep Table 5's learning-rate grid with short runs instead")
	fs.BoolVar(&md.table3, "table3", false, "run the Table 3 analogue instead: t1 policies, θ trained by the first of -optimizers (SNOpt unless -optimizers is given)")
	fs.StringVar(&md.reproduce, "reproduce", "", "run a reproduction profile instead (quick or full): every problem's runs for Tables 2, 3, 6, 7 and Figures 1/11, 8, 9, written as reproduction.md with its PNGs and a CSV into -page")
	fs.StringVar(&md.page, "page", "docs", "-reproduce: the folder of reproduction.md, its figures and its CSV")
	fs.Func("only", "-reproduce: only these problems (comma list), e.g. to rerun some of a profile", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				md.only = append(md.only, p)
			}
		}
		return nil
	})
	fs.BoolVar(&md.pageOnly, "page-only", false, "-reproduce: write the page from the results in -out, running nothing (runs without one are marked \"not run\")")
	fs.IntVar(&md.jobs, "jobs", 1, "-reproduce: runs side by side (each on one core when more than one)")
	fs.StringVar(&md.worker, "worker", "", "internal: run one optimizer and write its result JSON here")
	fs.IntVar(&md.workerParent, "worker-parent", 0, "internal: the orchestrator's process id")
	fs.StringVar(&md.workerOptions, "worker-options", "", "internal: the file of the worker's options (JSON)")
	if err := fs.Parse(args); err != nil {
		return o, md, err
	}
	if name := repeatedFlag(fs, args); name != "" {
		return o, md, fmt.Errorf("-%s is given more than once; give it once (a later value would silently replace the earlier)", name)
	}
	if md.workerOptions != "" {
		// A worker takes every option from the orchestrator's file; the
		// orchestrator validated them.
		data, err := os.ReadFile(md.workerOptions)
		if err != nil {
			return o, md, err
		}
		o = options{}
		if err := json.Unmarshal(data, &o); err != nil {
			return o, md, fmt.Errorf("%s: %w", md.workerOptions, err)
		}
		return o, md, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return o, md, fmt.Errorf("unexpected argument %q (flags start with -; see -h)", fs.Arg(0))
	}
	if md.reproduce != "" || set["page"] || set["jobs"] || set["only"] || set["page-only"] {
		return o, md, validateReproduce(md, set)
	}
	if sp, ok := seriesProblems[o.Problem]; ok && !set["batch"] {
		o.Batch = sp.batch // App. A.4's batch sizes
	}
	if tp, ok := tabularProblems[o.Problem]; ok {
		if !set["batch"] {
			o.Batch = tp.batch
		}
		if !set["width"] {
			o.Width = 0 // the paper's hidden widths
		}
	}
	if slices.Contains(imageProblems, o.Problem) && !set["stats-batch"] {
		// A quarter of the default batch: a refresh then costs about 2× a
		// plain iteration instead of 4.7× (docs/benchmarks.md).
		o.StatsBatch = defaultStatsBatch
	}
	if o.Budget > 0 && !set["eval-every"] && !set["eval-seconds"] {
		// Curves against wall-clock get about 30 evenly spaced points.
		o.EvalSeconds = o.Budget.Seconds() / evalPointsPerBudget
	}
	if md.table3 && !set["optimizers"] {
		// Table 3 pairs the feedback policy with SNOpt, as the paper's
		// "Ours" does; SNOpt's accuracy also moves far less between
		// evaluations than Adam's at a few hundred iterations.
		o.Optimizers = "snopt"
	}
	return o, md, validate(o, md, set)
}

// validate checks every flag, naming the flag in the message.
func validate(o options, md mode, set map[string]bool) error {
	_, tabular := tabularProblems[o.Problem] // -width 0: the paper's hidden widths
	_, isSeries := seriesProblems[o.Problem]
	bad := func(flagName string, v any, want string) error {
		return fmt.Errorf("-%s %v: want %s", flagName, v, want)
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !slices.Contains(knownProblems, o.Problem) {
		return bad("problem", o.Problem, "one of "+strings.Join(knownProblems, ", "))
	}
	names := optimizerList(o)
	if len(names) == 0 {
		return bad("optimizers", strconv.Quote(o.Optimizers), "a comma list of "+strings.Join(knownOptimizers, ", "))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(knownOptimizers, n) {
			return bad("optimizers", o.Optimizers, "only "+strings.Join(knownOptimizers, ", ")+" (unknown "+strconv.Quote(n)+")")
		}
		if seen[n] {
			return bad("optimizers", o.Optimizers, "each optimizer once")
		}
		seen[n] = true
	}
	for name := range o.LR {
		if !seen[name] {
			return bad("lr", o.LR.String(), "rates only for optimizers in -optimizers ("+o.Optimizers+")")
		}
	}
	checks := []struct {
		ok       bool
		flagName string
		v        any
		want     string
	}{
		{o.Budget >= 0, "budget", o.Budget, "a duration ≥ 0"},
		{o.Iters >= 0, "iters", o.Iters, "≥ 0"},
		{md.table3 || o.Budget > 0 || o.Iters > 0, "budget", o.Budget, "> 0, or -iters > 0"},
		{!md.table3 || o.Iters > 0, "iters", o.Iters, "> 0 with -table3"},
		{o.Batch >= 1, "batch", o.Batch, "≥ 1"},
		{o.Width >= 1 || (o.Width == 0 && (!set["width"] || tabular)), "width", o.Width, "≥ 1"},
		{o.TrainSize >= 0, "train-size", o.TrainSize, "≥ 0"},
		{o.EvalSize >= 1, "eval-size", o.EvalSize, "≥ 1"},
		{o.EvalEvery >= 0, "eval-every", o.EvalEvery, "≥ 0"},
		{finite(o.EvalSeconds) && o.EvalSeconds >= 0, "eval-seconds", o.EvalSeconds, "a finite number of seconds ≥ 0"},
		{o.CheckpointEvery >= 1, "checkpoint-every", o.CheckpointEvery, "≥ 1"},
		{o.Out != "", "out", `""`, "a folder"},
		{finite(o.WD) && o.WD >= 0, "wd", o.WD, "a finite number ≥ 0"},
		{o.RefreshK >= 1, "refresh", o.RefreshK, "≥ 1"},
		{finite(o.Damping) && o.Damping >= 0, "damping", o.Damping, "a finite number > 0 (0: the problem's)"},
		{o.LRDecay > 0 && o.LRDecay <= 1, "lr-decay", o.LRDecay, "0 < factor ≤ 1"},
		{o.LRDecayEvery >= 0, "lr-decay-every", o.LRDecayEvery, "≥ 0"},
		{o.LRDecay == 1 || o.LRDecayEvery > 0, "lr-decay-every", o.LRDecayEvery, "> 0 with -lr-decay"},
		{finite(o.T1) && o.T1 > 0, "t1", o.T1, "a finite number > 0"},
		{slices.Contains(imageProblems, o.Problem) || !set["t1"], "t1", o.T1, "no -t1 for " + o.Problem + " (only the image problems have an adjustable end time)"},
		{slices.Contains([]string{"fixed", "baseline", "feedback"}, o.T1Policy), "t1-policy", o.T1Policy, "fixed, baseline or feedback"},
		{slices.Contains(imageProblems, o.Problem) || o.T1Policy == "fixed", "t1-policy", o.T1Policy, "fixed for " + o.Problem + " (only the image problems have an adjustable end time)"},
		{slices.Contains(imageProblems, o.Problem) || !md.table3, "table3", true, "an image problem (" + strings.Join(imageProblems, ", ") + "; only they have an adjustable end time)"},
		{finite(o.T1LR) && o.T1LR > 0, "t1-lr", o.T1LR, "a finite number > 0"},
		{finite(o.T1Reg) && o.T1Reg >= 0, "t1-reg", o.T1Reg, "a finite number ≥ 0"},
		{o.T1Every >= 1, "t1-every", o.T1Every, "≥ 1"},
		{o.T1Warmup >= 0, "t1-warmup", o.T1Warmup, "≥ 0"},
		{o.T1Decay >= 0 && o.T1Decay < 1, "t1-decay", o.T1Decay, "0 ≤ decay < 1"},
		{finite(o.T1Recovered) && o.T1Recovered > 0, "t1-recovered", o.T1Recovered, "a finite number > 0"},
		{finite(o.Tol) && o.Tol >= 0, "tol", o.Tol, "a finite number ≥ 0 (0: the problem's default)"},
		{o.Tol == 0 || (o.Tol >= minTol && o.Tol <= maxTol), "tol", o.Tol, fmt.Sprintf("0 (the problem's default) or between %g and %g: tighter than float32 arithmetic can meet, the solver's step size underflows; looser, it stops controlling the error", minTol, maxTol)},
		{o.T1 >= minT1 && o.T1 <= maxT1, "t1", o.T1, fmt.Sprintf("between %g and %g (the end time of an ODE block trained at t1 = 1; outside, the solve fails or its step count explodes)", minT1, maxT1)},
		{md.sweep || !set["grid"], "grid", o.Grid, "only with -sweep (it lists the learning rates a sweep tries)"},
		{md.sweep || !set["sweep-range"], "sweep-range", o.SweepRange, "only with -sweep (it bounds the learning rates a sweep tries)"},
		{o.FinalSize >= 0, "final-size", o.FinalSize, "≥ 0"},
		{o.Seeds >= 1, "seeds", o.Seeds, "≥ 1"},
		{o.StatsBatch >= 0, "stats-batch", o.StatsBatch, "≥ 0"},
		{o.Split == "archive" || o.Split == "paper", "split", o.Split, "archive or paper"},
		{isSeries || !set["split"], "split", o.Split, "no -split for " + o.Problem + " (only the time-series problems)"},
		{o.Hidden >= 0, "hidden", o.Hidden, "≥ 0"},
		{isSeries || !set["hidden"], "hidden", o.Hidden, "no -hidden for " + o.Problem + " (only the time-series problems)"},
		{o.Problem == "uea" || !set["uea-name"], "uea-name", o.UEAName, "only with -problem uea"},
		{o.Seeds == 1 || !(md.sweep || md.table3), "seeds", o.Seeds, "1 with -sweep or -table3"},
		{!(md.sweep && md.table3), "table3", true, "not together with -sweep"},
	}
	for _, c := range checks {
		if !c.ok {
			return bad(c.flagName, c.v, c.want)
		}
	}
	if o.MemoryCheck {
		if err := checkMemory(o); err != nil {
			return err
		}
	}
	if _, err := freehorizon.ParseCurvature(o.T1Curvature); err != nil {
		return bad("t1-curvature", o.T1Curvature, "squared-mean or mean-square")
	}
	if _, _, err := o.sweepBounds(); err != nil {
		return err
	}
	if _, err := o.grid(); err != nil {
		return err
	}
	_, standIn := datasets.ImageSets[o.Problem]
	if where, ok := needsData[o.Problem]; ok && (o.Data != "" || !standIn) {
		if o.Data == "" {
			return bad("data", `""`, "the folder of "+where+"; they are not on this machine, and the bench does not substitute a stand-in")
		}
		if o.Problem == "uea" {
			if _, err := ueaName(o); err != nil {
				return err
			}
		}
		for _, f := range dataFiles[o.Problem] {
			if _, err := os.Stat(filepath.Join(o.Data, f)); err != nil {
				return bad("data", o.Data, "the folder of "+where+" (no "+f+" there)")
			}
		}
	}
	if o.Data != "" {
		if o.Problem == "circle" {
			return bad("data", o.Data, "no -data for "+o.Problem+" (it samples its data)")
		}
		if st, err := os.Stat(o.Data); err != nil || !st.IsDir() {
			return bad("data", o.Data, "an existing folder with the problem's data files")
		}
	}
	return nil
}

// repeatedFlag is the name of a flag of fs that args set twice ("" if none).
func repeatedFlag(fs *flag.FlagSet, args []string) string {
	seen := map[string]bool{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) == nil {
			continue // a value such as -4
		}
		if seen[name] {
			return name
		}
		seen[name] = true
	}
	return ""
}

// grid parses -grid (nil without it).
func (o options) grid() ([]float64, error) {
	if o.Grid == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(o.Grid, ",") {
		v, err := parsePositive(f)
		if err != nil {
			return nil, fmt.Errorf("-grid %q: %w", o.Grid, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func main() {
	o, md, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if md.worker == "" {
		stopOnSignal("orchestrator")
	}
	switch {
	case md.worker != "":
		err = runWorker(o, md)
	case md.reproduce != "":
		run := func() error {
			return runReproduce(reproduction{profile: reproProfiles[md.reproduce], out: o.Out, page: md.page, jobs: md.jobs,
				resume: o.Resume, args: os.Args[1:], only: md.only, pageOnly: md.pageOnly})
		}
		if md.pageOnly {
			err = run() // only reads -out: also while a reproduction runs there
		} else {
			err = locked(o, run)
		}
	case md.sweep:
		err = locked(o, func() error { return runSweep(o) })
	case md.table3:
		err = locked(o, func() error { return runTable3(o) })
	default:
		err = locked(o, func() error { return runBench(o) })
	}
	if md.worker == "" && interrupted.Load() {
		if err != nil && !errors.Is(err, errInterrupted) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		fmt.Fprintf(os.Stderr, "bench: interrupted; the partial tables and plots are in %s. Resume with:\n  %s %s\n",
			o.Out, shellQuote(os.Args[0]), resumeCommand(os.Args[1:]))
		os.Exit(exitSignalled)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// spawn runs one optimizer in a child process and reads its result. The
// child dies with this process (Linux: the kernel kills it; elsewhere it
// notices within a second), so a killed bench leaves no worker writing to
// -out. A worker that diverged reports so in its result; any other failure
// is an error.
func spawn(o options, optimizer string, lr float64, tag string) (*workerResult, error) {
	return spawnWith(o, optimizer, lr, tag, workerIO{})
}

// workerIO is where a worker's output goes (nil: this process's) and what
// it adds to the environment.
type workerIO struct {
	stdout, stderr io.Writer
	env            []string
}

// spawnWith is spawn with the worker's output and environment set by wio.
func spawnWith(o options, optimizer string, lr float64, tag string, wio workerIO) (*workerResult, error) {
	if interrupted.Load() {
		return nil, fmt.Errorf("%s (lr %g) not started: %w", optimizer, lr, errInterrupted)
	}
	o = workerOptions(o, optimizer, lr)
	resultPath := filepath.Join(o.Out, tag+".json")
	if err := os.Remove(resultPath); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	optionsPath := filepath.Join(o.Out, tag+".options.json")
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(optionsPath, data, 0o644); err != nil {
		return nil, err
	}
	args := []string{"-worker", resultPath, "-worker-parent", fmt.Sprint(os.Getpid()), "-worker-options", optionsPath}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if wio.stdout != nil {
		cmd.Stdout = wio.stdout
	}
	if wio.stderr != nil {
		cmd.Stderr = wio.stderr
	}
	if wio.env != nil {
		cmd.Env = append(os.Environ(), wio.env...)
	}
	dieWithParent(cmd)
	// The parent-death signal follows the thread that started the child:
	// keep this goroutine on it until the child is done.
	runtime.LockOSThread()
	if err = cmd.Start(); err == nil {
		setChild(cmd.Process)
		if interrupted.Load() { // the signal came between the check above and the start
			signalChild(os.Interrupt)
		}
		err = cmd.Wait()
		unsetChild(cmd.Process)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("%s (lr %g): %w", optimizer, lr, err)
	}
	if data, err = os.ReadFile(resultPath); err != nil {
		return nil, fmt.Errorf("%s (lr %g): no result: %w", optimizer, lr, err)
	}
	var r workerResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", resultPath, err)
	}
	return &r, nil
}

// workerOptions are the options a worker running optimizer at lr gets.
func workerOptions(o options, optimizer string, lr float64) options {
	o.Optimizers = optimizer
	o.LR = lrFlags{optimizer: lr}
	o.DataSeed = o.dataSeed()
	return o
}

// lockName is the file in -out that one bench at a time holds.
const lockName = ".bench.lock"

// locked runs fn holding an exclusive lock on the output folder, so that a
// second bench on the same -out refuses to start instead of racing for its
// files. The lock goes with the process, however it ends.
func locked(o options, fn func() error) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.Out, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		holder, _ := os.ReadFile(path)
		return fmt.Errorf("another bench (pid %s) is using -out %s; wait for it to finish or choose another -out",
			strings.TrimSpace(string(holder)), o.Out)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintln(os.Getpid())), 0)
	return fn()
}
