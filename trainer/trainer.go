// Package trainer runs training loops on the adjoint pipeline: a model (any
// type with the small Model interface, over any batch type) computes
// gradients and statistics, an Updater (a snoptx.Stepper or Group) applies
// the optimizer. It stops on an iteration count or a wall-clock budget,
// evaluates periodically, shows a progress bar, logs every iteration to CSV,
// writes atomic checkpoints and resumes from them, and stops on a non-finite
// loss without touching the last good checkpoint.
//
// # How to use it
//
// Give Run a model (zoo's, or any type with MetricName and Step), an Updater
// (snoptx.NewStepper over the model's parameters), a function that returns
// the next batch and, optionally, an evaluator; set the budget, the CSV
// path, the checkpoint folder and Resume in Config (see ExampleRun). Every
// state that decides the next iterations besides the context's variables
// (a data stream's position, an end-time policy) goes in Config.State, so
// that a resumed run continues bit-identically; Config.Stop ends a run
// cleanly on a signal.
package trainer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/schollz/progressbar/v3"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
)

// StepResult is what one training step computes before the update.
type StepResult struct {
	// Loss and Metric are the batch's loss and metric (accuracy, or NLL).
	Loss, Metric float64
	// Grads holds the gradient of every parameter, keyed by ScopeAndName.
	Grads map[string]*tensors.Tensor
	// Stats are the Kronecker factors of the preconditionable layers, on
	// refresh iterations (nil otherwise).
	Stats []adjointx.LayerFactors
	// BatchSize is the number of examples behind the gradient (≥ 1); SNOpt
	// scales its second moments by it.
	BatchSize int
	// NFEForward and NFEBackward are the vector-field evaluations of the ODE
	// solves (0 for a model without one).
	NFEForward, NFEBackward int
	// DLdT1 is the derivative of the loss in the ODE's end time (dL/dt1 =
	// a(t1)ᵀF(t1, x(t1)), the free-horizon statistic); NaN or 0 without one.
	DLdT1 float64
	// SolveWall is the wall-clock time of the step's ODE solves and
	// SolveExec the part of it spent inside compiled executions; the rest is
	// the host-side loop (step-size control, bookkeeping). Zero for models
	// that do not report them.
	SolveWall, SolveExec time.Duration
}

// Updater applies the optimizer to a step's gradients: a *snoptx.Stepper,
// or a *snoptx.Group of them (one optimizer per part of a model).
type Updater interface {
	// Context holds the parameters and the optimizer state (checkpointed).
	Context() *context.Context
	// Params are the parameters updated.
	Params() []*context.Variable
	// Iteration is the number of updates applied.
	Iteration() int64
	// NeedsStats reports whether the coming update wants Kronecker statistics.
	NeedsStats() bool
	// Step applies one update.
	Step(grads map[string]*tensors.Tensor, stats []adjointx.LayerFactors, batch int) error
}

var (
	_ Updater = (*snoptx.Stepper)(nil)
	_ Updater = (*snoptx.Group)(nil)
)

// Model is what Run trains: a step on a batch of type B computing loss,
// metric, gradients and, when stats is set, the Kronecker statistics.
type Model[B any] interface {
	// MetricName is "accuracy" (higher is better) or "nll" (lower is better).
	MetricName() string
	// Step computes the loss, metric and gradients of b, and the Kronecker
	// statistics when stats is set.
	Step(b B, stats bool) (*StepResult, error)
}

// ErrNonFiniteLoss stops training: the loss or a gradient became NaN or
// infinite, or the ODE solve broke down (non-finite state, step size
// underflow, too many steps). The error is a *DivergedError.
var ErrNonFiniteLoss = errors.New("trainer: non-finite loss or gradient")

// DivergedError reports the iteration (numbered from 1, as in the log) at
// which training diverged; the last checkpoint is kept. It matches
// ErrNonFiniteLoss with errors.Is.
type DivergedError struct {
	// Label names the run (Config.Label).
	Label string
	// Iteration is the iteration that diverged, numbered from 1.
	Iteration int
	// Cause says what was not finite, or how the solve broke down.
	Cause string
}

// Error names the run, the iteration and the cause.
func (e *DivergedError) Error() string {
	return fmt.Sprintf("%v: %s diverged at iteration %d: %s; the last checkpoint is kept", ErrNonFiniteLoss, e.Label, e.Iteration, e.Cause)
}

// Unwrap makes errors.Is(err, ErrNonFiniteLoss) hold.
func (e *DivergedError) Unwrap() error { return ErrNonFiniteLoss }

// ErrStopped reports a run ended early by Config.Stop; the error is a
// *StoppedError.
var ErrStopped = errors.New("trainer: stopped")

// ErrInvalid reports a Config or a model that Run cannot train with.
var ErrInvalid = errors.New("trainer: invalid configuration")

// StoppedError reports the iteration a run stopped after (the log's
// numbering) and the checkpoint it wrote there ("" without checkpoints).
// It matches ErrStopped with errors.Is.
type StoppedError struct {
	// Label names the run (Config.Label).
	Label string
	// Iteration is the last iteration done, numbered from 1.
	Iteration int
	// Checkpoint is the folder of the checkpoint written at Iteration ("":
	// none configured).
	Checkpoint string
}

// Error names the run, the iteration and the checkpoint.
func (e *StoppedError) Error() string {
	if e.Checkpoint == "" {
		return fmt.Sprintf("%v: %s after iteration %d (no checkpoint configured)", ErrStopped, e.Label, e.Iteration)
	}
	return fmt.Sprintf("%v: %s after iteration %d; checkpoint written to %s", ErrStopped, e.Label, e.Iteration, e.Checkpoint)
}

// Unwrap makes errors.Is(err, ErrStopped) hold.
func (e *StoppedError) Unwrap() error { return ErrStopped }

// Config configures a run. Zero values mean: no limit (Iterations), no
// budget, no periodic evaluation, no CSV, no checkpoints, no progress bar.
type Config struct {
	// Iterations stops after this many updates (counting resumed ones).
	Iterations int
	// Budget stops when the training wall-clock (evaluation excluded) reaches it.
	Budget time.Duration
	// EvalEvery evaluates every this many iterations (and at the end).
	EvalEvery int
	// EvalSeconds, when > 0, also evaluates whenever this much training
	// time has passed since the last evaluation: evenly spaced points on a
	// curve against wall-clock when the run has a time budget. Evaluation
	// changes no state, so resumes stay bit-identical in the iterates.
	EvalSeconds float64
	// CSV is the path of the per-iteration log. A fresh run truncates it;
	// a resumed one keeps its rows up to the checkpoint's iteration (the
	// rows a killed run wrote after its last checkpoint are replaced by
	// the resumed run's) and appends.
	CSV string
	// CheckpointDir and CheckpointEvery enable atomic checkpoints, every
	// CheckpointEvery iterations and at the end. A fresh run (not Resume)
	// removes the checkpoints of an earlier run in CheckpointDir.
	CheckpointDir string
	// CheckpointEvery is that interval, in iterations.
	CheckpointEvery int
	// Resume continues from the latest checkpoint of CheckpointDir when
	// there is one, verifying that it restored the parameters, the
	// iteration counter, every State and the same Settings (else
	// ErrResume). Without a checkpoint the run starts afresh, and a previous
	// log is kept beside the new one as CSV + ".prev".
	Resume bool
	// State is saved with every checkpoint and restored on resume (data
	// streams, end-time policies: whatever else decides the next
	// iterations), by name.
	State map[string]Stateful
	// Settings describe the run (learning rate, batch size, seed, ...);
	// they are saved with every checkpoint, and resuming with different
	// ones is ErrResume naming them.
	Settings map[string]string
	// Progress shows a progress bar on Out when Out is a terminal, and
	// otherwise (a redirected stderr, a log file) a line every 30 seconds
	// and one at the end, so that a log holds no bar frames.
	Progress bool
	// Out receives the progress bar and messages; nil means os.Stderr.
	Out io.Writer
	// Label names the run in logs (e.g. the optimizer).
	Label string
	// Hook, when set, runs after every update (e.g. a free-horizon policy)
	// with the iteration just done, numbered from 1 as in the log; an error
	// stops training.
	Hook func(iter int, res *StepResult) error
	// Stop, when closed, ends the run cleanly at the next iteration
	// boundary: the iteration under way finishes and is logged, a
	// checkpoint is written (when CheckpointDir is set) and Run returns the
	// result so far with a *StoppedError. Resuming from that checkpoint
	// continues bit-identically. Typically closed on SIGINT/SIGTERM.
	Stop <-chan struct{}
}

// Record is one iteration of the log.
type Record struct {
	// Iter numbers the iteration from 1.
	Iter         int
	Seconds      float64 // cumulative training time
	StepSeconds  float64 // this iteration
	Loss, Metric float64 // on the training batch
	// NFEForward and NFEBwd count the vector-field evaluations of the forward and
	// backward solves.
	NFEForward, NFEBwd int
	Stats              bool    // a refresh (statistics) iteration
	EvalLoss, EvalMet  float64 // NaN unless evaluated at this iteration
	T1                 float64 // the integration end time (free horizon)
	DLdT1              float64 // dL/dt1 of this iteration's batch (NaN when the model has no end time)
}

// Result summarises a run.
type Result struct {
	// Label names the run (Config.Label).
	Label string
	// Records are the log's rows of the whole run (those kept from before a
	// resume included) when CSV is set, else this call's.
	Records []Record
	// Final evaluation.
	EvalLoss, EvalMetric float64
	// Seconds is the training wall-clock (evaluations excluded).
	Seconds float64
	// Iterations is the number of updates done (resumed ones included).
	Iterations int
}

// Evaluator evaluates the model on held-out data: mean loss and metric.
type Evaluator func() (loss, metric float64, err error)

// SolverBroke reports an ODE solve that failed the way diverging parameters
// make it fail: a non-finite state, a step size underflow, too many steps.
// Run ends such a failure, in a step or an evaluation, as a DivergedError.
func SolverBroke(err error) bool {
	return errors.Is(err, odeint.ErrNonFinite) || errors.Is(err, odeint.ErrStepUnderflow) || errors.Is(err, odeint.ErrMaxSteps)
}

// clock times the iterations (a variable for tests).
var clock = time.Now

// progressEvery is the interval of Progress's lines when Out is not a terminal.
var progressEvery = 30 * time.Second

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// T1Reporter is implemented by models with an integration end time.
type T1Reporter interface{ T1() float64 }

// Run trains m with st on batches from next until the iteration count or the
// budget is reached. Errors name the iteration as the log numbers it (from
// 1); a NaN or infinite loss or gradient is a *DivergedError.
func Run[B any](m Model[B], st Updater, next func() (B, error), eval Evaluator, cfg Config) (*Result, error) {
	out := cfg.Out
	if out == nil {
		out = os.Stderr
	}
	if m == nil || st == nil || next == nil {
		return nil, fmt.Errorf("%w: a model, a stepper and a batch source are required", ErrInvalid)
	}
	if cfg.Iterations <= 0 && cfg.Budget <= 0 {
		return nil, fmt.Errorf("%w: set Iterations or Budget", ErrInvalid)
	}
	if cfg.Iterations < 0 || cfg.Budget < 0 || cfg.EvalEvery < 0 || cfg.CheckpointEvery < 0 || !(cfg.EvalSeconds >= 0) {
		return nil, fmt.Errorf("%w: negative Iterations, Budget, EvalEvery or CheckpointEvery", ErrInvalid)
	}
	for name, s := range cfg.State {
		if s == nil {
			return nil, fmt.Errorf("%w: state %q is nil", ErrInvalid, name)
		}
	}
	res := &Result{Label: cfg.Label}
	ck := &checkpointer{dir: cfg.CheckpointDir}
	var restored *meta
	if cfg.CheckpointDir != "" {
		var err error
		if cfg.Resume {
			if restored, err = ck.restore(st, &cfg); err != nil {
				return nil, err
			}
		} else if found, err := ck.clear(); err != nil {
			return nil, err
		} else if found {
			fmt.Fprintf(out, "trainer: %s starts afresh: removed the earlier checkpoints in %s\n", cfg.Label, cfg.CheckpointDir)
		}
	}
	if restored != nil {
		res.Seconds, res.Iterations = restored.Seconds, restored.Iteration
		fmt.Fprintf(out, "trainer: resumed %s at iteration %d (%.1fs) from %s\n", cfg.Label, restored.Iteration, restored.Seconds, cfg.CheckpointDir)
	} else if cfg.Resume && cfg.CSV != "" {
		if _, err := os.Stat(cfg.CSV); err == nil {
			if err := os.Rename(cfg.CSV, cfg.CSV+".prev"); err != nil {
				return nil, fmt.Errorf("trainer: log: %w", err)
			}
			fmt.Fprintf(out, "trainer: %s has no checkpoint to resume from; starting at iteration 0 (the previous log is now %s.prev)\n", cfg.Label, cfg.CSV)
		}
	}
	log, kept, err := openLog(cfg.CSV, restored != nil, res.Iterations)
	if err != nil {
		return nil, err
	}
	defer log.close()
	if restored != nil && cfg.CSV != "" && len(kept) != res.Iterations {
		fmt.Fprintf(out, "trainer: warning: %s holds %d rows for the checkpoint's %d iterations\n", cfg.CSV, len(kept), res.Iterations)
	}
	res.Records = kept
	var bar *progressbar.ProgressBar
	lines := cfg.Progress && !isTerminal(out)
	lastLine := time.Now()
	if cfg.Progress && !lines {
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
	stopped := func() bool {
		select {
		case <-cfg.Stop:
			return true
		default:
			return false
		}
	}
	savedAt := -1 // the iteration of the last checkpoint this call wrote
	lastEval := res.Seconds
	for !done() {
		if stopped() {
			stop := &StoppedError{Label: cfg.Label, Iteration: res.Iterations}
			if cfg.CheckpointDir != "" && res.Iterations > 0 {
				if savedAt != res.Iterations {
					if err := ck.save(st, res, &cfg); err != nil {
						return res, err
					}
				}
				stop.Checkpoint = cfg.CheckpointDir
			}
			if bar != nil {
				_ = bar.Exit()
				fmt.Fprintln(out)
			}
			return res, stop
		}
		iter := res.Iterations + 1 // numbered from 1, as in the log
		b, err := next()
		if err != nil {
			return res, fmt.Errorf("trainer: %s batch for iteration %d: %w", cfg.Label, iter, err)
		}
		start := clock()
		stats := st.NeedsStats()
		step, err := m.Step(b, stats)
		if err != nil {
			if SolverBroke(err) {
				// Parameters that blew up make the ODE solve fail before the
				// loss can turn NaN.
				return res, &DivergedError{Label: cfg.Label, Iteration: iter, Cause: err.Error()}
			}
			return res, fmt.Errorf("trainer: %s iteration %d: %w", cfg.Label, iter, err)
		}
		if math.IsNaN(step.Loss) || math.IsInf(step.Loss, 0) {
			return res, &DivergedError{Label: cfg.Label, Iteration: iter, Cause: fmt.Sprintf("loss = %g", step.Loss)}
		}
		var factors = step.Stats
		if !stats {
			factors = nil
		}
		if step.BatchSize < 1 {
			return res, fmt.Errorf("%w: %s iteration %d: the model's StepResult.BatchSize is %d (want ≥ 1)", ErrInvalid, cfg.Label, iter, step.BatchSize)
		}
		if err := st.Step(step.Grads, factors, step.BatchSize); err != nil {
			if errors.Is(err, snoptx.ErrNonFinite) {
				return res, &DivergedError{Label: cfg.Label, Iteration: iter, Cause: err.Error()}
			}
			return res, fmt.Errorf("trainer: %s update %d: %w", cfg.Label, iter, err)
		}
		if cfg.Hook != nil {
			if err := cfg.Hook(iter, step); err != nil {
				return res, err
			}
		}
		elapsed := clock().Sub(start).Seconds()
		res.Seconds += elapsed
		res.Iterations++
		rec := Record{Iter: res.Iterations, Seconds: res.Seconds, StepSeconds: elapsed, Loss: step.Loss,
			Metric: step.Metric, NFEForward: step.NFEForward, NFEBwd: step.NFEBackward, Stats: stats,
			EvalLoss: math.NaN(), EvalMet: math.NaN(), T1: math.NaN(), DLdT1: math.NaN()}
		if r, ok := m.(T1Reporter); ok {
			rec.T1, rec.DLdT1 = r.T1(), step.DLdT1
		}
		last := done()
		timed := cfg.EvalSeconds > 0 && res.Seconds-lastEval >= cfg.EvalSeconds
		if eval != nil && ((cfg.EvalEvery > 0 && res.Iterations%cfg.EvalEvery == 0) || last || timed) {
			lastEval = res.Seconds
			if rec.EvalLoss, rec.EvalMet, err = eval(); err != nil {
				if SolverBroke(err) {
					// The parameters this iteration left cannot be integrated.
					return res, &DivergedError{Label: cfg.Label, Iteration: res.Iterations, Cause: "evaluation: " + err.Error()}
				}
				return res, fmt.Errorf("trainer: evaluation at iteration %d: %w", res.Iterations, err)
			}
			res.EvalLoss, res.EvalMetric = rec.EvalLoss, rec.EvalMet
		}
		res.Records = append(res.Records, rec)
		if err := log.write(rec); err != nil {
			return res, err
		}
		if cfg.CheckpointDir != "" && cfg.CheckpointEvery > 0 && (res.Iterations%cfg.CheckpointEvery == 0 || last) {
			if err := ck.save(st, res, &cfg); err != nil {
				return res, err
			}
			savedAt = res.Iterations
		}
		if bar != nil {
			_ = bar.Add(1)
			bar.Describe(fmt.Sprintf("%s loss %.4f %s %.3f", cfg.Label, step.Loss, m.MetricName(), step.Metric))
		}
		if lines && (last || time.Since(lastLine) >= progressEvery) {
			lastLine = time.Now()
			of := ""
			if cfg.Iterations > 0 {
				of = fmt.Sprintf("/%d", cfg.Iterations)
			}
			fmt.Fprintf(out, "trainer: %s iteration %d%s, %.1fs: loss %.4f %s %.4f\n", cfg.Label, res.Iterations, of,
				res.Seconds, step.Loss, m.MetricName(), step.Metric)
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(out)
	}
	return res, nil
}
