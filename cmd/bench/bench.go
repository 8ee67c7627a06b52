package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/snopt-go/snopt/trainer"
)

func optimizerList(o options) []string {
	var out []string
	for _, name := range strings.Split(o.Optimizers, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func lrFor(o options, name string) float64 {
	if lr, ok := o.LR[name]; ok {
		return lr
	}
	return defaultLR[o.Problem][name]
}

// runBench runs every optimizer (with -seeds, once per seed), prints the
// tables (a diverged or failed run keeps its row, saying so) and fails when
// any run did not finish.
func runBench(o options) error {
	var results []*workerResult
	var problems []string
	var report strings.Builder
seeds:
	for s := range o.Seeds {
		seedOpts := o
		seedOpts.Seed, seedOpts.DataSeed = o.Seed+uint64(s), o.dataSeed()
		var seedResults []*workerResult
		for _, name := range optimizerList(o) {
			tag := fmt.Sprintf("%s-%s", o.Problem, name)
			if o.Seeds > 1 {
				tag += fmt.Sprintf("-seed%d", seedOpts.Seed)
			}
			r, err := spawn(seedOpts, name, lrFor(o, name), tag)
			if errors.Is(err, errInterrupted) {
				if len(seedResults) > 0 {
					report.WriteString(tables(seedOpts, seedResults))
					results = append(results, seedResults...)
				}
				break seeds
			}
			if err != nil {
				// A failed optimizer is a result, not the end of the comparison.
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				problems = append(problems, err.Error())
				r = &workerResult{Optimizer: name, LR: lrFor(o, name), Seed: seedOpts.Seed, Divergence: "failed: " + err.Error()}
			} else if r.DivergedAt > 0 {
				who := name
				if o.Seeds > 1 {
					who += fmt.Sprintf(" (seed %d)", seedOpts.Seed)
				}
				problems = append(problems, fmt.Sprintf("%s diverged at iteration %d", who, r.DivergedAt))
			}
			seedResults = append(seedResults, r)
			if r.Stopped {
				interrupted.Store(true) // the worker itself may have been signalled
				problems = append(problems, fmt.Sprintf("%s stopped by a signal after iteration %d", name, r.Iterations))
				report.WriteString(tables(seedOpts, seedResults))
				results = append(results, seedResults...)
				break seeds
			}
		}
		report.WriteString(tables(seedOpts, seedResults) + trueNLLLine(seedResults) + timeToTarget(finished(seedResults)))
		results = append(results, seedResults...)
	}
	if o.Seeds > 1 {
		report.WriteString(seedSummary(o, results))
	}
	fmt.Print(report.String())
	if err := os.WriteFile(filepath.Join(o.Out, o.Problem+"-tables.md"), []byte(report.String()), 0o644); err != nil {
		return err
	}
	if err := plots(o, results); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// trueNLLLine states the stand-in density's exact test NLL, when known.
func trueNLLLine(rs []*workerResult) string {
	for _, r := range rs {
		if r.TrueNLL != nil {
			return fmt.Sprintf("\nThe stand-in density's exact NLL on the same test rows: %.4f nats (the best any model can reach).\n", *r.TrueNLL)
		}
	}
	return ""
}

// seedSummary reports, per optimizer, the mean and the spread (sample
// standard deviation, min–max) of the final test metric over the seeds, with
// the mean time and memory per iteration.
func seedSummary(o options, rs []*workerResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s — over %d seeds (%d … %d)\n\n", o.Problem, o.Seeds, o.Seed, o.Seed+uint64(o.Seeds)-1)
	metric := "metric"
	for _, r := range rs {
		if r.MetricName != "" {
			metric = r.MetricName
		}
	}
	fmt.Fprintf(&b, "| optimizer | finished | test %s mean | sd | min | max | s/iter mean | peak RSS MiB mean |\n|---|---|---|---|---|---|---|---|\n", metric)
	for _, name := range optimizerList(o) {
		var vals, secs, rss []float64
		for _, r := range finished(rs) {
			if r.Optimizer == name {
				vals, secs, rss = append(vals, r.FinalMetric), append(secs, r.SecPerIter), append(rss, r.PeakRSSMiB)
			}
		}
		if len(vals) == 0 {
			fmt.Fprintf(&b, "| %s | 0/%d | – | – | – | – | – | – |\n", name, o.Seeds)
			continue
		}
		mean, sd := meanSD(vals)
		ms, _ := meanSD(secs)
		mr, _ := meanSD(rss)
		fmt.Fprintf(&b, "| %s | %d/%d | %.4f | %.4f | %.4f | %.4f | %.3f | %.0f |\n", name, len(vals), o.Seeds, mean, sd,
			slices.Min(vals), slices.Max(vals), ms, mr)
	}
	return b.String()
}

// meanSD is the mean and the sample standard deviation (0 for one value).
func meanSD(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x / float64(len(v))
	}
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		sd += (x - mean) * (x - mean) / float64(len(v)-1)
	}
	return mean, math.Sqrt(sd)
}

// finished are the runs that completed.
func finished(rs []*workerResult) []*workerResult {
	var out []*workerResult
	for _, r := range rs {
		if r.DivergedAt == 0 && r.Divergence == "" && !r.Stopped {
			out = append(out, r)
		}
	}
	return out
}

// status says how a run ended, for the tables' rows that have no metrics.
func (r *workerResult) status() string {
	switch {
	case r.DivergedAt > 0:
		return fmt.Sprintf("diverged at iteration %d", r.DivergedAt)
	case r.Divergence != "":
		return "failed"
	case r.Stopped:
		return fmt.Sprintf("stopped after iteration %d (continue with -resume)", r.Iterations)
	}
	return ""
}

// tables renders Tables 6, 7 and 2 for the runs as Markdown.
func tables(o options, rs []*workerResult) string {
	var adam *workerResult
	for _, r := range finished(rs) {
		if r.Optimizer == "adam" {
			adam = r
		}
	}
	ratio := func(v, ref float64) string {
		if adam == nil || ref == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", v/ref)
	}
	var b strings.Builder
	budget := o.Budget.String()
	if o.Budget <= 0 {
		budget = fmt.Sprintf("%d iterations", o.Iters)
	}
	seed := ""
	if o.Seeds > 1 {
		seed = fmt.Sprintf(", seed %d", o.Seed)
	}
	fmt.Fprintf(&b, "\n## %s — budget %s per optimizer, batch %d%s\n\n", o.Problem, budget, o.Batch, seed)
	for _, r := range rs {
		if r.Backend != "" {
			fmt.Fprintf(&b, "Backend: %s.\n\n", r.Backend)
			break
		}
	}
	for _, r := range rs {
		if r.Data != "" {
			fmt.Fprintf(&b, "Data: %s.\n\n", r.Data)
			break
		}
	}
	metric := "metric"
	for _, r := range rs {
		if r.MetricName != "" {
			metric = r.MetricName
		}
	}
	fmt.Fprintf(&b, "| optimizer | lr | iterations | s/iter (T6) | ×Adam | peak RSS MiB (T7) | ×Adam | NFE fwd/bwd | test %s (T2) | test loss |\n", metric)
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if st := r.status(); st != "" {
			fmt.Fprintf(&b, "| %s | %g | %s | – | – | – | – | – | – | – |\n", r.Optimizer, r.LR, st)
			continue
		}
		var ts, tm float64
		if adam != nil {
			ts, tm = adam.SecPerIter, adam.PeakRSSMiB
		}
		fmt.Fprintf(&b, "| %s | %g | %d | %.3f | %s | %.0f | %s | %.0f/%.0f | %.4f | %.4f |\n", r.Optimizer, r.LR,
			r.Iterations, r.SecPerIter, ratio(r.SecPerIter, ts), r.PeakRSSMiB, ratio(r.PeakRSSMiB, tm),
			r.NFEForward, r.NFEBackward, r.FinalMetric, r.FinalLoss)
	}
	return b.String()
}

// timeToTarget reports, from the periodic evaluations, when each optimizer
// first reached Adam's last periodic test metric (training seconds), and
// the ratio to Adam's own time.
func timeToTarget(rs []*workerResult) string {
	var adam *workerResult
	for _, r := range rs {
		if r.Optimizer == "adam" {
			adam = r
		}
	}
	if adam == nil {
		return ""
	}
	logs := map[string][]trainer.Record{}
	for _, r := range rs {
		recs, err := trainer.ReadCSV(r.CSV)
		if err != nil {
			return ""
		}
		logs[r.Optimizer] = recs
	}
	target := lastEval(logs["adam"])
	if math.IsNaN(target) {
		return ""
	}
	reached := func(recs []trainer.Record) float64 { return reachTime(recs, target, adam.MetricName == "accuracy") }
	adamTime := reached(logs["adam"])
	var b strings.Builder
	fmt.Fprintf(&b, "\nTime to reach Adam's last periodic test %s (%.4f):\n\n| optimizer | seconds | ×Adam's time |\n|---|---|---|\n", adam.MetricName, target)
	for _, r := range rs {
		t := reached(logs[r.Optimizer])
		if math.IsNaN(t) {
			fmt.Fprintf(&b, "| %s | not reached | – |\n", r.Optimizer)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.2f |\n", r.Optimizer, t, t/adamTime)
	}
	return b.String()
}

// reachTime is the training seconds at which recs' evaluations first reach
// target (NaN if never): at or above it when higher is better, else at or
// below.
func reachTime(recs []trainer.Record, target float64, higher bool) float64 {
	for _, rec := range recs {
		if math.IsNaN(rec.EvalMet) {
			continue
		}
		if (higher && rec.EvalMet >= target) || (!higher && rec.EvalMet <= target) {
			return rec.Seconds
		}
	}
	return math.NaN()
}

// lastEval is the last periodic evaluation of recs (NaN if none).
func lastEval(recs []trainer.Record) float64 {
	v := math.NaN()
	for _, rec := range recs {
		if !math.IsNaN(rec.EvalMet) {
			v = rec.EvalMet
		}
	}
	return v
}

// plots draws the loss and test metric against wall-clock and iterations.
func plots(o options, rs []*workerResult) error {
	var runs []*trainer.Result
	metric := ""
	for _, r := range rs {
		if r.CSV == "" {
			continue // failed before logging
		}
		recs, err := trainer.ReadCSV(r.CSV)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("%s (lr %g)", r.Optimizer, r.LR)
		if o.Seeds > 1 {
			label += fmt.Sprintf(", seed %d", r.Seed)
		}
		if st := r.status(); st != "" {
			label += ", " + st
		}
		runs = append(runs, &trainer.Result{Label: label, Records: recs})
		metric = r.MetricName
	}
	if len(runs) == 0 {
		return nil
	}
	if o.T1Policy != "fixed" {
		path := filepath.Join(o.Out, o.Problem+"-t1-vs-iterations.png")
		if err := trainer.PlotCurves(runs, trainer.T1, false, o.Problem, "t1", path); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		series  trainer.Series
		seconds bool
		name    string
		y       string
	}{
		{trainer.TrainLoss, true, "loss-vs-seconds", "training loss"},
		{trainer.TrainLoss, false, "loss-vs-iterations", "training loss"},
		{trainer.EvalMetric, true, metric + "-vs-seconds", "test " + metric},
		{trainer.EvalMetric, false, metric + "-vs-iterations", "test " + metric},
	} {
		path := filepath.Join(o.Out, fmt.Sprintf("%s-%s.png", o.Problem, p.name))
		if err := trainer.PlotCurves(runs, p.series, p.seconds, o.Problem, p.y, path); err != nil {
			return err
		}
	}
	return nil
}

// sweepGrid is the learning-rate grid of Table 5.
var sweepGrid = map[string][]float64{
	"adam":  {1e-4, 3e-4, 5e-4, 7e-4, 1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 3e-2, 5e-2},
	"sgd":   {1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 3e-2, 5e-2, 7e-2, 1e-1, 3e-1, 5e-1},
	"snopt": {1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 3e-2, 5e-2, 7e-2, 1e-1, 3e-1, 5e-1},
}

// runSweep tries learning rates of the grid (those given with -lr as a
// comma list per optimizer are not supported: the whole grid, or the
// sub-grid in -sweep-lrs) with short runs and reports the best per optimizer.
func runSweep(o options) error {
	var b strings.Builder
	budget := o.Budget.String()
	if o.Budget <= 0 {
		budget = fmt.Sprintf("%d iterations", o.Iters)
	}
	fmt.Fprintf(&b, "\n## learning-rate sweep on %s (%s per run)\n\n| optimizer | lr | iterations | test metric | test loss |\n|---|---|---|---|---|\n", o.Problem, budget)
	lo, hi, err := o.sweepBounds()
	if err != nil {
		return err
	}
	custom, err := o.grid()
	if err != nil {
		return err
	}
	var failed []string
	for _, name := range optimizerList(o) {
		var best *workerResult
		grid := sweepGrid[name]
		if custom != nil {
			grid = custom
		}
		for _, lr := range grid {
			if lr < lo || lr > hi {
				continue
			}
			tag := fmt.Sprintf("sweep-%s-%s-%g", o.Problem, name, lr)
			ro := o
			ro.RunTag = tag // each rate its own log and checkpoints, so -resume continues each
			r, err := spawn(ro, name, lr, tag)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: sweep %s lr %g failed: %v\n", name, lr, err)
				fmt.Fprintf(&b, "| %s | %g | failed | – | – |\n", name, lr)
				failed = append(failed, fmt.Sprintf("%s lr %g failed", name, lr))
				continue
			}
			if st := r.status(); st != "" {
				// Diverging at a large rate is a sweep's finding, not a failure.
				fmt.Fprintf(&b, "| %s | %g | %s | – | – |\n", name, lr, st)
				continue
			}
			fmt.Fprintf(&b, "| %s | %g | %d | %.4f | %.4f |\n", name, lr, r.Iterations, r.FinalMetric, r.FinalLoss)
			if best == nil || better(r, best) {
				best = r
			}
		}
		if best != nil {
			fmt.Fprintf(&b, "| **%s best** | **%g** | | **%.4f** | |\n", name, best.LR, best.FinalMetric)
		} else {
			failed = append(failed, fmt.Sprintf("no %s run in the sweep finished", name))
		}
	}
	fmt.Print(b.String())
	if err := os.WriteFile(filepath.Join(o.Out, o.Problem+"-sweep.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// better compares final metrics (accuracy up, NLL down).
func better(a, b *workerResult) bool {
	if a.MetricName == "accuracy" {
		return a.FinalMetric > b.FinalMetric
	}
	return a.FinalMetric < b.FinalMetric
}

// t1Summary condenses one Table 3 run's log.
type t1Summary struct {
	meanT1         float64 // t1 averaged over iterations
	firstRecovered int     // first iteration with t1 ≥ the recovered level (0: never)
	lastLoss       float64 // mean training loss of the last 20 iterations
}

func summarizeT1(recs []trainer.Record, recovered float64) t1Summary {
	var s t1Summary
	if len(recs) == 0 {
		return t1Summary{meanT1: math.NaN(), lastLoss: math.NaN()}
	}
	for _, r := range recs {
		s.meanT1 += r.T1 / float64(len(recs))
		if s.firstRecovered == 0 && r.T1 >= recovered {
			s.firstRecovered = r.Iter
		}
	}
	tail := recs[max(0, len(recs)-20):]
	for _, r := range tail {
		s.lastLoss += r.Loss / float64(len(tail))
	}
	return s
}

// runTable3 is the Table 3 analogue: the image model trained with the first
// optimizer of -optimizers (SNOpt unless -optimizers is given) for -iters iterations with a
// fixed t1 = 1, and with the first-order baseline and the feedback policy
// started from t1 = 1 and from an unstable 0.05; training time as % of the
// fixed run's, test accuracy and final t1.
func runTable3(o options) error {
	opt := optimizerList(o)[0]
	type cfg struct {
		policy string
		t1     float64
	}
	runsCfg := []cfg{{"fixed", 1}, {"baseline", 1}, {"feedback", 1}, {"fixed", 0.05}, {"baseline", 0.05}, {"feedback", 0.05}}
	var results []*workerResult
	var runs []*trainer.Result
	var logs [][]trainer.Record
	var problems []string
	for _, c := range runsCfg {
		oc := o
		oc.T1Policy, oc.T1 = c.policy, c.t1
		r, err := spawn(oc, opt, lrFor(o, opt), fmt.Sprintf("table3-%s-%s-%g", opt, c.policy, c.t1))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			problems = append(problems, err.Error())
			r = &workerResult{Optimizer: opt, T1Policy: c.policy, T1Start: c.t1, Divergence: "failed: " + err.Error()}
		}
		if r.DivergedAt > 0 {
			problems = append(problems, fmt.Sprintf("%s from t1=%g diverged at iteration %d", c.policy, c.t1, r.DivergedAt))
		}
		results = append(results, r)
		var recs []trainer.Record
		if r.CSV != "" {
			if recs, err = trainer.ReadCSV(r.CSV); err == nil {
				runs = append(runs, &trainer.Result{Label: fmt.Sprintf("%s from t1=%g", c.policy, c.t1), Records: recs})
			}
		}
		logs = append(logs, recs)
	}
	if results[0].status() != "" {
		return fmt.Errorf("the fixed t1 = 1 reference run did not finish: %s", strings.Join(problems, "; "))
	}
	ref := results[0].Seconds
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Table 3 analogue — %s, %s (lr %g), %d iterations, t1 policy lr %g, c %g, every %d, warm-up %d, decay %g, curvature %s\n\n",
		o.Problem, opt, lrFor(o, opt), o.Iters, o.T1LR, o.T1Reg, o.T1Every, o.T1Warmup, o.T1Decay, o.T1Curvature)
	fmt.Fprintf(&b, "| t1 policy | t1 start | t1 final | mean t1 | first iter t1 ≥ %g | NFE fwd/bwd | train loss (last 20 it) | train time (%% of fixed t1=1) | test accuracy |\n|---|---|---|---|---|---|---|---|---|\n", o.T1Recovered)
	for i, r := range results {
		if st := r.status(); st != "" {
			fmt.Fprintf(&b, "| %s | %g | %s | – | – | – | – | – | – |\n", r.T1Policy, r.T1Start, st)
			continue
		}
		sum := summarizeT1(logs[i], o.T1Recovered)
		first := "–"
		if r.T1Start >= o.T1Recovered {
			first = "n/a"
		} else if sum.firstRecovered > 0 {
			first = fmt.Sprint(sum.firstRecovered)
		}
		fmt.Fprintf(&b, "| %s | %g | %.3f | %.3f | %s | %.0f/%.0f | %.4f | %.1f%% | %.4f |\n", r.T1Policy, r.T1Start, r.T1Final,
			sum.meanT1, first, r.NFEForward, r.NFEBackward, sum.lastLoss, 100*r.Seconds/ref, r.FinalMetric)
	}
	fmt.Print(b.String())
	if err := os.WriteFile(filepath.Join(o.Out, o.Problem+"-table3.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := trainer.PlotCurves(runs, trainer.T1, false, "t1 over training", "t1", filepath.Join(o.Out, o.Problem+"-table3-t1.png")); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
