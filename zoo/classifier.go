package zoo

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
)

// ClassifierConfig configures the image classifier of Table 4.
type ClassifierConfig struct {
	// Width is the number of channels (the paper's 64 for GPU); 0 means 16,
	// which trains in minutes on 2 CPU cores.
	Width int
	// Classes is the number of classes; 0 means 10.
	Classes int
	// T1 is the integration end time (t0 = 0); 0 means 1.
	T1 float64
	// Solver configures the ODE solves; nil means dopri5 with rtol = atol = 1e-3.
	Solver *odeint.Options
	// GridIntervals of the statistics time grid; 0 means adjointx's default.
	GridIntervals int
	// StatsBatch estimates the ODE block's Kronecker statistics from the
	// first StatsBatch samples of each batch (adjointx.Options.StatsBatch);
	// 0 uses the whole batch.
	StatsBatch int
}

// Classifier is the image classifier of Table 4: a convolutional feature
// extractor Conv(W,3,1)→ReLU→Conv(W,4,2)→ReLU→Conv(W,4,2) (no biases), an ODE
// block with F = Conv(W,3,1)→ReLU→Conv(W,3,1) (time concatenated as a
// channel, Chen et al. 2018), then ReLU, global average pooling and a linear
// layer to the classes, trained with softmax cross-entropy.
type Classifier struct {
	backend backends.Backend
	ctx     *context.Context
	cfg     ClassifierConfig

	stem, head seqRunner
	odeField   *field.Sequential
	block      *adjointx.Block
	stemFwd    *context.Exec
	stemBwd    [2]*context.Exec // without / with statistics
	headStep   [2]*context.Exec
	headEval   *context.Exec
	params     []*context.Variable
	odeParams  []*context.Variable
}

// resolve fills the defaults in and validates the configuration.
func (cfg *ClassifierConfig) resolve() error {
	if cfg.Width == 0 {
		cfg.Width = 16
	}
	if cfg.Classes == 0 {
		cfg.Classes = 10
	}
	if cfg.T1 == 0 {
		cfg.T1 = 1
	}
	if cfg.Width < 1 || cfg.Classes < 2 || !(cfg.T1 > 0) {
		return fmt.Errorf("%w: bad classifier configuration %+v", ErrInvalid, *cfg)
	}
	if cfg.Solver == nil {
		cfg.Solver = &odeint.Options{Method: odeint.Dopri5, RTol: 1e-3, ATol: 1e-3}
	}
	return nil
}

// odeField is the classifier's vector field: Conv(W,3,1)→ReLU→Conv(W,3,1)
// with time as a channel.
func odeField(w int) *field.Sequential {
	return field.NewSequential(
		&field.Conv2D{Name: "conv1", Out: w, Kernel: 3, Stride: 1, Padding: 1, ConcatTime: true}, field.NewReLU(),
		&field.Conv2D{Name: "conv2", Out: w, Kernel: 3, Stride: 1, Padding: 1, ConcatTime: true})
}

// NewClassifier builds the classifier with its variables in ctx.
func NewClassifier(backend backends.Backend, ctx *context.Context, cfg ClassifierConfig) (*Classifier, error) {
	if backend == nil || ctx == nil {
		return nil, fmt.Errorf("%w: the classifier needs a backend and a context", ErrInvalid)
	}
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	w := cfg.Width
	c := &Classifier{backend: backend, ctx: ctx.Checked(false), cfg: cfg}
	c.stem.seq = field.NewSequential(
		&field.Conv2D{Name: "c1", Out: w, Kernel: 3, Stride: 1, Padding: 0, NoBias: true}, field.NewReLU(),
		&field.Conv2D{Name: "c2", Out: w, Kernel: 4, Stride: 2, Padding: 1, NoBias: true}, field.NewReLU(),
		&field.Conv2D{Name: "c3", Out: w, Kernel: 4, Stride: 2, Padding: 1, NoBias: true})
	c.odeField = odeField(w)
	c.head.seq = field.NewSequential(field.NewReLU(), field.GlobalAvgPool{}, &field.Linear{Name: "fc", Out: cfg.Classes})
	block, err := adjointx.NewBlock(backend, c.ctx.In("ode"), c.odeField,
		&adjointx.Options{Forward: cfg.Solver, GridIntervals: cfg.GridIntervals, StatsBatch: cfg.StatsBatch})
	if err != nil {
		return nil, err
	}
	c.block = block
	return c, nil
}

// Name implements Model.
func (c *Classifier) Name() string { return fmt.Sprintf("odenet-classifier(width=%d)", c.cfg.Width) }

// MetricName implements Model.
func (c *Classifier) MetricName() string { return "accuracy" }

// Block returns the ODE block (its solver statistics, its end time).
func (c *Classifier) Block() *adjointx.Block { return c.block }

// T1 returns the integration end time.
func (c *Classifier) T1() float64 { return c.cfg.T1 }

// SetT1 changes the integration end time (free-horizon training).
func (c *Classifier) SetT1(t1 float64) { c.cfg.T1 = t1 }

// Params implements Model.
func (c *Classifier) Params() []*context.Variable { return c.params }

// ODEParams are the trainable variables of the ODE block's vector field
// only — the controls u of eq. (6) whose gradient Q_u and update δθ enter
// the free-horizon feedback term Q_Tu·δθ — sorted by ScopeAndName (valid
// once Step has run).
func (c *Classifier) ODEParams() []*context.Variable { return c.odeParams }

func (c *Classifier) build() {
	if c.stemFwd != nil {
		return
	}
	stemCtx, headCtx := c.ctx.In("stem"), c.ctx.In("head")
	c.stemFwd = context.MustNewExec(c.backend, stemCtx, func(ctx *context.Context, x *Node) *Node {
		return c.stem.seq.Eval(ctx, ScalarZero(x.Graph(), x.DType()), []*Node{x})[0]
	})
	for i, stats := range []bool{false, true} {
		c.stemBwd[i] = context.MustNewExec(c.backend, stemCtx, func(ctx *context.Context, in []*Node) []*Node {
			var outs []*Node
			c.stem.vjp(ctx, in[0], in[1], stats, &outs)
			return outs
		})
		c.headStep[i] = context.MustNewExec(c.backend, headCtx, func(ctx *context.Context, in []*Node) []*Node {
			h1, labels := in[0], in[1]
			loss, correct, dlogits := c.lossGraph(ctx, h1, labels)
			outs := []*Node{loss, correct}
			dh1 := c.head.vjp(ctx, h1, dlogits, stats, &outs)
			return append(outs, dh1)
		})
	}
	c.headEval = context.MustNewExec(c.backend, headCtx, func(ctx *context.Context, h1, labels *Node) (*Node, *Node) {
		loss, correct, _ := c.lossGraph(ctx, h1, labels)
		return loss, correct
	})
}

// lossGraph returns the batch-mean cross-entropy, the number of correct
// predictions and ∂loss/∂logits = (softmax − onehot)/B.
func (c *Classifier) lossGraph(ctx *context.Context, h1, labels *Node) (loss, correct, dlogits *Node) {
	logits := c.head.seq.Eval(ctx, ScalarZero(h1.Graph(), h1.DType()), []*Node{h1})[0]
	return crossEntropy(logits, labels, c.cfg.Classes)
}

// crossEntropy returns the batch-mean softmax cross-entropy of logits [B,
// classes] against int labels [B] (float64), the number of correct
// predictions (float64) and ∂loss/∂logits = (softmax − onehot)/B.
func crossEntropy(logits, labels *Node, classes int) (loss, correct, dlogits *Node) {
	batch := logits.Shape().Dimensions[0]
	onehot := OneHot(labels, classes, logits.DType())
	logp := LogSoftmax(logits, -1)
	loss = ConvertDType(DivScalar(Neg(ReduceAllSum(Mul(onehot, logp))), float64(batch)), dtypes.Float64)
	pred := ArgMax(logits, -1, labels.DType())
	correct = ReduceAllSum(ConvertDType(Equal(pred, labels), dtypes.Float64))
	dlogits = DivScalar(Sub(Exp(logp), onehot), float64(batch))
	return
}

func boolIdx(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Step implements Model.
func (c *Classifier) Step(b *Batch, stats bool) (*StepResult, error) {
	if err := checkBatch(b, c.cfg.Classes); err != nil {
		return nil, err
	}
	c.build()
	h0, err := c.stemFwd.Exec1(b.X)
	if err != nil {
		return nil, fmt.Errorf("zoo: feature extractor: %w", err)
	}
	tr, err := c.block.Forward([]*tensors.Tensor{h0}, []float64{0, c.cfg.T1})
	if err != nil {
		return nil, err
	}
	out, err := c.headStep[boolIdx(stats)].Exec(tr.Final()[0], b.Labels)
	if err != nil {
		return nil, fmt.Errorf("zoo: head: %w", err)
	}
	res := &StepResult{
		Loss:       tensors.ToScalar[float64](out[0]),
		Metric:     tensors.ToScalar[float64](out[1]) / float64(b.Size),
		Grads:      map[string]*tensors.Tensor{},
		NFEForward: tr.Stats.NFE,
		BatchSize:  b.Size,
	}
	dh1 := out[len(out)-1]
	if err := c.head.collect(out[2:len(out)-1], stats, res.Grads, &res.Stats); err != nil {
		return nil, err
	}
	var odeStats *adjointx.Stats
	if stats {
		odeStats = &adjointx.Stats{}
	}
	g, err := c.block.Backward(tr, [][]*tensors.Tensor{nil, {dh1}}, &adjointx.BackwardOptions{Stats: odeStats})
	if err != nil {
		return nil, err
	}
	res.NFEBackward = g.Solve.NFE
	res.DLdT1 = g.T1
	for name, t := range g.Params {
		res.Grads[name] = t
	}
	if stats {
		res.Stats = append(res.Stats, odeStats.Layers...)
	}
	sout, err := c.stemBwd[boolIdx(stats)].Exec(b.X, g.X0[0])
	if err != nil {
		return nil, fmt.Errorf("zoo: feature extractor backward: %w", err)
	}
	if err := c.stem.collect(sout, stats, res.Grads, &res.Stats); err != nil {
		return nil, err
	}
	if c.params == nil {
		all, ode := map[string]bool{}, map[string]bool{}
		for name := range res.Grads {
			all[name] = true
		}
		for name := range g.Params {
			ode[name] = true
		}
		c.params = sortedParams(c.ctx, all)
		c.odeParams = sortedParams(c.ctx, ode)
	}
	return res, nil
}

// Evaluate implements Model.
func (c *Classifier) Evaluate(b *Batch) (float64, float64, error) {
	if err := checkBatch(b, c.cfg.Classes); err != nil {
		return 0, 0, err
	}
	c.build()
	h0, err := c.stemFwd.Exec1(b.X)
	if err != nil {
		return 0, 0, err
	}
	tr, err := c.block.Forward([]*tensors.Tensor{h0}, []float64{0, c.cfg.T1})
	if err != nil {
		return 0, 0, err
	}
	loss, correct, err := c.headEval.Exec2(tr.Final()[0], b.Labels)
	if err != nil {
		return 0, 0, err
	}
	return tensors.ToScalar[float64](loss), tensors.ToScalar[float64](correct) / float64(b.Size), nil
}
