package trainer

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/zoo"
)

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
func (m *quadModel) Evaluate(*zoo.Batch) (float64, float64, error) { return m.loss(), m.loss(), nil }

func (m *quadModel) loss() float64 {
	w := tensors.MustCopyFlatData[float64](m.w.MustValue())
	l := 0.0
	for i := range w {
		l += (w[i] - m.c[i]) * (w[i] - m.c[i]) / 2
	}
	return l
}

func (m *quadModel) Step(*zoo.Batch, bool) (*zoo.StepResult, error) {
	m.calls++
	w := tensors.MustCopyFlatData[float64](m.w.MustValue())
	g := []float64{w[0] - m.c[0], w[1] - m.c[1]}
	l := m.loss()
	if m.calls == m.nanAt {
		l = math.NaN()
	}
	return &zoo.StepResult{Loss: l, Metric: l, Grads: map[string]*tensors.Tensor{m.w.ScopeAndName(): tensors.FromValue(g)}}, nil
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

func next() *zoo.Batch { return &zoo.Batch{Size: 1} }

func TestRunLogsAndEvaluates(t *testing.T) {
	m, st := setup(t, 0)
	csv := filepath.Join(t.TempDir(), "log.csv")
	var hooked []int
	hook := func(iter int, _ *zoo.StepResult) error { hooked = append(hooked, iter); return nil }
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
	assert.Contains(t, err.Error(), "iteration 5")
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
