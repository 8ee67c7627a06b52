package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// seriesProblems are the time-series problems: the paper's three with the
// archive's shapes, the batch size and hidden width of App. A.4, and "uea",
// any data set of the UEA archive given with -data (shapes from its
// headers; hidden width by -hidden).
var seriesProblems = map[string]struct{ batch, hidden int }{
	"spoad": {batch: 128, hidden: 32},
	"artwr": {batch: 256, hidden: 64},
	"chart": {batch: 512, hidden: 32},
	"uea":   {batch: 128, hidden: 32},
}

// restLR is Adam's learning rate for the GRU and the head of the
// time-series problems (App. A.4 trains them with Adam whatever optimizer
// the ODE field is compared with).
const restLR = 3e-3

// seriesSets are a time-series problem's sets: periodic evaluations run on
// eval, the final one on test; about says which data and split ran.
type seriesSets struct {
	train, eval, test *datasets.TimeSeries
	about             string
}

// ueaName finds the data set of -problem uea in dir: -uea-name, else the
// one <Name>_TRAIN.ts there.
func ueaName(o options) (string, error) {
	if o.UEAName != "" {
		return o.UEAName, nil
	}
	found, _ := filepath.Glob(filepath.Join(o.Data, "*_TRAIN.ts"))
	switch len(found) {
	case 1:
		return strings.TrimSuffix(filepath.Base(found[0]), "_TRAIN.ts"), nil
	case 0:
		return "", fmt.Errorf("-data %s: no <Name>_TRAIN.ts there (the UEA archive's file naming)", o.Data)
	}
	var names []string
	for _, f := range found {
		names = append(names, strings.TrimSuffix(filepath.Base(f), "_TRAIN.ts"))
	}
	return "", fmt.Errorf("-data %s holds %d data sets (%s): choose one with -uea-name", o.Data, len(found), strings.Join(names, ", "))
}

// loadSeries reads <Name>_TRAIN.ts and <Name>_TEST.ts from o.Data or, without
// it, writes deterministic stand-ins with the archive's shapes in that
// format under o.Out and reads them back (the loader's path either way).
// Labels are mapped by name to the training file's classes, both files are
// padded to one length, and with -split paper the two are merged and re-split
// 70/15/15 (periodic evaluations then run on the validation part). Every
// set is standardised per channel with the training statistics. It says
// which data and split ran.
func loadSeries(o options) (*seriesSets, error) {
	name, dir := "", o.Data
	if spec, ok := datasets.Archive[o.Problem]; ok {
		name = spec.Name
	}
	if o.Problem == "uea" {
		var err error
		if name, err = ueaName(o); err != nil {
			return nil, err
		}
	}
	about := ""
	if dir == "" {
		spec := datasets.Archive[o.Problem]
		dir = filepath.Join(o.Out, fmt.Sprintf("standin-seed%d", o.dataSeed()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		tr, te, err := datasets.StandIn(spec, o.dataSeed())
		if err != nil {
			return nil, err
		}
		for suffix, ts := range map[string]*datasets.TimeSeries{"_TRAIN.ts": tr, "_TEST.ts": te} {
			if err := writeOnce(filepath.Join(dir, spec.Name+suffix), func(w io.Writer) error { return datasets.WriteTS(w, ts) }); err != nil {
				return nil, err
			}
		}
		about = fmt.Sprintf("deterministic stand-in with %s's shapes (NOT the archive's data; -data DIR reads %s_TRAIN.ts and %s_TEST.ts)", spec.Name, spec.Name, spec.Name)
	} else {
		about = fmt.Sprintf("the archive's %s_TRAIN.ts and %s_TEST.ts from %s", name, name, dir)
	}
	train, err := datasets.ReadTSFile(filepath.Join(dir, name+"_TRAIN.ts"))
	if err != nil {
		return nil, err
	}
	test, err := datasets.ReadTSFile(filepath.Join(dir, name+"_TEST.ts"))
	if err != nil {
		return nil, err
	}
	if err := train.AlignClasses(test); err != nil {
		return nil, err
	}
	length := max(train.Length, test.Length)
	if err := train.PadTo(length); err != nil {
		return nil, err
	}
	if err := test.PadTo(length); err != nil {
		return nil, err
	}
	sets := &seriesSets{train: train, eval: test, test: test}
	switch o.Split {
	case "paper":
		tr, val, te, err := datasets.PaperSplit(train, test)
		if err != nil {
			return nil, err
		}
		sets.train, sets.eval, sets.test = tr, val, te
		about += fmt.Sprintf("; the paper's split: both files merged and re-split 70/15/15 stratified (seeds %v): %d training, %d validation (periodic evaluations), %d test series",
			datasets.PaperSplitSeeds, tr.N, val.N, te.N)
	default:
		about += fmt.Sprintf("; the archive's own split: %d training, %d test series", train.N, test.N)
	}
	if train.Lengths != nil || test.Lengths != nil || train.Observed != nil || test.Observed != nil {
		about += fmt.Sprintf("; unequal lengths padded to %d steps by repeating the last value, missing values carried forward, both masked", length)
	}
	others := []*datasets.TimeSeries{sets.test}
	if sets.eval != sets.test {
		others = append(others, sets.eval)
	}
	if _, _, err := sets.train.Standardize(others...); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %s\n", o.Problem, about)
	sets.about = about
	return sets, nil
}

// writeOnce writes a deterministic stand-in file atomically unless an
// earlier run already wrote it. Workers running side by side may write the
// same file: each writes its own temporary file and renames it, and the
// result is the same. Temporary files a killed write left behind (their
// writer's process is gone) are removed first.
func writeOnce(path string, write func(w io.Writer) error) error {
	if stale, _ := filepath.Glob(path + ".tmp-*"); len(stale) > 0 {
		for _, f := range stale {
			pid, err := strconv.Atoi(f[strings.LastIndex(f, "-")+1:])
			if err != nil || !processAlive(pid) {
				_ = os.Remove(f)
			}
		}
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newSeriesProblem builds the ODE-RNN problem with its data.
func newSeriesProblem(o options, b backends.Backend, ctx *context.Context) (*problem, error) {
	sets, err := loadSeries(o)
	if err != nil {
		return nil, err
	}
	train, test := sets.train, sets.test
	if o.TrainSize > 0 && o.TrainSize < train.N {
		train = subsetSeries(train, o.TrainSize)
	}
	hidden := seriesProblems[o.Problem].hidden
	if o.Hidden > 0 {
		hidden = o.Hidden
	}
	m, err := zoo.NewODERNN(b, ctx, zoo.ODERNNConfig{Inputs: zoo.SeriesInputs(train.Channels),
		Hidden: hidden, Classes: len(train.Classes), Solver: solverFor(o, 1e-3)})
	if err != nil {
		return nil, err
	}
	batches, err := zoo.NewSeriesBatcher(train, o.Batch, o.Seed)
	if err != nil {
		return nil, err
	}
	evalSet, err := zoo.SeriesEvalBatches(subsetSeries(sets.eval, o.EvalSize), 512)
	if err != nil {
		return nil, err
	}
	final := test
	if o.FinalSize > 0 {
		final = subsetSeries(test, o.FinalSize)
	}
	fullSet, err := zoo.SeriesEvalBatches(final, 512)
	if err != nil {
		return nil, err
	}
	p := &problem{model: m, next: func() (*zoo.Batch, error) { return batches.Next(), nil }, stream: batches,
		eval: meanEval(m, evalSet), final: meanEval(m, fullSet), data: sets.about}
	p.updater = func(opt snoptx.Optimizer) (trainer.Updater, error) {
		return groupedUpdater(b, ctx, m, opt)
	}
	return p, nil
}

// groupedUpdater trains the ODE field with opt and the GRU and head with
// Adam (App. A.4), each with its own learning rate.
func groupedUpdater(b backends.Backend, ctx *context.Context, m *zoo.ODERNN, opt snoptx.Optimizer) (trainer.Updater, error) {
	adam, err := snoptx.Adam(restLR, 0)
	if err != nil {
		return nil, err
	}
	sa, err := snoptx.NewStepper(b, ctx, adam, m.GRUHeadParams())
	if err != nil {
		return nil, err
	}
	so, err := snoptx.NewStepper(b, ctx, opt, m.ODEParams())
	if err != nil {
		return nil, err
	}
	return snoptx.NewGroup(sa.Scope("gru_head"), so.Scope("ode"))
}

// subsetSeries returns the first n series (all if n ≤ 0 or n ≥ N), sharing storage.
func subsetSeries(ts *datasets.TimeSeries, n int) *datasets.TimeSeries {
	if n <= 0 || n >= ts.N {
		return ts
	}
	out := *ts
	m := ts.Length * ts.Channels
	out.N, out.X, out.Labels = n, ts.X[:n*m], ts.Labels[:n]
	if ts.Observed != nil {
		out.Observed = ts.Observed[:n*m]
	}
	if ts.Lengths != nil {
		out.Lengths = ts.Lengths[:n]
	}
	return &out
}
