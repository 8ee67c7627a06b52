package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// reproPlan is one problem's part of a reproduction profile: the bench
// flags of its runs, besides -problem, -seeds and -out.
type reproPlan struct {
	problem string
	args    []string
}

// reproProfile is a named set of bench runs that together regenerate the
// paper's Tables 2, 3, 6, 7 and Figures 1/11, 8 and 9.
type reproProfile struct {
	name  string
	about string
	seeds int
	// main are the Table 2/6/7 and Figure 1/11 runs: every optimizer, seeds.
	main []reproPlan
	// sweep are the Figure 9 runs: each optimizer at each of sweepLRs, one seed.
	sweep    []reproPlan
	sweepLRs map[string][]float64
	// table3 are the free-horizon runs: Adam (as the paper's Table 3) with
	// t1 fixed at 1, the first-order baseline and the feedback policy.
	table3 []reproPlan
}

// reproProfiles are the profiles -reproduce runs. Budgets are training
// wall-clock per run, equal for every optimizer of a problem.
var reproProfiles = map[string]reproProfile{
	"quick": {
		name:  "quick",
		about: "a smoke test of the whole pipeline (two iterations per run on tiny sets): its numbers say nothing about the optimizers",
		seeds: 1,
		main: []reproPlan{
			{"mnist", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-width", "2", "-eval-size", "16", "-final-size", "32"}},
			{"svhn", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-width", "2", "-eval-size", "16", "-final-size", "32"}},
			{"cifar10", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-width", "2", "-eval-size", "16", "-final-size", "32"}},
			{"spoad", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-hidden", "4", "-eval-size", "16", "-final-size", "32"}},
			{"artwr", []string{"-iters", "2", "-eval-every", "1", "-train-size", "32", "-batch", "16", "-hidden", "4", "-eval-size", "16", "-final-size", "32"}},
			{"chart", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-hidden", "4", "-eval-size", "16", "-final-size", "32"}},
			{"circle", []string{"-iters", "2", "-eval-every", "1", "-batch", "16", "-eval-size", "16", "-final-size", "32"}},
			{"gas", []string{"-iters", "2", "-eval-every", "1", "-batch", "16", "-width", "4", "-eval-size", "16", "-final-size", "32"}},
			{"miniboone", []string{"-iters", "2", "-eval-every", "1", "-batch", "16", "-width", "4", "-eval-size", "16", "-final-size", "32"}},
		},
		sweep:    []reproPlan{{"circle", []string{"-iters", "2", "-eval-every", "1", "-batch", "16", "-eval-size", "16", "-final-size", "32"}}},
		sweepLRs: map[string][]float64{"adam": {1e-3, 1e-2}, "sgd": {1e-2, 1e-1}, "snopt": {1e-2, 1e-1}},
		table3:   []reproPlan{{"cifar10", []string{"-iters", "2", "-eval-every", "1", "-train-size", "64", "-batch", "16", "-width", "2", "-eval-size", "16", "-final-size", "32", "-t1-every", "1"}}},
	},
	"full": {
		name: "full",
		about: "every problem, three seeds, equal training wall-clock per optimizer; sized to finish in about 85 minutes on 2 cores " +
			"(two runs side by side, one core each), so the longer problems stop well before the paper's epochs",
		seeds: 3,
		main: []reproPlan{
			{"mnist", []string{"-budget", "45s", "-eval-seconds", "4", "-eval-size", "256", "-final-size", "2000"}},
			{"svhn", []string{"-budget", "45s", "-eval-seconds", "4", "-train-size", "10000", "-eval-size", "256", "-final-size", "2000"}},
			{"cifar10", []string{"-budget", "45s", "-eval-seconds", "4", "-train-size", "10000", "-eval-size", "256", "-final-size", "2000"}},
			{"spoad", []string{"-budget", "45s", "-eval-seconds", "4", "-eval-size", "256", "-final-size", "1000"}},
			{"artwr", []string{"-budget", "60s", "-eval-seconds", "5", "-eval-size", "256"}},
			{"chart", []string{"-budget", "60s", "-eval-seconds", "5", "-eval-size", "256", "-final-size", "1000"}},
			{"circle", []string{"-budget", "20s", "-eval-seconds", "1", "-eval-size", "1000"}},
			{"gas", []string{"-budget", "60s", "-eval-seconds", "5", "-batch", "250", "-eval-size", "500", "-final-size", "2000"}},
			{"miniboone", []string{"-budget", "45s", "-eval-seconds", "4", "-eval-size", "500", "-final-size", "2000"}},
		},
		sweep: []reproPlan{
			{"mnist", []string{"-budget", "30s", "-eval-seconds", "10", "-eval-size", "256", "-final-size", "1000"}},
			{"chart", []string{"-budget", "45s", "-eval-seconds", "15", "-eval-size", "256", "-final-size", "1000"}},
			{"circle", []string{"-budget", "20s", "-eval-seconds", "5", "-eval-size", "1000"}},
			{"svhn", []string{"-budget", "30s", "-eval-seconds", "10", "-train-size", "10000", "-eval-size", "256", "-final-size", "1000"}},
			{"cifar10", []string{"-budget", "30s", "-eval-seconds", "10", "-train-size", "10000", "-eval-size", "256", "-final-size", "1000"}},
			{"spoad", []string{"-budget", "30s", "-eval-seconds", "10", "-eval-size", "256", "-final-size", "1000"}},
			{"artwr", []string{"-budget", "45s", "-eval-seconds", "15", "-eval-size", "256"}},
			{"gas", []string{"-budget", "45s", "-eval-seconds", "15", "-batch", "250", "-eval-size", "500", "-final-size", "1000"}},
			{"miniboone", []string{"-budget", "30s", "-eval-seconds", "10", "-eval-size", "500", "-final-size", "1000"}},
		},
		// A decade of each optimizer's Table 5 grid around its defaults.
		sweepLRs: map[string][]float64{"adam": {1e-3, 3e-3, 1e-2}, "sgd": {3e-3, 1e-2, 3e-2}, "snopt": {3e-3, 1e-2, 3e-2}},
		table3: []reproPlan{
			{"mnist", []string{"-iters", "100", "-eval-every", "50", "-eval-size", "256", "-final-size", "2000", "-t1-every", "10"}},
			{"cifar10", []string{"-iters", "100", "-eval-every", "50", "-train-size", "10000", "-eval-size", "256", "-final-size", "2000", "-t1-every", "10"}},
		},
	},
}

// reproJob is one worker run of a reproduction.
type reproJob struct {
	kind      string // "main", "sweep" or "table3"
	o         options
	optimizer string
	lr        float64
	tag       string
	result    *workerResult
	err       error
	reused    bool
}

// reproduction is what -reproduce was asked.
type reproduction struct {
	profile reproProfile
	out     string // runs (logs, checkpoints, results)
	page    string // the folder of reproduction.md and its figures
	jobs    int    // runs side by side
	resume  bool
	args    []string // the command line, for the page
	// only, when set, restricts the profile to these problems.
	only []string
	// pageOnly writes the page from the results there are, running nothing.
	pageOnly bool
}

// errNotRun marks a job -page-only found no result for.
var errNotRun = errors.New("not run yet")

// reproduceFlags are the flags -reproduce takes besides itself.
var reproduceFlags = []string{"reproduce", "out", "page", "jobs", "only", "page-only", "resume", "memory-check", "progress"}

// validateReproduce checks a -reproduce command line: a known profile, a
// positive -jobs, and no flag of single runs (the profile sets them).
func validateReproduce(md mode, set map[string]bool) error {
	if _, ok := reproProfiles[md.reproduce]; !ok {
		names := slices.Sorted(maps.Keys(reproProfiles))
		if md.reproduce == "" {
			return fmt.Errorf("-page and -jobs go with -reproduce (%s)", strings.Join(names, " or "))
		}
		return fmt.Errorf("-reproduce %q: want %s", md.reproduce, strings.Join(names, " or "))
	}
	if md.jobs < 1 {
		return fmt.Errorf("-jobs %d: want ≥ 1", md.jobs)
	}
	for _, p := range md.only {
		found := false
		for _, plan := range reproProfiles[md.reproduce].main {
			found = found || plan.problem == p
		}
		if !found {
			return fmt.Errorf("-only %s: %q is not a problem of the profile", strings.Join(md.only, ","), p)
		}
	}
	if md.page == "" {
		return fmt.Errorf(`-page "": want a folder`)
	}
	for name := range set {
		if !slices.Contains(reproduceFlags, name) {
			return fmt.Errorf("-%s does not go with -reproduce: the profile sets every run's flags (allowed: -%s)", name, strings.Join(reproduceFlags[1:], ", -"))
		}
	}
	return nil
}

// reproJobs expands a profile into its runs, each with options validated
// by the bench's own parser (so a profile cannot hold what a user could not
// type) and its own log and checkpoint folder.
func reproJobs(r reproduction) ([]*reproJob, error) {
	var jobs []*reproJob
	keep := func(plans []reproPlan) []reproPlan {
		if len(r.only) == 0 {
			return plans
		}
		var out []reproPlan
		for _, p := range plans {
			if slices.Contains(r.only, p.problem) {
				out = append(out, p)
			}
		}
		return out
	}
	r.profile.main, r.profile.sweep, r.profile.table3 = keep(r.profile.main), keep(r.profile.sweep), keep(r.profile.table3)
	parse := func(p reproPlan, extra ...string) (options, error) {
		args := append([]string{"-problem", p.problem, "-out", filepath.Join(r.out, p.problem), "-progress=false"}, p.args...)
		o, _, err := parseArgs(append(args, extra...), io.Discard)
		if err != nil {
			return o, fmt.Errorf("profile %s, %s: %w", r.profile.name, p.problem, err)
		}
		o.Resume = r.resume
		return o, nil
	}
	for _, p := range r.profile.main {
		o, err := parse(p, "-seeds", fmt.Sprint(r.profile.seeds))
		if err != nil {
			return nil, err
		}
		for s := range r.profile.seeds {
			so := o
			so.Seed, so.DataSeed = o.Seed+uint64(s), o.dataSeed()
			for _, name := range knownOptimizers {
				so.RunTag = fmt.Sprintf("%s-%s-seed%d", p.problem, name, so.Seed)
				jobs = append(jobs, &reproJob{kind: "main", o: so, optimizer: name, lr: lrFor(so, name), tag: so.RunTag})
			}
		}
	}
	for _, p := range r.profile.sweep {
		o, err := parse(p)
		if err != nil {
			return nil, err
		}
		for _, name := range knownOptimizers {
			for _, lr := range r.profile.sweepLRs[name] {
				so := o
				so.RunTag = fmt.Sprintf("sweep-%s-%s-%g", p.problem, name, lr)
				jobs = append(jobs, &reproJob{kind: "sweep", o: so, optimizer: name, lr: lr, tag: so.RunTag})
			}
		}
	}
	for _, p := range r.profile.table3 {
		o, err := parse(p, "-optimizers", "adam")
		if err != nil {
			return nil, err
		}
		for _, policy := range []string{"fixed", "baseline", "feedback"} {
			so := o
			so.T1Policy = policy
			so.RunTag = fmt.Sprintf("table3-%s-%s", p.problem, policy)
			jobs = append(jobs, &reproJob{kind: "table3", o: so, optimizer: "adam", lr: lrFor(so, "adam"), tag: so.RunTag})
		}
	}
	return jobs, nil
}

// reusable returns the finished result of job from an earlier invocation:
// its result file, written under the same options (resuming aside).
func reusable(job *reproJob) *workerResult {
	want := job.o
	want.Resume = false
	wantJSON, err := json.Marshal(workerOptions(want, job.optimizer, job.lr))
	if err != nil {
		return nil
	}
	had, err := os.ReadFile(filepath.Join(job.o.Out, job.tag+".options.json"))
	if err != nil {
		return nil
	}
	var prev options
	if json.Unmarshal(had, &prev) != nil {
		return nil
	}
	prev.Resume = false
	prevJSON, err := json.Marshal(prev)
	if err != nil || !bytes.Equal(prevJSON, wantJSON) {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(job.o.Out, job.tag+".json"))
	if err != nil {
		return nil
	}
	// A worker writes its result once it finished, diverged or was
	// stopped; only a stopped run has more to do.
	var res workerResult
	if json.Unmarshal(data, &res) != nil || res.Stopped {
		return nil
	}
	return &res
}

// runReproduce runs every job of the profile, r.jobs at a time, then writes
// the page. A run that fails or diverges keeps its row (saying so); the
// command then exits 1 after writing the page.
func runReproduce(r reproduction) error {
	jobs, err := reproJobs(r)
	if err != nil {
		return err
	}
	for _, dir := range []string{r.out, r.page} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	if r.pageOnly {
		missing := 0
		for _, j := range jobs {
			if j.result = reusable(j); j.result != nil {
				j.reused = true
			} else {
				j.err, missing = errNotRun, missing+1
			}
		}
		fmt.Printf("bench: -page-only: %d of %d runs have results; the page marks the others \"not run\"\n", len(jobs)-missing, len(jobs))
		return writePage(r, jobs, time.Since(start))
	}
	var env []string
	if r.jobs > 1 {
		// Side by side, each run gets one core, so that their timings are
		// comparable with each other.
		env = []string{"GOMAXPROCS=1"}
	}
	var mu sync.Mutex
	done := 0
	report := func(j *reproJob) {
		mu.Lock()
		defer mu.Unlock()
		done++
		what := "failed: " + fmt.Sprint(j.err)
		if j.result != nil {
			what = fmt.Sprintf("%s %.4f after %d iterations (%.0f s)", j.result.MetricName, j.result.FinalMetric, j.result.Iterations, j.result.Seconds)
			if st := j.result.status(); st != "" {
				what = st
			}
		}
		if j.reused {
			what += ", from an earlier invocation"
		}
		fmt.Printf("[%d/%d %s] %s %s %s lr %g seed %d: %s\n", done, len(jobs), time.Since(start).Round(time.Second), j.kind, j.o.Problem, j.optimizer, j.lr, j.o.Seed, what)
	}
	queue := make(chan *reproJob)
	// Table 3 compares wall-clock between its runs: each runs alone, the
	// other lanes idle, so that no neighbour's load differs between them.
	var alone sync.RWMutex
	var wg sync.WaitGroup
	for range max(1, r.jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if r.resume {
					if res := reusable(j); res != nil {
						j.result, j.reused = res, true
						report(j)
						continue
					}
				}
				if err := os.MkdirAll(j.o.Out, 0o755); err != nil {
					j.err = err
					report(j)
					continue
				}
				logf, err := os.Create(filepath.Join(j.o.Out, j.tag+".log"))
				if err != nil {
					j.err = err
					report(j)
					continue
				}
				if j.kind == "table3" {
					alone.Lock()
				} else {
					alone.RLock()
				}
				j.result, j.err = spawnWith(j.o, j.optimizer, j.lr, j.tag, workerIO{stdout: logf, stderr: logf, env: env})
				if j.kind == "table3" {
					alone.Unlock()
				} else {
					alone.RUnlock()
				}
				_ = logf.Close()
				if errors.Is(j.err, errInterrupted) {
					continue
				}
				report(j)
			}
		}()
	}
	for _, j := range jobs {
		if interrupted.Load() {
			break
		}
		queue <- j
	}
	close(queue)
	wg.Wait()
	if interrupted.Load() {
		return errInterrupted
	}
	if err := writePage(r, jobs, time.Since(start)); err != nil {
		return err
	}
	var failed []string
	for _, j := range jobs {
		if j.err != nil {
			failed = append(failed, fmt.Sprintf("%s %s lr %g seed %d: %v", j.tag, j.optimizer, j.lr, j.o.Seed, j.err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d runs failed (their rows say so): %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// machineLine describes this machine for the page.
func machineLine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem, _ := machineMemory()
	return fmt.Sprintf("%s, %d cores, %s memory, %s/%s, %s", cpu, runtime.NumCPU(), humanBytes(mem), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// commitLine names the source's commit (and whether it had changes, the
// page's own files in page aside).
func commitLine(page string) string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	exclude := ":(exclude)" + filepath.ToSlash(filepath.Join(page, "reproduction*"))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", exclude).Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

// meanSDs is mean ± sd of v as text, scaled.
func meanSDs(v []float64, scale float64, digits int) string {
	if len(v) == 0 {
		return "–"
	}
	m, sd := meanSD(v)
	if len(v) == 1 {
		return fmt.Sprintf("%.*f", digits, m*scale)
	}
	return fmt.Sprintf("%.*f ± %.*f", digits, m*scale, digits, sd*scale)
}

// paperTable2, paperTable6 and paperTable7 are the paper's Tables 2 (test
// accuracy in %, or NLL), 6 (seconds per iteration on its GPU) and 7 (GB of
// GPU memory), per problem: Adam, SGD, SNOpt.
var (
	paperTable2 = map[string][3]float64{
		"mnist": {98.83, 98.68, 98.99}, "svhn": {91.92, 93.34, 95.77}, "cifar10": {77.41, 76.42, 79.11},
		"spoad": {94.64, 97.70, 97.41}, "artwr": {84.14, 85.82, 90.23}, "chart": {93.29, 95.93, 96.63},
		"circle": {0.90, 0.94, 0.86}, "gas": {-6.42, -4.58, -7.55}, "miniboone": {13.10, 13.75, 12.50},
	}
	paperTable6 = map[string][3]float64{
		"mnist": {0.15, 0.15, 0.15}, "svhn": {0.78, 0.81, 0.68}, "cifar10": {0.17, 0.17, 0.20},
		"spoad": {5.24, 5.23, 5.18}, "artwr": {9.95, 10.00, 10.05}, "chart": {14.79, 14.77, 14.89},
		"circle": {0.34, 0.33, 0.94}, "gas": {2.25, 2.28, 4.34}, "miniboone": {0.65, 0.74, 1.04},
	}
	paperTable7 = map[string][3]float64{
		"mnist": {1.23, 1.23, 1.64}, "svhn": {1.29, 1.28, 1.81}, "cifar10": {1.29, 1.28, 1.81},
		"spoad": {1.39, 1.39, 1.49}, "artwr": {1.18, 1.18, 1.28}, "chart": {1.24, 1.24, 1.34},
		"circle": {1.13, 1.13, 1.15}, "gas": {1.17, 1.17, 1.34}, "miniboone": {1.28, 1.28, 1.68},
	}
	// paperTable3 is CIFAR-10's Table 3: training time in % of t1 = 1's and
	// accuracy in %, for the first-order baseline and the feedback policy.
	paperTable3 = map[string][2]float64{"baseline": {96, 76.61}, "feedback": {81, 77.82}}
)

// problemTitle is the paper's name of a problem.
var problemTitle = map[string]string{
	"mnist": "MNIST", "svhn": "SVHN", "cifar10": "CIFAR10", "spoad": "SpoAD", "artwr": "ArtWR", "chart": "CharT",
	"circle": "Circle", "gas": "Gas", "miniboone": "Miniboone", "fashion": "Fashion-MNIST", "uea": "UEA",
}

// optimizerTitle is how the page names an optimizer.
var optimizerTitle = map[string]string{"adam": "Adam", "sgd": "SGD", "snopt": "SNOpt"}
