package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// seriesProblems are the paper's time-series problems: the archive's shapes,
// the batch size and hidden width of App. A.4.
var seriesProblems = map[string]struct{ batch, hidden int }{
	"spoad": {batch: 128, hidden: 32},
	"artwr": {batch: 256, hidden: 64},
	"chart": {batch: 512, hidden: 32},
}

// restLR is Adam's learning rate for the GRU and the head of the
// time-series problems (App. A.4 trains them with Adam whatever optimizer
// the ODE field is compared with).
const restLR = 3e-3

// loadSeries reads <Name>_TRAIN.ts and <Name>_TEST.ts from o.Data or, without
// it, writes deterministic stand-ins with the archive's shapes in that
// format under o.Out and reads them back (the loader's path either way),
// standardised per channel with the training statistics. It says which ran.
func loadSeries(o options) (train, test *datasets.TimeSeries, err error) {
	spec := datasets.Archive[o.Problem]
	dir := o.Data
	if dir == "" {
		dir = filepath.Join(o.Out, fmt.Sprintf("standin-seed%d", o.dataSeed()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		tr, te := datasets.StandIn(spec, o.dataSeed())
		for suffix, ts := range map[string]*datasets.TimeSeries{"_TRAIN.ts": tr, "_TEST.ts": te} {
			if err := writeOnce(filepath.Join(dir, spec.Name+suffix), func(w io.Writer) error { return datasets.WriteTS(w, ts) }); err != nil {
				return nil, nil, err
			}
		}
	} else {
		fmt.Fprintf(os.Stderr, "bench: %s: reading the archive's %s_TRAIN.ts and %s_TEST.ts from %s\n", o.Problem, spec.Name, spec.Name, dir)
	}
	if train, err = datasets.ReadTSFile(filepath.Join(dir, spec.Name+"_TRAIN.ts")); err != nil {
		return nil, nil, err
	}
	if test, err = datasets.ReadTSFile(filepath.Join(dir, spec.Name+"_TEST.ts")); err != nil {
		return nil, nil, err
	}
	if test.Channels != train.Channels || test.Length != train.Length || len(test.Classes) != len(train.Classes) {
		return nil, nil, fmt.Errorf("%s: the test set's shapes (%d channels, length %d, %d classes) differ from the training set's (%d, %d, %d)",
			o.Problem, test.Channels, test.Length, len(test.Classes), train.Channels, train.Length, len(train.Classes))
	}
	if _, _, err := train.Standardize(test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// writeOnce writes a deterministic stand-in file atomically unless an
// earlier run already wrote it.
func writeOnce(path string, write func(w io.Writer) error) error {
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
	train, test, err := loadSeries(o)
	if err != nil {
		return nil, err
	}
	if o.TrainSize > 0 && o.TrainSize < train.N {
		train = subsetSeries(train, o.TrainSize)
	}
	m, err := zoo.NewODERNN(b, ctx, zoo.ODERNNConfig{Inputs: zoo.SeriesInputs(train.Channels),
		Hidden: seriesProblems[o.Problem].hidden, Classes: len(train.Classes), Solver: solverFor(o, 1e-3)})
	if err != nil {
		return nil, err
	}
	batches, err := zoo.NewSeriesBatcher(train, o.Batch, o.Seed)
	if err != nil {
		return nil, err
	}
	evalSet, err := zoo.SeriesEvalBatches(subsetSeries(test, o.EvalSize), 512)
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
		eval: meanEval(m, evalSet), final: meanEval(m, fullSet)}
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
	out.N, out.X, out.Labels = n, ts.X[:n*ts.Length*ts.Channels], ts.Labels[:n]
	return &out
}
