package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/trainer"
)

// TestMain lets the test binary act as the bench (orchestrator and
// workers) when BENCH_AS_MAIN is set, so the tests below run real
// processes.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bench starts the bench as a process.
func bench(t *testing.T, args ...string) *exec.Cmd {
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "BENCH_AS_MAIN=1")
	return cmd
}

// TestCommandLineIsValidated: each bad command line exits 2 with a message
// naming the offending flag, before any work.
func TestCommandLineIsValidated(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-problem", "nope", "-iters", "1"}, "-problem nope"},
		{[]string{"-problem", "mnist", "-t1", "0", "-iters", "1"}, "-t1 0"},
		{[]string{"-problem", "circle", "-tol", "-1", "-iters", "1"}, "-tol -1"},
		{[]string{"-problem", "circle", "-tol", "NaN", "-iters", "1"}, "-tol NaN"},
		{[]string{"-lr", "adam=1e-3xyz", "-iters", "1"}, "adam=1e-3xyz"},
		{[]string{"-lr", "adamw=1e-3", "-iters", "1"}, `unknown optimizer "adamw"`},
		{[]string{"-optimizers", "adam,lbfgs", "-iters", "1"}, "-optimizers"},
		{[]string{"-batch", "-4", "-iters", "1"}, "-batch -4"},
		{[]string{"-problem", "circle"}, "-budget"},
		{[]string{"-iters", "1", "-checkpoint-every", "0"}, "-checkpoint-every 0"},
		{[]string{"-iters", "1", "-t1-decay", "1"}, "-t1-decay 1"},
		{[]string{"-iters", "1", "-t1-curvature", "cubic"}, "-t1-curvature"},
		{[]string{"-iters", "1", "-grid", "0.1,x"}, "-grid"},
		{[]string{"-iters", "1", "-sweep-range", "1:0.1"}, "-sweep-range"},
		{[]string{"-problem", "circle", "-t1-policy", "feedback", "-iters", "1"}, "-t1-policy feedback"},
		{[]string{"-iters", "1", "extra"}, `unexpected argument "extra"`},
		{[]string{"-iters", "1", "-data", "/no/such/dir"}, "-data /no/such/dir"},
		{[]string{"-iters", "1", "-lr-decay", "0.5"}, "-lr-decay-every 0: want > 0 with -lr-decay"},
		{[]string{"-iters", "1", "-lr-decay", "1.5", "-lr-decay-every", "3"}, "-lr-decay 1.5"},
		{[]string{"-problem", "gas", "-iters", "1", "-seeds", "0"}, "-seeds 0"},
		{[]string{"-problem", "gas", "-iters", "1", "-t1", "2"}, "-t1 2"},
		{[]string{"-sweep", "-iters", "1", "-seeds", "2"}, "-seeds 2: want 1 with -sweep"},
		{[]string{"-iters", "1", "-lr", "snopt=0.1,snopt=0.2"}, `a second learning rate for snopt`},
		{[]string{"-iters", "1", "-lr", "snopt=0.1", "-lr", "snopt=0.2"}, `a second learning rate for snopt`},
		{[]string{"-iters", "1", "-batch", "8", "-batch", "16"}, "-batch is given more than once"},
		{[]string{"-iters", "1", "-grid", "0.1,0.2"}, "-grid 0.1,0.2: want only with -sweep"},
		{[]string{"-iters", "1", "-sweep-range", "0.1:1"}, "-sweep-range 0.1:1: want only with -sweep"},
		{[]string{"-problem", "circle", "-iters", "1", "-tol", "1e-300"}, "-tol 1e-300: want 0 (the problem's default) or between"},
		{[]string{"-problem", "circle", "-iters", "1", "-tol", "3"}, "-tol 3"},
		{[]string{"-iters", "1", "-t1", "1e6"}, "-t1 1e+06: want between"},
		{[]string{"-iters", "1", "-t1", "1e-9"}, "-t1 1e-09: want between"},
		{[]string{"-problem", "circle", "-iters", "1", "-batch", "2000000000"}, "-batch 2000000000: this configuration needs about"},
		{[]string{"-problem", "circle", "-iters", "1", "-eval-size", "2000000000"}, "-eval-size 2000000000: this configuration needs about"},
		{[]string{"-problem", "circle", "-iters", "1", "-final-size", "2000000000"}, "-final-size 2000000000: this configuration needs about"},
		{[]string{"-problem", "mnist", "-iters", "1", "-width", "1000000"}, "-width 1000000: this configuration needs about"},
		{[]string{"-problem", "chart", "-iters", "1", "-batch", "2000000000"}, "-batch 2000000000: this configuration needs about"},
		{[]string{"-problem", "gas", "-iters", "1", "-width", "10000000"}, "-width 10000000: this configuration needs about"},
		{[]string{"-problem", "circle", "-iters", "1", "-split", "paper"}, "-split paper: want no -split for circle"},
		{[]string{"-problem", "chart", "-iters", "1", "-split", "random"}, "-split random"},
		{[]string{"-problem", "uea", "-iters", "1"}, "-data \"\": want the folder of a UEA archive data set"},
		{[]string{"-problem", "chart", "-iters", "1", "-uea-name", "X"}, "-uea-name X: want only with -problem uea"},
	} {
		_, _, err := parseArgs(c.args, &bytes.Buffer{})
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), c.want, "%v", c.args)
	}
	// A worker of a tabular problem gets the parent's "-width 0" (the
	// paper's widths) and must accept it.
	for _, p := range []string{"gas", "miniboone"} {
		o, _, err := parseArgs([]string{"-problem", p, "-iters", "1"}, &bytes.Buffer{})
		require.NoError(t, err)
		require.Zero(t, o.Width)
		_, _, err = parseArgs([]string{"-problem", p, "-iters", "1", "-width", "0"}, &bytes.Buffer{})
		require.NoError(t, err, "%s with -width 0 (as spawn passes it)", p)
	}
	_, _, err := parseArgs([]string{"-problem", "mnist", "-iters", "1", "-width", "0"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "-width 0")
	var stderr bytes.Buffer
	cmd := bench(t, "-problem", "nope", "-iters", "1")
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Contains(t, stderr.String(), "-problem nope: want one of mnist, fashion, cifar10, svhn, circle, spoad, artwr, chart, uea, gas, miniboone")
}

// TestHelpShowsExamplesAndHidesInternalFlags.
func TestHelpShowsExamplesAndHidesInternalFlags(t *testing.T) {
	var out bytes.Buffer
	_, _, err := parseArgs([]string{"-h"}, &out)
	require.Error(t, err)
	assert.Contains(t, out.String(), "Examples:")
	assert.Contains(t, out.String(), "-checkpoint-every")
	assert.NotContains(t, out.String(), "-worker")
}

// startUntilRows starts the bench with args and returns it once its log has
// at least rows rows (the test fails after two minutes without them).
func startUntilRows(t *testing.T, args []string, log string, rows int) *exec.Cmd {
	t.Helper()
	cmd := bench(t, args...)
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if recs, _ := trainer.ReadCSV(log); len(recs) >= rows {
			return cmd
		}
		require.True(t, time.Now().Before(deadline), "the first run made no progress")
		time.Sleep(5 * time.Millisecond)
	}
}

// resumeMatches resumes a killed bench (args include -resume) and requires
// its log to equal the uninterrupted run's fullLog row for row, wall-clock
// columns aside.
func resumeMatches(t *testing.T, args []string, log, fullLog string) {
	t.Helper()
	var out bytes.Buffer
	resumed := bench(t, args...)
	resumed.Stderr = &out
	require.NoError(t, resumed.Run(), out.String())
	assert.Contains(t, out.String(), "resumed snopt")
	assert.Equal(t, csvRows(t, fullLog), csvRows(t, log))
}

// csvRows reads a log without its wall-clock columns.
func csvRows(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, ",")
		out = append(out, strings.Join(append(f[:1:1], f[3:]...), ","))
	}
	return out
}

// TestKillAndResumeIsBitIdentical: a bench killed with SIGKILL mid-run
// takes its worker with it; a second bench on the same folder refuses while
// the first runs; the resumed run's log equals, row for row, an
// uninterrupted run's (wall-clock columns aside), with no row lost or
// duplicated.
func TestKillAndResumeIsBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench three times")
	}
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"-problem", "circle", "-iters", "30", "-checkpoint-every", "4", "-batch", "16",
			"-eval-size", "16", "-final-size", "32", "-eval-every", "5", "-optimizers", "snopt", "-refresh", "7",
			"-progress=false", "-out", out}, extra...)
	}
	full, part := filepath.Join(dir, "full"), filepath.Join(dir, "part")
	require.NoError(t, bench(t, args(full)...).Run())

	log := filepath.Join(part, "circle-snopt.csv")
	first := startUntilRows(t, args(part), log, 14)
	var stderr bytes.Buffer
	second := bench(t, args(part)...)
	second.Stderr = &stderr
	require.Error(t, second.Run(), "a second bench on the same -out must refuse")
	assert.Contains(t, stderr.String(), "another bench")

	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	// The worker dies with it: the log stops growing.
	time.Sleep(1500 * time.Millisecond)
	before, err := os.ReadFile(log)
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond)
	after, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, before, after, "a worker outlived its orchestrator")
	require.Less(t, strings.Count(string(after), "\n"), 31, "the run was killed before it finished")

	resumeMatches(t, args(part, "-resume"), log, filepath.Join(full, "circle-snopt.csv"))

	// Resuming with another learning rate is refused, naming it.
	var out bytes.Buffer
	other := bench(t, args(part, "-resume", "-lr", "snopt=0.02")...)
	other.Stderr = &out
	require.Error(t, other.Run())
	assert.Contains(t, out.String(), `lr: saved "0.01", now "0.02"`)
}

// TestDivergedRunIsReported: a learning rate that blows up shows as
// "diverged at iteration N" in the table and the bench exits 1.
func TestDivergedRunIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench")
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-problem", "circle", "-iters", "40", "-batch", "16", "-eval-size", "16", "-final-size", "32",
		"-optimizers", "sgd,adam", "-lr", "sgd=1e6", "-progress=false", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, stderr.String())
	assert.Equal(t, 1, exit.ExitCode())
	assert.Regexp(t, `\| sgd \| 1e\+06 \| diverged at iteration \d+ \|`, stdout.String())
	assert.Contains(t, stdout.String(), "| adam | 0.03 | 40 |")
	assert.Regexp(t, `sgd diverged at iteration \d+`, stderr.String())
}

// TestSignalStopsCleanlyAndResumes: a SIGINT to a running bench lets the
// worker finish its iteration and write a checkpoint, writes the partial
// tables, starts no further run and exits 130 with the command that
// resumes; that command continues bit-identically to an uninterrupted run.
// Two signals in a row end it at once.
func TestSignalStopsCleanlyAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench four times")
	}
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"-problem", "circle", "-checkpoint-every", "25", "-batch", "16",
			"-eval-size", "16", "-final-size", "32", "-eval-every", "5", "-refresh", "7",
			"-progress=false", "-out", out}, extra...)
	}
	full, part := filepath.Join(dir, "full"), filepath.Join(dir, "part")
	require.NoError(t, bench(t, args(full, "-optimizers", "snopt", "-iters", "40")...).Run())

	log := filepath.Join(part, "circle-snopt.csv")
	first := startUntilRows(t, args(part, "-optimizers", "snopt,adam", "-iters", "40"), log, 8)
	require.NoError(t, first.Process.Signal(syscall.SIGINT))
	err := first.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 130, exit.ExitCode())
	recs, err := trainer.ReadCSV(log)
	require.NoError(t, err)
	stoppedAt := len(recs)
	require.Less(t, stoppedAt, 40, "stopped before the end")
	latest, err := os.ReadFile(filepath.Join(part, "circle-snopt-ckpt", "LATEST"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("ckpt-%09d", stoppedAt), string(latest), "a checkpoint at the last logged iteration")
	tables, err := os.ReadFile(filepath.Join(part, "circle-tables.md"))
	require.NoError(t, err)
	assert.Contains(t, string(tables), fmt.Sprintf("stopped after iteration %d", stoppedAt))
	_, err = os.Stat(filepath.Join(part, "circle-adam.csv"))
	assert.True(t, os.IsNotExist(err), "no run starts after the signal")

	// Resumed under another spelling of the same backend.
	var out bytes.Buffer
	resumed := bench(t, args(part, "-optimizers", "snopt,adam", "-iters", "40", "-resume")...)
	resumed.Env = append(resumed.Env, "GOMLX_BACKEND=go")
	resumed.Stderr = &out
	require.NoError(t, resumed.Run(), out.String())
	assert.Contains(t, out.String(), "resumed snopt")
	assert.Equal(t, csvRows(t, filepath.Join(full, "circle-snopt.csv")), csvRows(t, log))

	// Two signals: out at once, the worker with it.
	again := filepath.Join(dir, "again")
	second := startUntilRows(t, args(again, "-optimizers", "snopt", "-iters", "100000"), filepath.Join(again, "circle-snopt.csv"), 3)
	require.NoError(t, second.Process.Signal(syscall.SIGINT))
	require.NoError(t, second.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 130, exit.ExitCode())
	case <-time.After(20 * time.Second):
		_ = second.Process.Kill()
		t.Fatal("a second signal did not end the bench")
	}
}

// TestResumeCommandAddsResume: the printed command is the same flags with
// -resume once, quoted for a shell.
func TestResumeCommandAddsResume(t *testing.T) {
	assert.Equal(t, "-problem circle -out 'my dir' -resume", resumeCommand([]string{"-problem", "circle", "-out", "my dir"}))
	assert.Equal(t, "-resume -problem circle", resumeCommand([]string{"-resume=true", "-problem", "circle"}))
}
