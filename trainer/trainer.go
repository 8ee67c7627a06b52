// Package trainer runs training loops on the adjoint pipeline: a model
// (zoo.Model) computes gradients and statistics, a snoptx.Stepper applies
// the optimizer. It stops on an iteration count or a wall-clock budget,
// evaluates periodically, shows a progress bar, logs every iteration to CSV,
// writes atomic checkpoints and resumes from them, and stops on a non-finite
// loss without touching the last good checkpoint.
package trainer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/zoo"
)

// ErrNonFiniteLoss stops training: the loss became NaN or infinite.
var ErrNonFiniteLoss = errors.New("trainer: non-finite loss")

// Config configures a run. Zero values mean: no limit (Iterations), no
// budget, no periodic evaluation, no CSV, no checkpoints, no progress bar.
type Config struct {
	// Iterations stops after this many updates (counting resumed ones).
	Iterations int
	// Budget stops when the training wall-clock (evaluation excluded) reaches it.
	Budget time.Duration
	// EvalEvery evaluates every this many iterations (and at the end).
	EvalEvery int
	// CSV is the path of the per-iteration log (appended to on resume).
	CSV string
	// CheckpointDir and CheckpointEvery enable atomic checkpoints.
	CheckpointDir   string
	CheckpointEvery int
	// Resume loads the latest checkpoint of CheckpointDir first, if any.
	Resume bool
	// Progress shows a progress bar on Out.
	Progress bool
	// Out receives the progress bar and messages; nil means os.Stderr.
	Out io.Writer
	// Label names the run in logs (e.g. the optimizer).
	Label string
	// Hook, when set, runs after every update (e.g. a free-horizon policy)
	// with the iteration just done, numbered from 1 as in the log; an error
	// stops training.
	Hook func(iter int, res *zoo.StepResult) error
}

// Record is one iteration of the log.
type Record struct {
	Iter               int
	Seconds            float64 // cumulative training time
	StepSeconds        float64 // this iteration
	Loss, Metric       float64 // on the training batch
	NFEForward, NFEBwd int
	Stats              bool    // a refresh (statistics) iteration
	EvalLoss, EvalMet  float64 // NaN unless evaluated at this iteration
	T1                 float64 // the integration end time (free horizon)
	DLdT1              float64 // dL/dt1 of this iteration's batch (NaN when the model has no end time)
}

// Result summarises a run.
type Result struct {
	Label   string
	Records []Record
	// Final evaluation.
	EvalLoss, EvalMetric float64
	// Seconds is the training wall-clock; Iterations the updates done.
	Seconds    float64
	Iterations int
}

// Evaluator evaluates the model on held-out data: mean loss and metric.
type Evaluator func() (loss, metric float64, err error)

// T1Reporter is implemented by models with an integration end time.
type T1Reporter interface{ T1() float64 }

// Run trains m with st on batches from next until the iteration count or the
// budget is reached.
func Run(m zoo.Model, st *snoptx.Stepper, next func() *zoo.Batch, eval Evaluator, cfg Config) (*Result, error) {
	out := cfg.Out
	if out == nil {
		out = os.Stderr
	}
	if cfg.Iterations <= 0 && cfg.Budget <= 0 {
		return nil, fmt.Errorf("trainer: set Iterations or Budget")
	}
	res := &Result{Label: cfg.Label}
	ck := &checkpointer{dir: cfg.CheckpointDir}
	if cfg.Resume && cfg.CheckpointDir != "" {
		meta, err := ck.restore(st)
		if err != nil {
			return nil, err
		}
		if meta != nil {
			res.Seconds, res.Iterations = meta.Seconds, meta.Iteration
			fmt.Fprintf(out, "trainer: resumed %s at iteration %d (%.1fs)\n", cfg.Label, meta.Iteration, meta.Seconds)
		}
	}
	log, err := openLog(cfg.CSV, cfg.Resume && res.Iterations > 0)
	if err != nil {
		return nil, err
	}
	defer log.close()
	var bar *progressbar.ProgressBar
	if cfg.Progress {
		total := int64(cfg.Iterations)
		if total <= 0 {
			total = -1
		}
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(cfg.Label), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
	}
	done := func() bool {
		return (cfg.Iterations > 0 && res.Iterations >= cfg.Iterations) ||
			(cfg.Budget > 0 && res.Seconds >= cfg.Budget.Seconds())
	}
	for !done() {
		b := next()
		start := time.Now()
		stats := st.NeedsStats()
		step, err := m.Step(b, stats)
		if err != nil {
			return res, fmt.Errorf("trainer: %s iteration %d: %w", cfg.Label, res.Iterations, err)
		}
		if math.IsNaN(step.Loss) || math.IsInf(step.Loss, 0) {
			return res, fmt.Errorf("%w at iteration %d (%s): loss = %g; the last checkpoint is kept",
				ErrNonFiniteLoss, res.Iterations, cfg.Label, step.Loss)
		}
		var factors = step.Stats
		if !stats {
			factors = nil
		}
		if err := st.Step(step.Grads, factors, b.Size); err != nil {
			return res, fmt.Errorf("trainer: %s update %d: %w", cfg.Label, res.Iterations, err)
		}
		if cfg.Hook != nil {
			if err := cfg.Hook(res.Iterations+1, step); err != nil {
				return res, err
			}
		}
		elapsed := time.Since(start).Seconds()
		res.Seconds += elapsed
		res.Iterations++
		rec := Record{Iter: res.Iterations, Seconds: res.Seconds, StepSeconds: elapsed, Loss: step.Loss,
			Metric: step.Metric, NFEForward: step.NFEForward, NFEBwd: step.NFEBackward, Stats: stats,
			EvalLoss: math.NaN(), EvalMet: math.NaN(), T1: math.NaN(), DLdT1: math.NaN()}
		if r, ok := m.(T1Reporter); ok {
			rec.T1, rec.DLdT1 = r.T1(), step.DLdT1
		}
		last := done()
		if eval != nil && ((cfg.EvalEvery > 0 && res.Iterations%cfg.EvalEvery == 0) || last) {
			if rec.EvalLoss, rec.EvalMet, err = eval(); err != nil {
				return res, fmt.Errorf("trainer: evaluation at iteration %d: %w", res.Iterations, err)
			}
			res.EvalLoss, res.EvalMetric = rec.EvalLoss, rec.EvalMet
		}
		res.Records = append(res.Records, rec)
		if err := log.write(rec); err != nil {
			return res, err
		}
		if cfg.CheckpointDir != "" && cfg.CheckpointEvery > 0 && (res.Iterations%cfg.CheckpointEvery == 0 || last) {
			if err := ck.save(st, res); err != nil {
				return res, err
			}
		}
		if bar != nil {
			_ = bar.Add(1)
			bar.Describe(fmt.Sprintf("%s loss %.4f %s %.3f", cfg.Label, step.Loss, m.MetricName(), step.Metric))
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(out)
	}
	return res, nil
}
