package trainer

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/snoptx"
)

// stopRun trains noisyQuad with SGD on a seeded stream for iters iterations,
// closing Stop during iteration stopAt (0: never).
func stopRun(t *testing.T, dir, csv string, seed uint64, iters, stopAt int, resume bool) (*Result, *quadModel, error) {
	ctx := context.New()
	m := noisyQuad{newQuad(ctx, 0)}
	opt, err := snoptx.SGD().LearningRate(0.1).Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	data := newNoiseStream(seed)
	stop := make(chan struct{})
	hook := func(iter int, _ *StepResult) error {
		if iter == stopAt {
			close(stop) // as a signal handler would, mid-iteration
		}
		return nil
	}
	res, err := Run(m, st, data.next, func() (float64, float64, error) { return m.Evaluate(nil) }, Config{
		Iterations: iters, EvalEvery: 4, CSV: filepath.Join(dir, csv), CheckpointDir: filepath.Join(dir, csv+"-ck"),
		CheckpointEvery: 5, Resume: resume, Label: "sgd", Hook: hook, Settings: map[string]string{"seed": "x"},
		State: map[string]Stateful{"data": data}, Out: io.Discard, Stop: stop})
	return res, m.quadModel, err
}

// TestStopCheckpointsAndResumesBitIdentically: a run stopped during
// iteration 7 (checkpoints every 5) finishes that iteration, writes a
// checkpoint there and returns a *StoppedError; resuming it gives the log
// and parameters of an uninterrupted run, bit for bit.
func TestStopCheckpointsAndResumesBitIdentically(t *testing.T) {
	dir := t.TempDir()
	_, mFull, err := stopRun(t, dir, "full.csv", 3, 12, 0, false)
	require.NoError(t, err)

	res, _, err := stopRun(t, dir, "part.csv", 3, 12, 7, false)
	var stopped *StoppedError
	require.ErrorAs(t, err, &stopped)
	assert.ErrorIs(t, err, ErrStopped)
	assert.Equal(t, 7, stopped.Iteration)
	assert.Equal(t, 7, res.Iterations)
	latest, err := os.ReadFile(filepath.Join(dir, "part.csv-ck", "LATEST"))
	require.NoError(t, err)
	assert.Equal(t, "ckpt-000000007", string(latest), "a checkpoint at the stop, not only the periodic one at 5")

	res, mPart, err := stopRun(t, dir, "part.csv", 3, 12, 0, true)
	require.NoError(t, err)
	assert.Equal(t, 12, res.Iterations)
	assert.Equal(t, logRows(t, filepath.Join(dir, "full.csv")), logRows(t, filepath.Join(dir, "part.csv")))
	assert.Equal(t, tensors.MustCopyFlatData[float64](mFull.w.MustValue()), tensors.MustCopyFlatData[float64](mPart.w.MustValue()))
}

// TestResumeRefusesAStateFileFromAnotherRun: a checkpoint whose stream
// state was replaced by another run's (another seed, same settings
// otherwise) is ErrResume, not a silent continuation of the other stream.
func TestResumeRefusesAStateFileFromAnotherRun(t *testing.T) {
	dir := t.TempDir()
	_, _, err := stopRun(t, dir, "a.csv", 1, 5, 0, false)
	require.NoError(t, err)
	_, _, err = stopRun(t, dir, "b.csv", 2, 5, 0, false)
	require.NoError(t, err)
	ck := func(run string) string {
		latest, err := os.ReadFile(filepath.Join(dir, run+"-ck", "LATEST"))
		require.NoError(t, err)
		return filepath.Join(dir, run+"-ck", string(latest), stateFile("data"))
	}
	other, err := os.ReadFile(ck("b.csv"))
	require.NoError(t, err)
	mine, err := os.ReadFile(ck("a.csv"))
	require.NoError(t, err)
	require.NotEqual(t, mine, other)
	require.NoError(t, os.WriteFile(ck("a.csv"), other, 0o644))
	_, _, err = stopRun(t, dir, "a.csv", 1, 8, 0, true)
	require.ErrorIs(t, err, ErrResume)
	assert.ErrorContains(t, err, "state-data.bin does not belong to this checkpoint")
	// Restored, the same file resumes.
	require.NoError(t, os.WriteFile(ck("a.csv"), mine, 0o644))
	_, _, err = stopRun(t, dir, "a.csv", 1, 8, 0, true)
	require.NoError(t, err)
}

// TestResumeCleansKilledCheckpointWrites: the .tmp-* folders and LATEST.tmp
// a checkpoint write killed midway leaves are removed on the next start,
// resumed or fresh, and the checkpoints stay.
func TestResumeCleansKilledCheckpointWrites(t *testing.T) {
	dir := t.TempDir()
	_, _, err := stopRun(t, dir, "a.csv", 1, 5, 0, false)
	require.NoError(t, err)
	ckDir := filepath.Join(dir, "a.csv-ck")
	for _, n := range []string{".tmp-123", ".tmp-456"} {
		require.NoError(t, os.MkdirAll(filepath.Join(ckDir, n, "sub"), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(ckDir, "LATEST.tmp"), []byte("ckpt-0"), 0o644))
	_, _, err = stopRun(t, dir, "a.csv", 1, 6, 0, true)
	require.NoError(t, err)
	left, err := filepath.Glob(filepath.Join(ckDir, "*tmp*"))
	require.NoError(t, err)
	hidden, err := filepath.Glob(filepath.Join(ckDir, ".tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, append(left, hidden...))
	_, err = os.Stat(filepath.Join(ckDir, "LATEST"))
	assert.NoError(t, err)
	assert.False(t, errors.Is(err, os.ErrNotExist))
}

// TestProgressWithoutATerminalWritesLines: Progress on a writer that is not
// a terminal writes periodic lines, never a bar's carriage-return frames.
func TestProgressWithoutATerminalWritesLines(t *testing.T) {
	old := progressEvery
	progressEvery = 0 // a line per iteration
	defer func() { progressEvery = old }()
	var out strings.Builder
	m, st := setup(t, 0)
	_, err := Run(m, st, next, nil, Config{Iterations: 3, Progress: true, Label: "sgd", Out: &out})
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "\r")
	assert.Equal(t, 3, strings.Count(out.String(), "trainer: sgd iteration"))
	assert.Contains(t, out.String(), "iteration 3/3")
	progressEvery = time.Hour
	out.Reset()
	m, st = setup(t, 0)
	_, err = Run(m, st, next, nil, Config{Iterations: 3, Progress: true, Label: "sgd", Out: &out})
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out.String(), "trainer: sgd iteration"), "only the final line")
}

// TestEvalSecondsSpacesEvaluationsInTime: with EvalSeconds, evaluations
// fall whenever that much training time has passed since the last one
// (here every fourth iteration: each iteration takes a quarter second of
// the fake clock), besides the final one.
func TestEvalSecondsSpacesEvaluationsInTime(t *testing.T) {
	now := time.Unix(0, 0)
	clock = func() time.Time { now = now.Add(250 * time.Millisecond); return now }
	defer func() { clock = time.Now }()
	m, st := setup(t, 0)
	evals := 0
	res, err := Run(m, st, next, func() (float64, float64, error) { evals++; return 0, 0, nil },
		Config{Iterations: 9, EvalSeconds: 1.0, Out: io.Discard})
	require.NoError(t, err)
	var at []int
	for _, r := range res.Records {
		if !math.IsNaN(r.EvalMet) {
			at = append(at, r.Iter)
		}
	}
	assert.Equal(t, []int{4, 8, 9}, at)
	assert.Equal(t, 3, evals)
	_, err = Run(m, st, next, nil, Config{Iterations: 1, EvalSeconds: math.NaN()})
	assert.ErrorIs(t, err, ErrInvalid)
}
