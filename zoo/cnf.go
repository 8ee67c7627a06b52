package zoo

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/odeint"
)

// CNFConfig configures the Circle continuous normalizing flow.
type CNFConfig struct {
	// Width (K) and Hidden (the HyperNet's width); 0 means 64 and 32 (Chen et al. 2018).
	Width, Hidden int
	// T1 is the data end of the flow, integrated from T1 to 0; 0 means 10.
	T1 float64
	// Solver configures the ODE solves; nil means dopri5, rtol 1e-6, atol 1e-8.
	Solver *odeint.Options
	// GridIntervals of the statistics time grid; 0 means adjointx's default.
	GridIntervals int
}

// CNF is the 2-D continuous normalizing flow of Chen et al. 2018 (App. A.4's
// Circle): data x at t = T1 flows to z at t = 0 under HyperCNF while the log
// density changes by ∫ tr ∂F/∂z; the loss is the negative log-likelihood
// under a standard Gaussian base, −mean(log N(z(0)) − Δlogp(0)).
type CNF struct {
	cfg    CNFConfig
	block  *adjointx.Block
	ctx    *context.Context
	field  *HyperCNF
	params []*context.Variable
}

// NewCNF builds the flow with its variables in ctx.
func NewCNF(backend backends.Backend, ctx *context.Context, cfg CNFConfig) (*CNF, error) {
	if backend == nil || ctx == nil {
		return nil, fmt.Errorf("%w: the CNF needs a backend and a context", ErrInvalid)
	}
	if cfg.Width == 0 {
		cfg.Width = 64
	}
	if cfg.Hidden == 0 {
		cfg.Hidden = 32
	}
	if cfg.T1 == 0 {
		cfg.T1 = 10
	}
	if cfg.Width < 1 || cfg.Hidden < 1 || !(cfg.T1 > 0) {
		return nil, fmt.Errorf("%w: CNF configuration %+v (want Width, Hidden ≥ 1 and T1 > 0)", ErrInvalid, cfg)
	}
	if cfg.Solver == nil {
		cfg.Solver = &odeint.Options{Method: odeint.Dopri5, RTol: 1e-6, ATol: 1e-8}
	}
	c := &CNF{cfg: cfg, ctx: ctx.Checked(false), field: &HyperCNF{Dim: 2, Width: cfg.Width, Hidden: cfg.Hidden}}
	block, err := adjointx.NewBlock(backend, c.ctx.In("cnf"), c.field,
		&adjointx.Options{Forward: cfg.Solver, GridIntervals: cfg.GridIntervals})
	if err != nil {
		return nil, err
	}
	c.block = block
	return c, nil
}

// Name implements Model.
func (c *CNF) Name() string { return fmt.Sprintf("circle-cnf(width=%d)", c.cfg.Width) }

// MetricName implements Model.
func (c *CNF) MetricName() string { return "nll" }

// Params implements Model.
func (c *CNF) Params() []*context.Variable { return c.params }

// forward flows a batch from T1 to 0 and returns the trajectory, the NLL and
// its cotangents at t = 0.
func (c *CNF) forward(b *Batch) (*adjointx.Trajectory, float64, [][]*tensors.Tensor, error) {
	if err := checkBatch(b, 0); err != nil {
		return nil, 0, nil, err
	}
	n := b.Size
	logp := tensors.FromFlatDataAndDimensions(make([]float32, n), n, 1)
	tr, err := c.block.Forward([]*tensors.Tensor{b.X, logp}, []float64{c.cfg.T1, 0})
	if err != nil {
		return nil, 0, nil, err
	}
	z0 := tensors.MustCopyFlatData[float32](tr.Final()[0])
	dlogp := tensors.MustCopyFlatData[float32](tr.Final()[1])
	loss := 0.0
	cz := make([]float32, len(z0))
	cl := make([]float32, n)
	for i := range n {
		x, y := float64(z0[2*i]), float64(z0[2*i+1])
		logN := -(x*x+y*y)/2 - math.Log(2*math.Pi)
		loss -= logN - float64(dlogp[i])
		cz[2*i], cz[2*i+1] = float32(x/float64(n)), float32(y/float64(n))
		cl[i] = float32(1 / float64(n))
	}
	cot := [][]*tensors.Tensor{nil, {tensors.FromFlatDataAndDimensions(cz, n, 2), tensors.FromFlatDataAndDimensions(cl, n, 1)}}
	return tr, loss / float64(n), cot, nil
}

// LogDensity returns the model's log-density log p(x) of every point of the
// batch (nats): log N(z(0)) − Δlogp(0) per point, the negative of each
// point's contribution to the loss.
func (c *CNF) LogDensity(b *Batch) ([]float64, error) {
	tr, _, _, err := c.forward(b)
	if err != nil {
		return nil, err
	}
	z0 := tensors.MustCopyFlatData[float32](tr.Final()[0])
	dlogp := tensors.MustCopyFlatData[float32](tr.Final()[1])
	out := make([]float64, b.Size)
	for i := range out {
		x, y := float64(z0[2*i]), float64(z0[2*i+1])
		out[i] = -(x*x+y*y)/2 - math.Log(2*math.Pi) - float64(dlogp[i])
	}
	return out, nil
}

// Step implements Model.
func (c *CNF) Step(b *Batch, stats bool) (*StepResult, error) {
	tr, loss, cot, err := c.forward(b)
	if err != nil {
		return nil, err
	}
	var st *adjointx.Stats
	if stats {
		st = &adjointx.Stats{}
	}
	g, err := c.block.Backward(tr, cot, &adjointx.BackwardOptions{Stats: st})
	if err != nil {
		return nil, err
	}
	res := &StepResult{Loss: loss, Metric: loss, Grads: g.Params, BatchSize: b.Size, NFEForward: tr.Stats.NFE, NFEBackward: g.Solve.NFE,
		DLdT1: g.T0} // the flow's data end is ts[0] = T1 (integrated from T1 to 0)
	if stats {
		res.Stats = st.Layers
	}
	if c.params == nil {
		c.params = paramsOf(c.ctx, g.Params)
	}
	return res, nil
}

// Evaluate implements Model: the NLL of the batch.
func (c *CNF) Evaluate(b *Batch) (float64, float64, error) {
	_, loss, _, err := c.forward(b)
	return loss, loss, err
}
