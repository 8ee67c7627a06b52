package zoo

import (
	"fmt"
	"maps"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/snoptx"
)

// Hybrid is the image classifier with its feature extractor and head
// written as ordinary GoMLX code (snoptx.Conv2D and snoptx.Dense, gradients
// by GoMLX's autodiff through snoptx.Segment) around an ODE block trained
// with the adjoint (adjointx, field layers): one model whose every layer
// one SNOpt instance preconditions — the stem and head with their K-FAC
// factors, the ODE block with eq. (13)'s factors on the time grid. The
// architecture is Classifier's: Conv(W,3,1)→ReLU→Conv(W,4,2)→ReLU→Conv(W,4,2),
// the ODE block Conv(W,3,1)→ReLU→Conv(W,3,1) with time as a channel, then
// ReLU, global average pooling, Dense to the classes, cross-entropy.
type Hybrid struct {
	cfg        ClassifierConfig
	ctx        *context.Context
	stem, head *snoptx.Segment
	block      *adjointx.Block
	params     []*context.Variable
}

var _ Model = (*Hybrid)(nil)

// NewHybrid builds the hybrid classifier with its variables in ctx (the
// stem under "stem", the ODE block under "ode", the head under "head").
func NewHybrid(backend backends.Backend, ctx *context.Context, cfg ClassifierConfig) (*Hybrid, error) {
	if backend == nil || ctx == nil {
		return nil, fmt.Errorf("%w: the hybrid classifier needs a backend and a context", ErrInvalid)
	}
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	w := cfg.Width
	h := &Hybrid{cfg: cfg, ctx: ctx.Checked(false)}
	var err error
	h.stem, err = snoptx.NewSegment(backend, h.ctx.In("stem"), func(ctx *context.Context, in []*Node) []*Node {
		x := activations.Relu(snoptx.Conv2D(ctx.In("c1"), in[0], w, 3, 1, 0, false))
		x = activations.Relu(snoptx.Conv2D(ctx.In("c2"), x, w, 4, 2, 1, false))
		return []*Node{snoptx.Conv2D(ctx.In("c3"), x, w, 4, 2, 1, false)}
	})
	if err != nil {
		return nil, err
	}
	h.head, err = snoptx.NewSegment(backend, h.ctx.In("head"), func(ctx *context.Context, in []*Node) []*Node {
		x, labels := in[0], in[1]
		logits := snoptx.Dense(ctx.In("fc"), ReduceMean(activations.Relu(x), 1, 2), true, cfg.Classes)
		batch := logits.Shape().Dimensions[0]
		logp := LogSoftmax(logits, -1)
		loss := DivScalar(Neg(ReduceAllSum(Mul(OneHot(labels, cfg.Classes, logits.DType()), logp))), float64(batch))
		correct := ReduceAllSum(ConvertDType(Equal(ArgMax(logits, -1, labels.DType()), labels), dtypes.Float64))
		return []*Node{loss, correct}
	})
	if err != nil {
		return nil, err
	}
	if h.block, err = adjointx.NewBlock(backend, h.ctx.In("ode"), odeField(w),
		&adjointx.Options{Forward: cfg.Solver, GridIntervals: cfg.GridIntervals}); err != nil {
		return nil, err
	}
	return h, nil
}

// Name implements Model.
func (h *Hybrid) Name() string { return fmt.Sprintf("hybrid-classifier(width=%d)", h.cfg.Width) }

// MetricName implements Model.
func (h *Hybrid) MetricName() string { return "accuracy" }

// Params implements Model (valid once Step has run).
func (h *Hybrid) Params() []*context.Variable { return h.params }

// T1 returns the integration end time.
func (h *Hybrid) T1() float64 { return h.cfg.T1 }

// Step implements Model: stem forward, ODE forward, head loss and VJP, the
// adjoint backward pass, stem VJP; gradients and (with stats) the factors of
// all three parts.
func (h *Hybrid) Step(b *Batch, stats bool) (*StepResult, error) {
	if err := checkBatch(b, h.cfg.Classes); err != nil {
		return nil, err
	}
	h0, err := h.stem.Forward(b.X)
	if err != nil {
		return nil, err
	}
	tr, err := h.block.Forward([]*tensors.Tensor{h0[0]}, []float64{0, h.cfg.T1})
	if err != nil {
		return nil, err
	}
	head, err := h.head.Backward([]*tensors.Tensor{tr.Final()[0], b.Labels}, tensors.FromScalar(1.0), stats)
	if err != nil {
		return nil, err
	}
	var odeStats *adjointx.Stats
	if stats {
		odeStats = &adjointx.Stats{}
	}
	g, err := h.block.Backward(tr, [][]*tensors.Tensor{nil, {head.Input}}, &adjointx.BackwardOptions{Stats: odeStats})
	if err != nil {
		return nil, err
	}
	stem, err := h.stem.Backward([]*tensors.Tensor{b.X}, g.X0[0], stats)
	if err != nil {
		return nil, err
	}
	res := &StepResult{Loss: tensors.ToScalar[float64](convertScalar64(head.Outputs[0])),
		Metric: tensors.ToScalar[float64](head.Outputs[1]) / float64(b.Size), Grads: map[string]*tensors.Tensor{},
		BatchSize: b.Size, NFEForward: tr.Stats.NFE, NFEBackward: g.Solve.NFE, DLdT1: g.T1}
	for _, part := range []map[string]*tensors.Tensor{head.Params, g.Params, stem.Params} {
		maps.Copy(res.Grads, part)
	}
	if stats {
		res.Stats = append(append(append(res.Stats, head.Stats...), odeStats.Layers...), stem.Stats...)
	}
	if h.params == nil {
		h.params = paramsOf(h.ctx, res.Grads)
	}
	return res, nil
}

// Evaluate implements Model.
func (h *Hybrid) Evaluate(b *Batch) (float64, float64, error) {
	if err := checkBatch(b, h.cfg.Classes); err != nil {
		return 0, 0, err
	}
	h0, err := h.stem.Forward(b.X)
	if err != nil {
		return 0, 0, err
	}
	tr, err := h.block.Forward([]*tensors.Tensor{h0[0]}, []float64{0, h.cfg.T1})
	if err != nil {
		return 0, 0, err
	}
	out, err := h.head.Forward(tr.Final()[0], b.Labels)
	if err != nil {
		return 0, 0, err
	}
	return tensors.ToScalar[float64](convertScalar64(out[0])), tensors.ToScalar[float64](out[1]) / float64(b.Size), nil
}

// convertScalar64 reads a float32 or float64 scalar as a float64 tensor.
func convertScalar64(t *tensors.Tensor) *tensors.Tensor {
	if v, ok := t.Value().(float32); ok {
		return tensors.FromScalar(float64(v))
	}
	return t
}
