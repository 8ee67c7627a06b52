package zoo

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/hostval"
	"github.com/snopt-go/snopt/odeint"
)

// ODERNNConfig configures the hybrid ODE-RNN of the paper's time-series
// experiments (App. A.4, Table 4).
type ODERNNConfig struct {
	// Inputs is D, the features per time step (the paper's 27 / 19 / 7:
	// channels, time and one observation mask per channel).
	Inputs int
	// Hidden is H (32 for SpoAD and CharT, 64 for ArtWR).
	Hidden int
	// Classes is the number of classes.
	Classes int
	// Solver configures the segment solves; nil means dopri5 with rtol =
	// atol = 1e-3 (the backward pass takes the adjoint's semi-norm).
	Solver *odeint.Options
	// GridPoints is the number of intervals of the one statistics grid an
	// iteration spreads over all its segments, [0, K]; 0 means 100, as the
	// paper. Each segment samples the grid's points inside [k, k+1].
	GridPoints int
}

// ODERNN is the hybrid ODE-RNN (Rubanova et al. 2019) for regularly sampled
// series x_1..x_K with one label: h_0 = 0; for k = 1..K, h ← ODESolve(F, h,
// [k−1, k]) then h ← GRU(x_k, h); logits = Linear(h_K); mean cross-entropy.
// F = Linear(H,H)→Tanh→Linear(H,H)→Tanh→Linear(H,H)→Tanh→Linear(H,H),
// autonomous as Table 4's and the official code's field (time is not an
// input: on [0, K] with K up to 187 it would feed every layer inputs a
// hundred times the hidden state's, and gradients to match), its last layer
// initialised to zero. The backward pass
// is one reverse sweep — the head's VJP, then for k = K..1 the GRU's hand-written VJP and the adjoint over [k−1, k]
// with the carried cotangent — keeping only the K+1 hidden states (O(1)
// memory in solver steps). With statistics, the ODE field's Kronecker
// factors accumulate over all K segments from one grid of GridPoints
// intervals over [0, K] (about the paper's 100 points per iteration).
//
// Batches hold X float [B, K, D] and Labels int32 [B]. Variables: the field
// under "ode", the GRU under "gru" and the head under "head".
type ODERNN struct {
	cfg       ODERNNConfig
	ctx       *context.Context
	block     *adjointx.Block
	gru       gruCell
	head      seqRunner
	gruFwd    *context.Exec
	gruBwd    *context.Exec
	headStep  *context.Exec
	headEval  *context.Exec
	params    []*context.Variable
	odeParams []*context.Variable
}

var _ Model = (*ODERNN)(nil)

// NewODERNN builds the model with its variables in ctx.
func NewODERNN(backend backends.Backend, ctx *context.Context, cfg ODERNNConfig) (*ODERNN, error) {
	if backend == nil || ctx == nil {
		return nil, fmt.Errorf("%w: the ODE-RNN needs a backend and a context", ErrInvalid)
	}
	if cfg.GridPoints == 0 {
		cfg.GridPoints = 100
	}
	if cfg.Inputs < 1 || cfg.Hidden < 1 || cfg.Classes < 2 || cfg.GridPoints < 1 {
		return nil, fmt.Errorf("%w: bad ODE-RNN configuration %+v", ErrInvalid, cfg)
	}
	if cfg.Solver == nil {
		cfg.Solver = &odeint.Options{Method: odeint.Dopri5, RTol: 1e-3, ATol: 1e-3}
	}
	m := &ODERNN{cfg: cfg, ctx: ctx.Checked(false), gru: gruCell{in: cfg.Inputs, hidden: cfg.Hidden}}
	h := cfg.Hidden
	f := field.NewSequential(
		&field.Linear{Name: "l1", Out: h}, field.NewTanh(),
		&field.Linear{Name: "l2", Out: h}, field.NewTanh(),
		&field.Linear{Name: "l3", Out: h}, field.NewTanh(),
		&field.Linear{Name: "l4", Out: h})
	var err error
	if m.block, err = adjointx.NewBlock(backend, m.ctx.In("ode"), f, &adjointx.Options{Forward: cfg.Solver}); err != nil {
		return nil, err
	}
	m.head.seq = field.NewSequential(&field.Linear{Name: "fc", Out: cfg.Classes})
	gruCtx, headCtx := m.ctx.In("gru"), m.ctx.In("head")
	m.gruFwd = context.MustNewExec(backend, gruCtx, func(ctx *context.Context, x, h *Node) *Node {
		return m.gru.forward(m.gru.vars(ctx, x.Graph(), x.DType()), x, h)
	})
	// The GRU's parameter cotangents accumulate over the segments in the graph.
	m.gruBwd = context.MustNewExec(backend, gruCtx, func(ctx *context.Context, in []*Node) []*Node {
		x, h, gh1 := in[0], in[1], in[2]
		g := m.gru.vjp(m.gru.vars(ctx, x.Graph(), x.DType()), x, h, gh1)
		return []*Node{g.h, Add(in[3], g.wi), Add(in[4], g.wh), Add(in[5], g.bi), Add(in[6], g.bh)}
	})
	m.headStep = context.MustNewExec(backend, headCtx, func(ctx *context.Context, in []*Node) []*Node {
		hK, labels := in[0], in[1]
		logits := m.head.seq.Eval(ctx, ScalarZero(hK.Graph(), hK.DType()), []*Node{hK})[0]
		loss, correct, dlogits := crossEntropy(logits, labels, cfg.Classes)
		outs := []*Node{loss, correct}
		dh := m.head.vjp(ctx, hK, dlogits, false, &outs)
		return append(outs, dh)
	})
	m.headEval = context.MustNewExec(backend, headCtx, func(ctx *context.Context, hK, labels *Node) (*Node, *Node) {
		logits := m.head.seq.Eval(ctx, ScalarZero(hK.Graph(), hK.DType()), []*Node{hK})[0]
		loss, correct, _ := crossEntropy(logits, labels, cfg.Classes)
		return loss, correct
	})
	return m, nil
}

// Name implements Model.
func (m *ODERNN) Name() string { return fmt.Sprintf("ode-rnn(H=%d)", m.cfg.Hidden) }

// MetricName implements Model.
func (m *ODERNN) MetricName() string { return "accuracy" }

// Params implements Model (valid once Step has run).
func (m *ODERNN) Params() []*context.Variable { return m.params }

// ODEParams are the ODE field's variables (the part App. A.4 trains with
// the optimizer under comparison; the GRU and head train with Adam).
func (m *ODERNN) ODEParams() []*context.Variable { return m.odeParams }

// GRUHeadParams are the other trainable variables, the GRU cell's and the
// head's (Params minus ODEParams, sorted), which App. A.4 trains with Adam.
func (m *ODERNN) GRUHeadParams() []*context.Variable {
	ode := map[string]bool{}
	for _, v := range m.odeParams {
		ode[v.ScopeAndName()] = true
	}
	var rest []*context.Variable
	for _, v := range m.params {
		if !ode[v.ScopeAndName()] {
			rest = append(rest, v)
		}
	}
	return rest
}

// zeroLastLayer creates the field's last layer with zero weights and bias
// (once, in the inputs' dtype): F = 0 at initialisation, so the hidden
// state does not drift over the K unit-length segments before training
// (with He-initialised layers it grew to thousands over CharT's 187).
func (m *ODERNN) zeroLastLayer(dt dtypes.DType) {
	last := m.ctx.In("ode").In("l4")
	if last.InspectVariable(last.Scope(), "weights") != nil {
		return
	}
	h := m.cfg.Hidden
	last.VariableWithValue("weights", zeros(dt, h, h))
	last.VariableWithValue("biases", zeros(dt, h))
}

// steps cuts X [B, K, D] into K tensors [B, D].
func (m *ODERNN) steps(b *Batch) ([]*tensors.Tensor, error) {
	d := b.X.Shape().Dimensions
	if len(d) != 3 || d[2] != m.cfg.Inputs || d[1] < 1 {
		return nil, fmt.Errorf("%w: ODE-RNN inputs %s, want [batch, steps, %d]", ErrInvalid, b.X.Shape(), m.cfg.Inputs)
	}
	m.zeroLastLayer(b.X.DType())
	bs, k, dd := d[0], d[1], d[2]
	switch b.X.DType() {
	case dtypes.Float32:
		return cutSteps(tensors.MustCopyFlatData[float32](b.X), bs, k, dd), nil
	case dtypes.Float64:
		return cutSteps(tensors.MustCopyFlatData[float64](b.X), bs, k, dd), nil
	}
	return nil, fmt.Errorf("%w: ODE-RNN inputs of dtype %s", ErrInvalid, b.X.DType())
}

func cutSteps[T float32 | float64](x []T, b, k, d int) []*tensors.Tensor {
	out := make([]*tensors.Tensor, k)
	for s := range k {
		step := make([]T, b*d)
		for i := range b {
			copy(step[i*d:(i+1)*d], x[(i*k+s)*d:(i*k+s+1)*d])
		}
		out[s] = tensors.FromFlatDataAndDimensions(step, b, d)
	}
	return out
}

// forward runs the K segments and GRU updates; it returns the segments'
// trajectories, the GRU inputs ĥ_k (the ODE's outputs) and h_K.
func (m *ODERNN) forward(xs []*tensors.Tensor, batch int, dt dtypes.DType) ([]*adjointx.Trajectory, []*tensors.Tensor, *tensors.Tensor, int, error) {
	h := zeros(dt, batch, m.cfg.Hidden)
	trs := make([]*adjointx.Trajectory, len(xs))
	hats := make([]*tensors.Tensor, len(xs))
	nfe, step := 0, 0.0
	for k, x := range xs {
		// Each segment starts from the step the previous one ended with.
		tr, err := m.block.ForwardFrom([]*tensors.Tensor{h}, []float64{float64(k), float64(k + 1)}, step)
		if err != nil {
			return nil, nil, nil, 0, fmt.Errorf("zoo: ODE-RNN segment %d: %w", k+1, err)
		}
		nfe, step = nfe+tr.Stats.NFE, tr.Stats.NextStep
		trs[k], hats[k] = tr, tr.Final()[0]
		if h, err = m.gruFwd.Exec1(x, hats[k]); err != nil {
			return nil, nil, nil, 0, fmt.Errorf("zoo: ODE-RNN GRU %d: %w", k+1, err)
		}
	}
	return trs, hats, h, nfe, nil
}

// Step implements Model.
func (m *ODERNN) Step(b *Batch, stats bool) (*StepResult, error) {
	if err := checkBatch(b, m.cfg.Classes); err != nil {
		return nil, err
	}
	xs, err := m.steps(b)
	if err != nil {
		return nil, err
	}
	dt := b.X.DType()
	trs, hats, hK, nfeF, err := m.forward(xs, b.Size, dt)
	if err != nil {
		return nil, err
	}
	out, err := m.headStep.Exec(hK, b.Labels)
	if err != nil {
		return nil, fmt.Errorf("zoo: ODE-RNN head: %w", err)
	}
	res := &StepResult{Loss: tensors.ToScalar[float64](out[0]), Metric: tensors.ToScalar[float64](out[1]) / float64(b.Size),
		Grads: map[string]*tensors.Tensor{}, BatchSize: b.Size, NFEForward: nfeF, DLdT1: math.NaN()}
	for _, tr := range trs {
		res.SolveWall += tr.Stats.Wall
		res.SolveExec += tr.Stats.ExecTime
	}
	dh := out[len(out)-1]
	if err := m.head.collect(out[2:len(out)-1], false, res.Grads, nil); err != nil {
		return nil, err
	}
	h3 := 3 * m.cfg.Hidden
	acc := []*tensors.Tensor{zeros(dt, m.cfg.Inputs, h3), zeros(dt, m.cfg.Hidden, h3),
		zeros(dt, h3), zeros(dt, h3)}
	var odeStats *adjointx.Stats
	if stats {
		odeStats = &adjointx.Stats{}
	}
	odeGrads := map[string][]float64{}
	shapes := map[string][]int{}
	grid := &adjointx.Grid{T0: 0, T1: float64(len(xs)), Intervals: m.cfg.GridPoints}
	step := 0.0
	for k := len(xs) - 1; k >= 0; k-- {
		gout, err := m.gruBwd.Exec(xs[k], hats[k], dh, acc[0], acc[1], acc[2], acc[3])
		if err != nil {
			return nil, fmt.Errorf("zoo: ODE-RNN GRU backward %d: %w", k+1, err)
		}
		acc = gout[1:]
		g, err := m.block.Backward(trs[k], [][]*tensors.Tensor{nil, {gout[0]}},
			&adjointx.BackwardOptions{Stats: odeStats, Grid: grid, FirstStep: step})
		if err != nil {
			return nil, fmt.Errorf("zoo: ODE-RNN segment %d backward: %w", k+1, err)
		}
		res.NFEBackward += g.Solve.NFE
		res.SolveWall += g.Solve.Wall
		res.SolveExec += g.Solve.ExecTime
		dh, step = g.X0[0], g.Solve.NextStep
		for name, t := range g.Params {
			vals, err := hostval.Float64s(t)
			if err != nil {
				return nil, err
			}
			if sum, ok := odeGrads[name]; ok {
				for i := range sum {
					sum[i] += vals[i]
				}
			} else {
				odeGrads[name], shapes[name] = vals, t.Shape().Dimensions
			}
		}
	}
	for i, name := range []string{"wi", "wh", "bi", "bh"} {
		res.Grads["/gru/"+name] = acc[i]
	}
	for name, vals := range odeGrads {
		res.Grads[name] = hostval.Tensor(vals, dt, shapes[name]...)
	}
	if stats {
		res.Stats = odeStats.Layers
	}
	if m.params == nil {
		all, ode := map[string]bool{}, map[string]bool{}
		for name := range res.Grads {
			all[name] = true
		}
		for name := range odeGrads {
			ode[name] = true
		}
		m.params, m.odeParams = sortedParams(m.ctx, all), sortedParams(m.ctx, ode)
	}
	return res, nil
}

// Evaluate implements Model.
func (m *ODERNN) Evaluate(b *Batch) (float64, float64, error) {
	if err := checkBatch(b, m.cfg.Classes); err != nil {
		return 0, 0, err
	}
	xs, err := m.steps(b)
	if err != nil {
		return 0, 0, err
	}
	_, _, hK, _, err := m.forward(xs, b.Size, b.X.DType())
	if err != nil {
		return 0, 0, err
	}
	loss, correct, err := m.headEval.Exec2(hK, b.Labels)
	if err != nil {
		return 0, 0, err
	}
	return tensors.ToScalar[float64](loss), tensors.ToScalar[float64](correct) / float64(b.Size), nil
}

// zeros is a zero tensor of dtype dt.
func zeros(dt dtypes.DType, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return hostval.Tensor(make([]float64, n), dt, dims...)
}
