package adjointx

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/odeint"
)

// CurvatureKind selects the terminal curvature Q_xx(t1) = Σ_i y_i y_iᵀ of
// Prop. 2.
type CurvatureKind int

const (
	// GaussNewton is the paper's default (§3.2, last paragraph): R = 1 and
	// q(t1) = Φ_x/√(t1−t0). Then q obeys the adjoint's own ODE, so q(t) =
	// a(t)/√(t1−t0): it costs no extra integrated state.
	GaussNewton CurvatureKind = iota
	// Vectors uses caller-supplied vectors y_i (BackwardOptions.Vectors),
	// integrated as extra state q_i (eq. 11).
	Vectors
)

// BackwardOptions configures one backward pass.
type BackwardOptions struct {
	// Curvature selects the second-order terminal condition.
	Curvature CurvatureKind
	// Vectors[k] are the curvature vectors added at observation time ts[k]
	// (Curvature == Vectors): Vectors[k][i] is a state tuple. Each observation
	// time's vectors get their own q_i, zero before (in backward time) their
	// observation, so Q_xx keeps the exact sum of every observation's Φ_xx.
	Vectors [][][]*tensors.Tensor
	// IntegrateP also integrates p_i(t) = ∫ F_θᵀ q_i dt (eq. 11) so that
	// Q_θθ(t0) = Σ p_i p_iᵀ and Q_xθ(t0) = Σ q_i p_iᵀ can be formed (small
	// models and tests; the optimizer uses the Kronecker factors instead).
	IntegrateP bool
	// Stats, when set, receives the Kronecker factors sampled on the time grid
	// (Alg. 1 lines 5–8), added to what it already holds.
	Stats *Stats
	// FirstStep, when > 0, is the backward solve's first step (see
	// odeint.Solver.SolveFrom): a model that calls Backward once per
	// segment passes the previous call's Gradients.Solve.NextStep.
	FirstStep float64
	// Grid, when set, replaces the block's grid with the points of a grid
	// shared by several calls (see Grid); it takes precedence over
	// GridIntervals.
	Grid *Grid
	// GridIntervals, when > 0, replaces the block's Options.GridIntervals for
	// this call: a model that calls Backward once per segment (an ODE-RNN)
	// spreads about the paper's 100 grid points over all its segments.
	GridIntervals int
}

// Grid is a uniform trapezoid grid of statistics points over [T0, T1]
// (Intervals intervals) shared by several Backward calls on adjacent
// intervals — an ODE-RNN's segments, so that about the paper's 100 points
// are spread over all of them rather than 100 per segment. Each call
// samples the grid's points inside its own interval, its start included
// and its end only when that is the grid's end, so every point counts
// exactly once over a sweep that tiles [T0, T1]. The Gauss–Newton
// shortcut's q = a/√(T1 − T0) then uses the whole horizon, so the pieces
// add up to what one call over [T0, T1] would collect: Ā the integral of
// the layer inputs' second moments, B̄ their mean — K-FAC's weight-sharing
// form (T·E[A] ⊗ E[B]).
type Grid struct {
	// The grid spans [T0, T1] (either order: the backward pass runs from T1 to
	// T0).
	T0, T1 float64
	// Intervals is the number of equal intervals of the grid (Intervals + 1
	// points).
	Intervals int
}

// within returns the grid's points in [a, b) (b included when it is an end
// of the grid), in either time direction.
func (g *Grid) within(a, b float64) ([]gridPoint, error) {
	if g.Intervals < 1 || g.T0 == g.T1 || math.IsNaN(g.T0+g.T1) || math.IsInf(g.T0+g.T1, 0) {
		return nil, invalidf("statistics grid %+v", *g)
	}
	tol := 1e-12 * math.Max(1, math.Abs(g.T1-g.T0))
	near := func(x, y float64) bool { return math.Abs(x-y) <= tol }
	var out []gridPoint
	for _, pt := range grid(g.T0, g.T1, g.Intervals) {
		switch {
		case near(pt.t, b):
			if near(b, g.T0) || near(b, g.T1) {
				out = append(out, pt)
			}
		case near(pt.t, a), (pt.t-a)*(pt.t-b) < 0:
			out = append(out, pt)
		}
	}
	return out, nil
}

// Gradients is the result of a backward pass.
type Gradients struct {
	// X0 is dL/dx(t0).
	X0 []*tensors.Tensor
	// Params maps each variable's ScopeAndName to dL/dθ (eq. 3).
	Params map[string]*tensors.Tensor
	// T1 is dL/dt_end = a(t_end)ᵀF(t_end, x(t_end)), the derivative with
	// respect to the last time of the trajectory; T0 = −a(t0)ᵀF(t0, x0).
	T1, T0 float64
	// Q holds q_i(t0) (Curvature == Vectors).
	Q [][]*tensors.Tensor
	// P holds p_i(t0) (IntegrateP), keyed like Params.
	P []map[string]*tensors.Tensor
	// XBack is x re-integrated back to t0 (a check of the backward solve).
	XBack []*tensors.Tensor
	// Solve sums the statistics of the backward solves.
	Solve odeint.Stats
}

// backwardRun is the state the observer needs during one Backward call.
type backwardRun struct {
	stats   *Stats
	scale   float64
	weights map[int]float64 // output index → grid weight, for the current segment
}

// observe is the backward solver's observer: at grid times it adds the
// Kronecker statistics of the current state.
func (p *plan) observe(index int, t float64, y []*tensors.Tensor) error {
	run := p.run
	if run == nil || run.stats == nil {
		return nil
	}
	w, ok := run.weights[index]
	if !ok {
		return nil
	}
	return p.accumulate(run.stats, t, w, run.scale, y)
}

// Backward runs the adjoint pass over a trajectory from Forward. cot[k] is
// dL/dx(ts[k]) (nil where the loss does not read x(ts[k])); the adjoint jumps
// by cot[k] at each observation time, as in the adjoint sensitivity method.
// Between observation times x is re-integrated backwards from the forward
// states, so memory stays O(1) in the solver steps.
func (b *Block) Backward(tr *Trajectory, cot [][]*tensors.Tensor, opts *BackwardOptions) (*Gradients, error) {
	if opts == nil {
		opts = &BackwardOptions{}
	}
	if tr == nil || tr.block != b {
		return nil, invalidf("trajectory does not come from this block's Forward")
	}
	if len(cot) != len(tr.Ts) {
		return nil, invalidf("%d cotangents for %d times", len(cot), len(tr.Ts))
	}
	x0 := tr.Xs[0]
	n := len(x0)
	for k, c := range cot {
		if err := checkTuple(fmt.Sprintf("cotangent at ts[%d]", k), c, x0, true); err != nil {
			return nil, err
		}
		if err := checkFinite(fmt.Sprintf("cotangent at t=%g", tr.Ts[k]), tr.Ts[k], c); err != nil {
			return nil, err
		}
	}
	r, slots, err := curvatureSlots(opts, tr, x0)
	if err != nil {
		return nil, err
	}
	if opts.IntegrateP && r == 0 {
		return nil, invalidf("IntegrateP needs Curvature == Vectors with at least one vector")
	}
	params, err := b.Params(x0)
	if err != nil {
		return nil, err
	}
	p, err := b.plan(n, r, opts.IntegrateP, params)
	if err != nil {
		return nil, err
	}
	span := math.Abs(tr.Ts[len(tr.Ts)-1] - tr.Ts[0])
	if opts.Grid != nil {
		// The sweep's whole horizon: the calls on its pieces then add up to
		// what one call over it would give (Ā an integral, B̄ a mean).
		span = math.Abs(opts.Grid.T1 - opts.Grid.T0)
	}
	run := &backwardRun{stats: opts.Stats, scale: 1}
	if r == 0 {
		run.scale = 1 / math.Sqrt(span) // q = a/√(t1−t0)
	}
	p.run = run
	defer func() { p.run = nil }()

	aug := make([]*tensors.Tensor, p.size())
	for j := range n {
		aug[p.aIdx(j)] = tensors.FromShape(x0[j].Shape())
		for i := range r {
			aug[p.qIdx(i, j)] = tensors.FromShape(x0[j].Shape())
		}
	}
	for k, v := range params {
		aug[p.thIdx(k)] = tensors.FromShape(v.Shape())
		if p.withP {
			for i := range r {
				aug[p.pIdx(i, k)] = tensors.FromShape(v.Shape())
			}
		}
	}
	var pts []gridPoint
	if opts.Stats != nil {
		intervals := b.opts.GridIntervals
		if opts.GridIntervals > 0 {
			intervals = opts.GridIntervals
		}
		if opts.Grid != nil {
			if pts, err = opts.Grid.within(tr.Ts[0], tr.Ts[len(tr.Ts)-1]); err != nil {
				return nil, err
			}
		} else {
			pts = grid(tr.Ts[0], tr.Ts[len(tr.Ts)-1], intervals)
		}
	}
	g := &Gradients{}
	last := len(tr.Ts) - 1
	if cot[last] != nil {
		if g.T1, err = b.dotF(tr.Ts[last], tr.Xs[last], cot[last]); err != nil {
			return nil, err
		}
	}
	first := opts.FirstStep
	for k := last; k >= 1; k-- {
		copy(aug[:n], tr.Xs[k])
		if err := b.jump(aug, p.aIdx, cot[k]); err != nil {
			return nil, err
		}
		for _, s := range slots[k] {
			if err := b.jump(aug, func(j int) int { return p.qIdx(s.slot, j) }, s.y); err != nil {
				return nil, err
			}
		}
		ts, weights := segmentTimes(tr.Ts, k, pts)
		run.weights = weights
		sol, err := p.solver.SolveFrom(aug, ts, first)
		if err != nil {
			return nil, err
		}
		addStats(&g.Solve, sol.Stats)
		first = sol.Stats.NextStep
		aug = sol.Final()
	}
	// a(t0) before the direct term of x(t0) gives dL/dt0.
	a0 := make([]*tensors.Tensor, n)
	for j := range n {
		a0[j] = aug[p.aIdx(j)]
	}
	if g.T0, err = b.dotF(tr.Ts[0], x0, a0); err != nil {
		return nil, err
	}
	g.T0 = -g.T0
	if err := b.jump(aug, p.aIdx, cot[0]); err != nil {
		return nil, err
	}
	g.XBack = append([]*tensors.Tensor{}, aug[:n]...)
	for j := range n {
		g.X0 = append(g.X0, aug[p.aIdx(j)])
	}
	g.Params = map[string]*tensors.Tensor{}
	for k, v := range params {
		g.Params[v.ScopeAndName()] = aug[p.thIdx(k)]
	}
	for i := range r {
		q := make([]*tensors.Tensor, n)
		for j := range n {
			q[j] = aug[p.qIdx(i, j)]
		}
		g.Q = append(g.Q, q)
		if p.withP {
			m := map[string]*tensors.Tensor{}
			for k, v := range params {
				m[v.ScopeAndName()] = aug[p.pIdx(i, k)]
			}
			g.P = append(g.P, m)
		}
	}
	return g, nil
}

type curvatureSlot struct {
	slot int
	y    []*tensors.Tensor
}

// curvatureSlots assigns each curvature vector its q_i and checks shapes.
func curvatureSlots(opts *BackwardOptions, tr *Trajectory, x0 []*tensors.Tensor) (int, [][]curvatureSlot, error) {
	slots := make([][]curvatureSlot, len(tr.Ts))
	switch opts.Curvature {
	case GaussNewton:
		if opts.Vectors != nil {
			return 0, nil, invalidf("Vectors given with GaussNewton curvature")
		}
		return 0, slots, nil
	case Vectors:
	default:
		return 0, nil, invalidf("unknown curvature kind %d", opts.Curvature)
	}
	if len(opts.Vectors) != len(tr.Ts) {
		return 0, nil, invalidf("%d curvature vector sets for %d times", len(opts.Vectors), len(tr.Ts))
	}
	r := 0
	for k, ys := range opts.Vectors {
		for i, y := range ys {
			name := fmt.Sprintf("curvature vector %d at ts[%d]", i, k)
			if err := checkTuple(name, y, x0, false); err != nil {
				return 0, nil, err
			}
			if err := checkFinite(name, tr.Ts[k], y); err != nil {
				return 0, nil, err
			}
			if k == 0 {
				continue // at t0 a vector has no interval left to act on
			}
			slots[k] = append(slots[k], curvatureSlot{slot: r, y: y})
			r++
		}
	}
	if r == 0 {
		return 0, nil, invalidf("Curvature == Vectors but no vectors after ts[0]")
	}
	return r, slots, nil
}

// segmentTimes returns the backward output times from ts[k] to ts[k-1] with
// the grid points that belong to this segment — strictly inside it, at
// ts[k-1], or at ts[k] for the last segment, so each point counts once — and
// their weights by output index.
func segmentTimes(ts []float64, k int, pts []gridPoint) ([]float64, map[int]float64) {
	hi, lo := ts[k], ts[k-1]
	tol := 1e-12 * math.Max(1, math.Abs(ts[len(ts)-1]-ts[0]))
	var inner []gridPoint
	weights := map[int]float64{}
	var loW float64
	for _, pt := range pts {
		switch {
		case math.Abs(pt.t-hi) <= tol:
			if k == len(ts)-1 {
				weights[0] += pt.w
			}
		case math.Abs(pt.t-lo) <= tol:
			loW += pt.w
		case (pt.t-lo)*(pt.t-hi) < 0:
			inner = append(inner, pt)
		}
	}
	// From hi towards lo, the direction of the backward solve.
	slices.SortFunc(inner, func(a, b gridPoint) int {
		return cmp.Compare(math.Abs(a.t-hi), math.Abs(b.t-hi))
	})
	out := make([]float64, 0, len(inner)+2)
	out = append(out, hi)
	for _, pt := range inner {
		out = append(out, pt.t)
		weights[len(out)-1] = pt.w
	}
	out = append(out, lo)
	if loW > 0 {
		weights[len(out)-1] = loW
	}
	return out, weights
}

func addStats(dst *odeint.Stats, s odeint.Stats) {
	dst.NFE += s.NFE
	dst.Accepted += s.Accepted
	dst.Rejected += s.Rejected
	dst.ExecTime += s.ExecTime
	dst.Wall += s.Wall
	dst.NextStep = s.NextStep // the latest solve's
}

// checkTuple checks that c (nil allowed when optional) matches the state's shapes.
func checkTuple(name string, c, x []*tensors.Tensor, optional bool) error {
	if c == nil && optional {
		return nil
	}
	if len(c) != len(x) {
		return invalidf("%s has %d tensors, the state %d", name, len(c), len(x))
	}
	for j := range c {
		if c[j] == nil || !c[j].Ok() {
			return invalidf("%s: tensor %d is nil or finalized", name, j)
		}
		if !c[j].Shape().Equal(x[j].Shape()) {
			return invalidf("%s: tensor %d is %s, the state is %s", name, j, c[j].Shape(), x[j].Shape())
		}
	}
	return nil
}

// checkFinite returns an odeint.ErrNonFinite error when a tensor holds NaN or Inf.
func checkFinite(name string, t float64, c []*tensors.Tensor) error {
	for _, x := range c {
		ok := true
		x.MustConstFlatData(func(flat any) {
			switch v := flat.(type) {
			case []float64:
				for _, e := range v {
					ok = ok && !math.IsNaN(e) && !math.IsInf(e, 0)
				}
			case []float32:
				for _, e := range v {
					ok = ok && !math.IsNaN(float64(e)) && !math.IsInf(float64(e), 0)
				}
			}
		})
		if !ok {
			return &odeint.Error{Err: odeint.ErrNonFinite, T: t, Detail: name}
		}
	}
	return nil
}

// jump adds c (may be nil) into the state tensors at idx(j).
func (b *Block) jump(aug []*tensors.Tensor, idx func(j int) int, c []*tensors.Tensor) error {
	if c == nil {
		return nil
	}
	if b.addExec == nil {
		b.addExec = MustNewExec(b.backend, func(x, y *Node) *Node { return Add(x, y) })
		b.addExec.SetMaxCache(-1)
	}
	for j, cj := range c {
		sum, err := b.addExec.Exec1(aug[idx(j)], cj)
		if err != nil {
			return fmt.Errorf("adjointx: adding a cotangent: %w", err)
		}
		aug[idx(j)] = sum
	}
	return nil
}

// dotF returns Σ_j ⟨a_j, F_j(t, x)⟩ (summed over the batch).
func (b *Block) dotF(t float64, x, a []*tensors.Tensor) (float64, error) {
	if b.dotExec == nil {
		b.dotExec = context.MustNewExec(b.backend, b.ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
			n := (len(in) - 1) / 2
			f := b.f.Eval(ctx, in[0], in[1:1+n])
			var total *Node
			for j := range n {
				s := ReduceAllSum(Mul(in[1+n+j], f[j]))
				if total == nil {
					total = s
				} else {
					total = Add(total, s)
				}
			}
			return []*Node{ConvertDType(total, dtypes.Float64)}
		})
		b.dotExec.SetMaxCache(-1)
	}
	args := []any{scalarOf(x[0].DType(), t)}
	for _, xi := range x {
		args = append(args, xi)
	}
	for _, ai := range a {
		args = append(args, ai)
	}
	out, err := b.dotExec.Exec(args...)
	if err != nil {
		return 0, fmt.Errorf("adjointx: aᵀF at t=%g: %w", t, err)
	}
	return tensors.ToScalar[float64](out[0]), nil
}

// scalarOf is a scalar tensor of dtype dt.
func scalarOf(dt dtypes.DType, v float64) *tensors.Tensor {
	if dt == dtypes.Float32 {
		return tensors.FromScalar(float32(v))
	}
	return tensors.FromScalar(v)
}
