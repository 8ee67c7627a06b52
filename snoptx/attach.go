package snoptx

import (
	"log"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// logf reports, once per optimizer, the variables SNOpt cannot precondition.
var logf = logPrintf

// logPrintf is the default logf.
var logPrintf = log.Printf

// Attach makes a train.Loop drive SNOpt's curvature, in one call after
// train.NewLoop and before running it:
//
//	trainer := train.NewTrainer(backend, ctx, modelFn, losses.SparseCategoricalCrossEntropyLogits, opt, …)
//	loop := train.NewLoop(trainer)
//	if err := snoptx.Attach(loop, opt); err != nil { … }
//	_, err = loop.RunSteps(ds, steps)
//
// with the model's layers built by snoptx.Dense and snoptx.Conv2D. On
// refresh steps (every RefreshEvery updates, the first included) the
// training graph also accumulates each layer's Kronecker factors
// (ParamCollectStats); once the step's update is applied — after all its
// micro-batches under train.Trainer.AccumulateGradients — the eigenbases are
// refreshed on the host (RefreshFromContext) and precondition the updates
// from the next step on. Training graphs are rebuilt when a refresh step
// starts and ends (a few milliseconds per graph on the pure-Go backend,
// amortised over RefreshEvery steps).
//
// The first refresh lists, once, the trainable variables no layer covers
// (they take the momentum step); a model with no preconditionable layer
// stops the loop with ErrInvalid rather than train as plain SGD.
func Attach(loop *train.Loop, opt Optimizer) error {
	o, ok := opt.(*snopt)
	if !ok {
		return invalidf("Attach takes SNOpt, not %s", opt.Name())
	}
	if loop == nil || loop.Trainer == nil {
		return invalidf("Attach needs a loop with a trainer")
	}
	tr := loop.Trainer
	ctx := tr.Context()
	o.attached = true
	// rebuild drops the compiled training graphs so the next step builds them
	// anew with the current setting; the model's variables exist by then, so
	// the context must let them be reused (GoMLX's trainer only does so
	// after its first graph).
	rebuild := func() {
		tr.SetContext(tr.Context().Checked(false))
		tr.ResetComputationGraphs()
	}
	// collectedFrom is the global step at which statistics collection
	// began: the refresh waits until an update has been applied since, so
	// that under train.Trainer.AccumulateGradients every micro-batch of the
	// step contributes (the loop calls its hooks after each micro-batch).
	collectedFrom := optimizers.GetGlobalStep(ctx)
	collecting := o.NeedsStats(collectedFrom)
	ctx.SetParam(ParamCollectStats, collecting)
	if collectedFrom > 0 {
		rebuild() // graphs of earlier steps were built without the setting
	}
	loop.OnStep("snoptx-curvature", train.Priority(0), func(_ *train.Loop, _ []*tensors.Tensor) error {
		step := optimizers.GetGlobalStep(ctx)
		if step == collectedFrom {
			return nil // a micro-batch of an accumulated step: the update is still to come
		}
		reset := false
		if collecting {
			first := len(o.blocks) == 0
			if err := o.refreshFromContext(ctx); err != nil {
				return err
			}
			if first {
				reset = true // the training graph must now precondition the new blocks
			}
			if !o.reported {
				o.reported = true
				if rest := o.uncovered(ctx); len(rest) > 0 {
					logf("snoptx: %d trainable variables are outside any preconditionable layer and take the momentum step: %s",
						len(rest), strings.Join(rest, ", "))
				}
			}
		}
		collectedFrom = step
		if next := o.NeedsStats(step); next != collecting {
			collecting = next
			ctx.SetParam(ParamCollectStats, collecting)
			reset = true
		}
		if reset {
			rebuild()
		}
		return nil
	})
	return nil
}

// RefreshFromContext refreshes SNOpt's eigenbases from the Kronecker factors
// its last statistics graph stored in the context (see ParamCollectStats):
// Attach calls it; a user driving train.Trainer by hand calls it after a
// TrainStep whose graph collected statistics.
func RefreshFromContext(ctx *context.Context, opt Optimizer) error {
	o, ok := opt.(*snopt)
	if !ok {
		return invalidf("RefreshFromContext takes SNOpt, not %s", opt.Name())
	}
	o.attached = true
	return o.refreshFromContext(ctx.Checked(false))
}
