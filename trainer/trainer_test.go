package trainer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
)

// testBatch is the tests' batch type: the trainer takes any.
type testBatch struct {
	X    *tensors.Tensor
	Size int
}

// quadModel is L(w) = ½‖w − c‖², optionally returning a NaN loss at one iteration.
type quadModel struct {
	w      *context.Variable
	c      []float64
	calls  int
	nanAt  int
	params []*context.Variable
}

func newQuad(ctx *context.Context, nanAt int) *quadModel {
	w := ctx.In("quad").VariableWithValue("w", []float64{3, -2})
	return &quadModel{w: w, c: []float64{1, 1}, nanAt: nanAt, params: []*context.Variable{w}}
}

func (m *quadModel) Name() string                                  { return "quad" }
func (m *quadModel) MetricName() string                            { return "nll" }
func (m *quadModel) Params() []*context.Variable                   { return m.params }
func (m *quadModel) Evaluate(*testBatch) (float64, float64, error) { return m.loss(), m.loss(), nil }

func (m *quadModel) loss() float64 {
	w := tensors.MustCopyFlatData[float64](m.w.MustValue())
	l := 0.0
	for i := range w {
		l += (w[i] - m.c[i]) * (w[i] - m.c[i]) / 2
	}
	return l
}

func (m *quadModel) Step(*testBatch, bool) (*StepResult, error) {
	m.calls++
	w := tensors.MustCopyFlatData[float64](m.w.MustValue())
	g := []float64{w[0] - m.c[0], w[1] - m.c[1]}
	l := m.loss()
	if m.calls == m.nanAt {
		l = math.NaN()
	}
	return &StepResult{Loss: l, Metric: l, BatchSize: 1, Grads: map[string]*tensors.Tensor{m.w.ScopeAndName(): tensors.FromValue(g)}}, nil
}

func setup(t *testing.T, nanAt int) (*quadModel, *snoptx.Stepper) {
	ctx := context.New()
	m := newQuad(ctx, nanAt)
	opt, err := snoptx.SGD().LearningRate(0.1).Done()
	require.NoError(t, err)
	st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
	require.NoError(t, err)
	return m, st
}

func next() (*testBatch, error) { return &testBatch{Size: 1}, nil }

func TestRunLogsAndEvaluates(t *testing.T) {
	m, st := setup(t, 0)
	csv := filepath.Join(t.TempDir(), "log.csv")
	var hooked []int
	hook := func(iter int, _ *StepResult) error { hooked = append(hooked, iter); return nil }
	res, err := Run(m, st, next, func() (float64, float64, error) { return m.Evaluate(nil) },
		Config{Iterations: 10, EvalEvery: 5, CSV: csv, Label: "sgd", Hook: hook})
	require.NoError(t, err)
	assert.Equal(t, 10, res.Iterations)
	for i, r := range res.Records {
		assert.Equal(t, r.Iter, hooked[i], "the hook numbers iterations as the log does")
	}
	assert.Less(t, res.Records[9].Loss, res.Records[0].Loss)
	recs, err := ReadCSV(csv)
	require.NoError(t, err)
	require.Len(t, recs, 10)
	assert.True(t, math.IsNaN(recs[3].EvalLoss))
	assert.False(t, math.IsNaN(recs[4].EvalLoss))
	assert.InDelta(t, res.EvalLoss, recs[9].EvalLoss, 1e-12)
}

// TestNonFiniteLossKeepsLastCheckpoint: a NaN loss stops the run with an
// error naming the iteration, and the last checkpoint still loads.
func TestNonFiniteLossKeepsLastCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	m, st := setup(t, 6)
	_, err := Run(m, st, next, nil, Config{Iterations: 10, CheckpointDir: dir, CheckpointEvery: 2, Label: "sgd"})
	require.ErrorIs(t, err, ErrNonFiniteLoss)
	assert.Contains(t, err.Error(), "iteration 6", "numbered as in the log")
	latest, err := os.ReadFile(filepath.Join(dir, "LATEST"))
	require.NoError(t, err)
	assert.Equal(t, "ckpt-000000004", string(latest))
	m2, st2 := setup(t, 0)
	res, err := Run(m2, st2, next, nil, Config{Iterations: 5, CheckpointDir: dir, Resume: true, Label: "sgd"})
	require.NoError(t, err)
	assert.Equal(t, 5, res.Iterations)
	assert.Len(t, res.Records, 1, "resumed at 4, one more iteration")
}

// TestResumeMatchesUninterrupted: 3 + 3 iterations with a resume in between
// end where 6 uninterrupted iterations do.
func TestResumeMatchesUninterrupted(t *testing.T) {
	m, st := setup(t, 0)
	_, err := Run(m, st, next, nil, Config{Iterations: 6, Label: "sgd"})
	require.NoError(t, err)
	want := tensors.MustCopyFlatData[float64](m.w.MustValue())

	dir := filepath.Join(t.TempDir(), "ck")
	csv := filepath.Join(t.TempDir(), "log.csv")
	m1, st1 := setup(t, 0)
	_, err = Run(m1, st1, next, nil, Config{Iterations: 3, CheckpointDir: dir, CheckpointEvery: 3, CSV: csv, Label: "sgd"})
	require.NoError(t, err)
	m2, st2 := setup(t, 0)
	res, err := Run(m2, st2, next, nil, Config{Iterations: 6, CheckpointDir: dir, CheckpointEvery: 3, CSV: csv, Resume: true, Label: "sgd"})
	require.NoError(t, err)
	assert.Equal(t, 6, res.Iterations)
	got := tensors.MustCopyFlatData[float64](m2.w.MustValue())
	assert.InDeltaSlice(t, want, got, 1e-12)
	recs, err := ReadCSV(csv)
	require.NoError(t, err)
	assert.Len(t, recs, 6, "the log continues across the resume")
	assert.False(t, errors.Is(err, ErrNonFiniteLoss))
}

// noisyQuad is quadModel whose gradient adds the batch's noise vector, so
// the iterates depend on the data stream's position.
type noisyQuad struct{ *quadModel }

func (m noisyQuad) Step(b *testBatch, stats bool) (*StepResult, error) {
	res, err := m.quadModel.Step(b, stats)
	if err != nil {
		return nil, err
	}
	g := tensors.MustCopyFlatData[float64](res.Grads[m.w.ScopeAndName()])
	noise := tensors.MustCopyFlatData[float64](b.X)
	for i := range g {
		g[i] += noise[i]
	}
	res.Grads[m.w.ScopeAndName()] = tensors.FromValue(g)
	res.Loss += noise[0]
	return res, nil
}

// noiseStream draws batches from a seeded PCG; its state is the generator's.
type noiseStream struct{ src *rand.PCG }

func newNoiseStream(seed uint64) *noiseStream { return &noiseStream{src: rand.NewPCG(seed, 1)} }

func (s *noiseStream) next() (*testBatch, error) {
	r := rand.New(s.src)
	return &testBatch{X: tensors.FromValue([]float64{r.NormFloat64(), r.NormFloat64()}), Size: 1}, nil
}
func (s *noiseStream) MarshalBinary() ([]byte, error) { return s.src.MarshalBinary() }
func (s *noiseStream) UnmarshalBinary(b []byte) error { return s.src.UnmarshalBinary(b) }

// logRows reads a log as its formatted rows (shortest exact float
// formatting, so equal strings are equal bits), wall-clock columns dropped.
func logRows(t *testing.T, path string) [][]string {
	recs, err := ReadCSV(path)
	require.NoError(t, err)
	var out [][]string
	for _, r := range recs {
		r.Seconds, r.StepSeconds = 0, 0
		out = append(out, row(r))
	}
	return out
}

// TestResumeIsBitIdenticalAndLogConsistent: a run stopped after iteration 7
// with its last checkpoint at 6, whose log then holds a row past the
// checkpoint and a torn line, resumes to 12 iterations with a log equal,
// row for row and bit for bit (time columns aside), to an uninterrupted
// run's; the data stream continues where the checkpoint left it.
func TestResumeIsBitIdenticalAndLogConsistent(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"lr": "0.1"}
	run := func(csv string, iters int, resume bool, stopAt int) (*Result, *quadModel, error) {
		ctx := context.New()
		m := noisyQuad{newQuad(ctx, 0)}
		opt, err := snoptx.SGD().LearningRate(0.1).Done()
		require.NoError(t, err)
		st, err := snoptx.NewStepper(testutil.Backend(), ctx, opt, m.Params())
		require.NoError(t, err)
		data := newNoiseStream(7)
		hook := func(iter int, _ *StepResult) error {
			if iter == stopAt {
				return errors.New("killed")
			}
			return nil
		}
		res, err := Run(m, st, data.next, func() (float64, float64, error) { return m.Evaluate(nil) }, Config{
			Iterations: iters, EvalEvery: 4, CSV: csv, CheckpointDir: filepath.Join(dir, filepath.Base(csv)+"-ck"),
			CheckpointEvery: 3, Resume: resume, Label: "sgd", Hook: hook, Settings: settings,
			State: map[string]Stateful{"data": data}, Out: io.Discard})
		return res, m.quadModel, err
	}
	full := filepath.Join(dir, "full.csv")
	_, mFull, err := run(full, 12, false, 0)
	require.NoError(t, err)

	part := filepath.Join(dir, "part.csv")
	_, _, err = run(part, 12, false, 8) // iteration 8 fails: rows 1–7 logged, checkpoint at 6
	require.ErrorContains(t, err, "killed")
	f, err := os.OpenFile(part, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("8,1,1,0.5,0.5,0,0,false,,,,\n9,1,1,0.") // a stray row and a torn one
	require.NoError(t, err)
	require.NoError(t, f.Close())

	res, mPart, err := run(part, 12, true, 0)
	require.NoError(t, err)
	assert.Equal(t, 12, res.Iterations)
	assert.Len(t, res.Records, 12, "the kept rows and the new ones")
	assert.Equal(t, logRows(t, full), logRows(t, part))
	assert.Equal(t, tensors.MustCopyFlatData[float64](mFull.w.MustValue()), tensors.MustCopyFlatData[float64](mPart.w.MustValue()))
}

// TestResumeVerifiesWhatItRestores: a checkpoint missing its variables,
// its metadata or a state, or written with other settings, is ErrResume,
// never a silent fresh start.
func TestResumeVerifiesWhatItRestores(t *testing.T) {
	setupRun := func(t *testing.T) (string, func(cfg Config) error) {
		dir := filepath.Join(t.TempDir(), "ck")
		m, st := setup(t, 0)
		data := newNoiseStream(1)
		_, err := Run(noisyQuad{m}, st, data.next, nil, Config{Iterations: 4, CheckpointDir: dir, CheckpointEvery: 2,
			Label: "sgd", Settings: map[string]string{"lr": "0.1"}, State: map[string]Stateful{"data": data}})
		require.NoError(t, err)
		return dir, func(cfg Config) error {
			m, st := setup(t, 0)
			cfg.Iterations, cfg.CheckpointDir, cfg.Resume, cfg.Label, cfg.Out = 6, dir, true, "sgd", io.Discard
			_, err := Run(noisyQuad{m}, st, newNoiseStream(1).next, nil, cfg)
			return err
		}
	}
	good := Config{Settings: map[string]string{"lr": "0.1"}, State: map[string]Stateful{"data": newNoiseStream(1)}}
	t.Run("intact", func(t *testing.T) {
		_, resume := setupRun(t)
		require.NoError(t, resume(good))
	})
	t.Run("variables missing", func(t *testing.T) {
		dir, resume := setupRun(t)
		latest, err := os.ReadFile(filepath.Join(dir, "LATEST"))
		require.NoError(t, err)
		entries, err := os.ReadDir(filepath.Join(dir, string(latest)))
		require.NoError(t, err)
		for _, e := range entries {
			if e.Name() != "trainer.json" && !strings.HasPrefix(e.Name(), "state-") {
				require.NoError(t, os.Remove(filepath.Join(dir, string(latest), e.Name())))
			}
		}
		assert.ErrorIs(t, resume(good), ErrResume)
	})
	t.Run("metadata missing", func(t *testing.T) {
		dir, resume := setupRun(t)
		latest, err := os.ReadFile(filepath.Join(dir, "LATEST"))
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(dir, string(latest), "trainer.json")))
		assert.ErrorIs(t, resume(good), ErrResume)
	})
	t.Run("other settings", func(t *testing.T) {
		_, resume := setupRun(t)
		cfg := good
		cfg.Settings = map[string]string{"lr": "0.2"}
		err := resume(cfg)
		assert.ErrorIs(t, err, ErrResume)
		assert.ErrorContains(t, err, `lr: saved "0.1", now "0.2"`)
	})
	t.Run("state not saved", func(t *testing.T) {
		_, resume := setupRun(t)
		cfg := good
		cfg.State = map[string]Stateful{"data": newNoiseStream(1), "policy": newNoiseStream(2)}
		assert.ErrorIs(t, resume(cfg), ErrResume)
	})
}

// TestResumeWithoutCheckpointKeepsOldLog: resuming a run killed before its
// first checkpoint starts afresh and keeps the old log as .prev.
func TestResumeWithoutCheckpointKeepsOldLog(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "log.csv")
	require.NoError(t, os.WriteFile(csv, []byte("iter\n1\n"), 0o644))
	m, st := setup(t, 0)
	res, err := Run(m, st, next, nil, Config{Iterations: 2, CSV: csv, CheckpointDir: filepath.Join(dir, "ck"),
		CheckpointEvery: 10, Resume: true, Label: "sgd", Out: io.Discard})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Iterations)
	old, err := os.ReadFile(csv + ".prev")
	require.NoError(t, err)
	assert.Equal(t, "iter\n1\n", string(old))
	assert.Len(t, logRows(t, csv), 2)
}

// TestReadCSVToleratesOnlyATornLastLine: a last line without its newline
// is dropped; a malformed row elsewhere is an error naming its line.
func TestReadCSVToleratesOnlyATornLastLine(t *testing.T) {
	dir := t.TempDir()
	header := strings.Join(csvHeader, ",") + "\n"
	good := "1,0.5,0.5,2,0.1,10,12,true,,,1,\n"
	torn := filepath.Join(dir, "torn.csv")
	require.NoError(t, os.WriteFile(torn, []byte(header+good+"2,0.9,0.4,1.9"), 0o644))
	recs, err := ReadCSV(torn)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, 2.0, recs[0].Loss)
	assert.Equal(t, 12, recs[0].NFEBwd)
	assert.True(t, recs[0].Stats)
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte(header+"1,x,0.5,2,0.1,10,12,true,,,1,\n"+good), 0o644))
	_, err = ReadCSV(bad)
	assert.ErrorContains(t, err, "line 2")
}

// faultyModel is quadModel whose step at call `at` is replaced by fault.
type faultyModel struct {
	*quadModel
	at    int
	fault func(res *StepResult) (*StepResult, error)
}

func (m faultyModel) Step(b *testBatch, stats bool) (*StepResult, error) {
	res, err := m.quadModel.Step(b, stats)
	if m.calls == m.at {
		return m.fault(res)
	}
	return res, err
}

// TestBreakdownsAreDivergence: a NaN gradient or a step size underflow in
// the model's solve stops the run as diverged at that iteration (numbered
// as in the log), with the parameters of the iteration before; other
// errors are not divergence.
func TestBreakdownsAreDivergence(t *testing.T) {
	for name, c := range map[string]struct {
		at    int
		fault func(res *StepResult) (*StepResult, error)
		cause string
	}{
		"NaN gradient": {3, func(res *StepResult) (*StepResult, error) {
			for k := range res.Grads {
				res.Grads[k] = tensors.FromValue([]float64{math.NaN(), 0})
			}
			return res, nil
		}, "non-finite"},
		"step underflow": {2, func(*StepResult) (*StepResult, error) {
			return nil, fmt.Errorf("zoo: forward: %w", &odeint.Error{Err: odeint.ErrStepUnderflow, T: 0.5, H: 1e-17})
		}, "step size underflow"},
	} {
		m, st := setup(t, 0)
		_, err := Run(faultyModel{m, c.at, c.fault}, st, next, nil, Config{Iterations: 5, Label: "sgd"})
		var div *DivergedError
		require.ErrorAs(t, err, &div, name)
		assert.Equal(t, c.at, div.Iteration, name)
		assert.Contains(t, div.Cause, c.cause, name)
		assert.ErrorIs(t, err, ErrNonFiniteLoss, name)
		assert.Equal(t, int64(c.at-1), st.Iteration(), name)
	}
	assert.False(t, SolverBroke(errors.New("out of memory")))
}

// TestEvaluationBreakdownIsDivergence: an evaluation whose solve fails the
// way diverged parameters make it fail ends the run as diverged at the
// iteration that made them; another evaluation error stays an error.
func TestEvaluationBreakdownIsDivergence(t *testing.T) {
	calls := 0
	broken := func() (float64, float64, error) {
		calls++
		if calls == 2 {
			return 0, 0, fmt.Errorf("zoo: ODE-RNN segment 1: %w", &odeint.Error{Err: odeint.ErrMaxSteps, T: 0.06, H: 1e-4})
		}
		return 1, 0.5, nil
	}
	m, st := setup(t, 0)
	_, err := Run(m, st, next, broken, Config{Iterations: 9, EvalEvery: 3, Label: "sgd"})
	var div *DivergedError
	require.ErrorAs(t, err, &div)
	assert.Equal(t, 6, div.Iteration)
	assert.Contains(t, div.Cause, "evaluation: ")
	assert.Contains(t, div.Cause, "maximum number of steps")

	m, st = setup(t, 0)
	_, err = Run(m, st, next, func() (float64, float64, error) { return 0, 0, errors.New("disk full") }, Config{Iterations: 4, EvalEvery: 2, Label: "sgd"})
	require.Error(t, err)
	assert.False(t, errors.As(err, &div), "not a divergence: %v", err)
	assert.ErrorContains(t, err, "evaluation at iteration 2: disk full")
}

// FuzzParseLog: any bytes parse or give an error; parsed records format
// back to rows that parse to the same records.
func FuzzParseLog(f *testing.F) {
	header := strings.Join(csvHeader, ",") + "\n"
	f.Add([]byte(header + "1,0.5,0.5,2,0.1,10,12,true,,,1,\n2,1,0.5,1.5,0.2,9,9,false,1.1,0.3,0.9,-0.2\n"))
	f.Add([]byte(header + "1,0.5,0.5,2,0.1,10,12,true,,,1\n3,x"))
	f.Add([]byte("\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseLog(data)
		if err != nil {
			return
		}
		var buf strings.Builder
		buf.WriteString(header)
		for _, r := range recs {
			buf.WriteString(strings.Join(row(r), ",") + "\n")
		}
		again, err := parseLog([]byte(buf.String()))
		require.NoError(t, err)
		require.Len(t, again, len(recs))
		for i := range recs {
			require.Equal(t, row(recs[i]), row(again[i]))
		}
	})
}

// TestRunRejectsBadConfig: missing pieces and negative settings are errors.
func TestRunRejectsBadConfig(t *testing.T) {
	m, st := setup(t, 0)
	for name, run := range map[string]func() error{
		"nil model":   func() error { _, err := Run(nil, st, next, nil, Config{Iterations: 1}); return err },
		"nil stepper": func() error { _, err := Run(m, nil, next, nil, Config{Iterations: 1}); return err },
		"nil next":    func() error { _, err := Run(m, st, nil, nil, Config{Iterations: 1}); return err },
		"no limit":    func() error { _, err := Run(m, st, next, nil, Config{}); return err },
		"negative":    func() error { _, err := Run(m, st, next, nil, Config{Iterations: 2, EvalEvery: -1}); return err },
		"nil state": func() error {
			_, err := Run(m, st, next, nil, Config{Iterations: 1, State: map[string]Stateful{"x": nil}})
			return err
		},
	} {
		assert.NotPanics(t, func() { assert.ErrorIs(t, run(), ErrInvalid, name) }, name)
	}
}

// noSizeModel forgets StepResult.BatchSize.
type noSizeModel struct{ *quadModel }

func (m noSizeModel) Step(b *testBatch, stats bool) (*StepResult, error) {
	res, err := m.quadModel.Step(b, stats)
	res.BatchSize = 0
	return res, err
}

// TestBatchSizeIsRequired: a step result without its batch size is an
// error naming the iteration, before any update.
func TestBatchSizeIsRequired(t *testing.T) {
	m, st := setup(t, 0)
	_, err := Run(noSizeModel{m}, st, next, nil, Config{Iterations: 3, Label: "sgd"})
	assert.ErrorContains(t, err, "iteration 1")
	assert.ErrorContains(t, err, "BatchSize")
	assert.Equal(t, int64(0), st.Iteration())
}

// TestTrainerDoesNotImportZoo: the training loop serves any model; it
// must not depend on the paper's models.
func TestTrainerDoesNotImportZoo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	assert.NotContains(t, string(out), "github.com/snopt-go/snopt/zoo\n")
}
