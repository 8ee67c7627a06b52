package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/hostval"
	"github.com/snopt-go/snopt/odeint"
)

// FFJORDConfig configures an FFJORD flow for tabular data.
type FFJORDConfig struct {
	// Dim is the data dimension D.
	Dim int
	// Hidden are the widths of the hidden ConcatSquashLinear layers of each
	// block's field: D → Hidden[0] → … → Hidden[n−1] → D.
	Hidden []int
	// Activation between the layers: "tanh" or "softplus".
	Activation string
	// Blocks is the number of CNF blocks in sequence; 0 means 1.
	Blocks int
	// T1 is each block's integration time, t ∈ [0, T1]; 0 means 1.
	T1 float64
	// Trace is how training estimates tr ∂F/∂z (Hutchinson by default: one
	// Rademacher probe per sample, per block and per iteration).
	Trace field.TraceMode
	// EvalTrace is the trace Evaluate uses; the zero value (Hutchinson) is
	// replaced by ExactTrace when Dim ≤ 16, where the exact log-likelihood
	// costs at most 16 probes. Hutchinson evaluation draws its probes from a
	// generator seeded afresh per call, so Evaluate is deterministic and
	// leaves the training probes' stream alone.
	EvalTrace field.TraceMode
	// Solver configures the solves; nil means dopri5 with rtol = atol = 1e-6
	// (the paper's setting).
	Solver *odeint.Options
	// GridIntervals of each block's statistics grid; 0 shares adjointx's
	// default (100) among the blocks, ⌈100/Blocks⌉ each, so an iteration
	// samples about 100 grid points in all, as the paper.
	GridIntervals int
	// Seed seeds the probes' generator.
	Seed uint64
}

// GasFFJORD is App. A.4's Gas model: 5 blocks of
// CSL(8,160) → Tanh → CSL(160,160) → Tanh → CSL(160,160) → Tanh → CSL(160,8).
func GasFFJORD() FFJORDConfig {
	return FFJORDConfig{Dim: 8, Hidden: []int{160, 160, 160}, Activation: "tanh", Blocks: 5}
}

// MinibooneFFJORD is App. A.4's Miniboone model: 1 block of
// CSL(43,860) → Softplus → CSL(860,860) → Softplus → CSL(860,43).
func MinibooneFFJORD() FFJORDConfig {
	return FFJORDConfig{Dim: 43, Hidden: []int{860, 860}, Activation: "softplus", Blocks: 1}
}

// FFJORD is a continuous normalizing flow of stacked CNF blocks (Grathwohl et
// al. 2019): data x = z_0 flows through block k from t = 0 to T1, z_{k+1} =
// z_k(T1), while log p changes by −∫ tr ∂F_k/∂z dt; the loss is the mean
// negative log-likelihood in nats under a standard Gaussian base,
//
//	−log p(x) = −log N(z_K; 0, I) − Σ_k ∫ tr ∂F_k/∂z dt.
//
// Each block is an adjoint Block with its own variables (scope "block<k>"),
// so SNOpt's Kronecker statistics of each block land under that block's
// layer names. The probes' generator is the model's state: MarshalBinary and
// UnmarshalBinary save and restore it, so a resumed run draws the same probes.
type FFJORD struct {
	cfg     FFJORDConfig
	ctx     *context.Context
	blocks  []*adjointx.Block
	evals   []*adjointx.Block
	params  []*context.Variable
	src     *rand.PCG
	rng     *rand.Rand
	evalRNG uint64
}

var _ Model = (*FFJORD)(nil)

// NewFFJORD builds the flow with its variables in ctx.
func NewFFJORD(backend backends.Backend, ctx *context.Context, cfg FFJORDConfig) (*FFJORD, error) {
	if backend == nil || ctx == nil {
		return nil, fmt.Errorf("%w: FFJORD needs a backend and a context", ErrInvalid)
	}
	if cfg.Blocks == 0 {
		cfg.Blocks = 1
	}
	if cfg.T1 == 0 {
		cfg.T1 = 1
	}
	var act *field.Activation
	switch cfg.Activation {
	case "tanh":
		act = field.NewTanh()
	case "softplus":
		act = field.NewSoftplus()
	default:
		return nil, fmt.Errorf("%w: FFJORD activation %q (want tanh or softplus)", ErrInvalid, cfg.Activation)
	}
	if cfg.Dim < 1 || cfg.Blocks < 1 || cfg.GridIntervals < 0 || !(cfg.T1 > 0) || math.IsInf(cfg.T1, 0) {
		return nil, fmt.Errorf("%w: FFJORD dimension %d, %d blocks, T1 %g", ErrInvalid, cfg.Dim, cfg.Blocks, cfg.T1)
	}
	for _, h := range cfg.Hidden {
		if h < 1 {
			return nil, fmt.Errorf("%w: FFJORD hidden widths %v", ErrInvalid, cfg.Hidden)
		}
	}
	if cfg.GridIntervals == 0 {
		cfg.GridIntervals = (adjointx.DefaultGridIntervals + cfg.Blocks - 1) / cfg.Blocks
	}
	if cfg.EvalTrace == field.Hutchinson && cfg.Dim <= 16 {
		cfg.EvalTrace = field.ExactTrace
	}
	if cfg.Solver == nil {
		cfg.Solver = &odeint.Options{Method: odeint.Dopri5, RTol: 1e-6, ATol: 1e-6}
	}
	src := rand.NewPCG(cfg.Seed, 0xff1024d)
	m := &FFJORD{cfg: cfg, ctx: ctx.Checked(false), src: src, rng: rand.New(src), evalRNG: cfg.Seed ^ 0xe7a1}
	newField := func(mode field.TraceMode) *field.CNF {
		f := &field.CNF{Act: act, Trace: mode}
		for i, h := range append(append([]int{}, cfg.Hidden...), cfg.Dim) {
			f.Layers = append(f.Layers, &field.ConcatSquashLinear{Name: fmt.Sprintf("csl%d", i), Out: h})
		}
		return f
	}
	opts := &adjointx.Options{Forward: cfg.Solver, GridIntervals: cfg.GridIntervals}
	for k := range cfg.Blocks {
		scope := m.ctx.In(fmt.Sprintf("block%d", k))
		blk, err := adjointx.NewBlock(backend, scope, newField(cfg.Trace), opts)
		if err != nil {
			return nil, err
		}
		m.blocks = append(m.blocks, blk)
		if cfg.EvalTrace == cfg.Trace {
			m.evals = append(m.evals, blk)
			continue
		}
		ev, err := adjointx.NewBlock(backend, scope, newField(cfg.EvalTrace), opts)
		if err != nil {
			return nil, err
		}
		m.evals = append(m.evals, ev)
	}
	return m, nil
}

// Name implements Model.
func (m *FFJORD) Name() string {
	return fmt.Sprintf("ffjord(dim=%d, hidden=%v, %s, blocks=%d)", m.cfg.Dim, m.cfg.Hidden, m.cfg.Activation, m.cfg.Blocks)
}

// MetricName implements Model.
func (m *FFJORD) MetricName() string { return "nll" }

// Params implements Model.
func (m *FFJORD) Params() []*context.Variable { return m.params }

// MarshalBinary saves the probes' generator (encoding.BinaryMarshaler).
func (m *FFJORD) MarshalBinary() ([]byte, error) { return m.src.MarshalBinary() }

// UnmarshalBinary restores a state saved by MarshalBinary.
func (m *FFJORD) UnmarshalBinary(data []byte) error {
	if err := m.src.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("%w: FFJORD probe state: %v", ErrInvalid, err)
	}
	return nil
}

// Finalize frees the compiled executables.
func (m *FFJORD) Finalize() {
	for k, b := range m.blocks {
		b.Finalize()
		if m.evals[k] != b {
			m.evals[k].Finalize()
		}
	}
}

// flow is the forward pass through every block.
type flow struct {
	trs  []*adjointx.Trajectory
	loss float64
	cot  []*tensors.Tensor // dL/d(z, logp[, ε]) at the last block's end
	nfe  int
}

// rademacher returns n·d signs ±1 as a tensor of x's dtype.
func rademacher(rng *rand.Rand, x *tensors.Tensor, n, d int) *tensors.Tensor {
	v := make([]float64, n*d)
	for i := range v {
		v[i] = float64(2*int(rng.Uint64()&1) - 1)
	}
	return hostval.Tensor(v, x.DType(), n, d)
}

// forward flows a batch through the blocks with the given trace mode.
func (m *FFJORD) forward(b *Batch, blocks []*adjointx.Block, mode field.TraceMode, rng *rand.Rand) (*flow, error) {
	if err := checkBatch(b, 0); err != nil {
		return nil, err
	}
	if d := b.X.Shape().Dimensions; len(d) != 2 || d[1] != m.cfg.Dim {
		return nil, fmt.Errorf("%w: FFJORD of dimension %d given inputs %s", ErrInvalid, m.cfg.Dim, b.X.Shape())
	}
	n, d := b.Size, m.cfg.Dim
	fl := &flow{}
	state := []*tensors.Tensor{b.X, hostval.Tensor(make([]float64, n), b.X.DType(), n, 1)}
	for _, blk := range blocks {
		x0 := state[:2:2]
		if mode == field.Hutchinson {
			x0 = append(x0, rademacher(rng, b.X, n, d))
		}
		tr, err := blk.Forward(x0, []float64{0, m.cfg.T1})
		if err != nil {
			return nil, err
		}
		fl.trs = append(fl.trs, tr)
		fl.nfe += tr.Stats.NFE
		state = tr.Final()
	}
	z, err := hostval.Float64s(state[0])
	if err != nil {
		return nil, err
	}
	dl, err := hostval.Float64s(state[1])
	if err != nil {
		return nil, err
	}
	dt := state[0].DType()
	cz, cl := make([]float64, len(z)), make([]float64, n)
	half := 0.5 * float64(d) * math.Log(2*math.Pi)
	for i := range n {
		nll := half + dl[i]
		for j := range d {
			v := z[i*d+j]
			nll += v * v / 2
			cz[i*d+j] = v / float64(n)
		}
		fl.loss += nll / float64(n)
		cl[i] = 1 / float64(n)
	}
	fl.cot = []*tensors.Tensor{hostval.Tensor(cz, dt, n, d), hostval.Tensor(cl, dt, n, 1)}
	if mode == field.Hutchinson {
		fl.cot = append(fl.cot, hostval.Tensor(make([]float64, n*d), dt, n, d))
	}
	return fl, nil
}

// Step implements Model: the forward flow, then the adjoint of each block
// from the last to the first, the cotangent of one block's start feeding the
// next one back.
func (m *FFJORD) Step(b *Batch, stats bool) (*StepResult, error) {
	fl, err := m.forward(b, m.blocks, m.cfg.Trace, m.rng)
	if err != nil {
		return nil, err
	}
	var st *adjointx.Stats
	if stats {
		st = &adjointx.Stats{}
	}
	res := &StepResult{Loss: fl.loss, Metric: fl.loss, BatchSize: b.Size, NFEForward: fl.nfe, Grads: map[string]*tensors.Tensor{}}
	cot := fl.cot
	for k := len(m.blocks) - 1; k >= 0; k-- {
		g, err := m.blocks[k].Backward(fl.trs[k], [][]*tensors.Tensor{nil, cot}, &adjointx.BackwardOptions{Stats: st})
		if err != nil {
			return nil, err
		}
		for name, v := range g.Params {
			res.Grads[name] = v
		}
		res.NFEBackward += g.Solve.NFE
		cot = g.X0[:2:2]
		if m.cfg.Trace == field.Hutchinson {
			cot = append(cot, fl.cot[2]) // a fresh zero cotangent for the block's own probe
		}
	}
	if stats {
		res.Stats = st.Layers
	}
	if m.params == nil {
		m.params = paramsOf(m.ctx, res.Grads)
	}
	return res, nil
}

// Evaluate implements Model: the batch's mean NLL (nats) with EvalTrace.
func (m *FFJORD) Evaluate(b *Batch) (float64, float64, error) {
	var rng *rand.Rand
	if m.cfg.EvalTrace == field.Hutchinson {
		rng = rand.New(rand.NewPCG(m.evalRNG, uint64(b.Size)))
	}
	fl, err := m.forward(b, m.evals, m.cfg.EvalTrace, rng)
	if err != nil {
		return 0, 0, err
	}
	return fl.loss, fl.loss, nil
}

// Sample draws n points from the model: z ~ N(0, I) flowed back through the
// blocks, last to first, from t = T1 to 0. float32 [n, Dim]; deterministic
// for a seed, and independent of the training probes' stream.
func (m *FFJORD) Sample(n int, seed uint64) (*tensors.Tensor, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d samples (want ≥ 1)", ErrInvalid, n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a3b1e))
	d := m.cfg.Dim
	z := make([]float32, n*d)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	state := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(z, n, d),
		tensors.FromFlatDataAndDimensions(make([]float32, n), n, 1)}
	for k := len(m.blocks) - 1; k >= 0; k-- {
		x0 := state[:2:2]
		if m.cfg.Trace == field.Hutchinson {
			x0 = append(x0, rademacher(rng, state[0], n, d)) // only d logp depends on it
		}
		tr, err := m.blocks[k].Forward(x0, []float64{m.cfg.T1, 0})
		if err != nil {
			return nil, err
		}
		state = tr.Final()
	}
	return state[0], nil
}
