// Package freehorizon learns the integration end time T (t1) of a Neural
// ODE alongside its parameters θ (paper §3.3, eq. 15–16, App. A.3), with
// the cost Φ̃ = Φ(x(T)) + (c/2)·T².
//
// # How to use it
//
// Create a policy, NewFeedback(t1, Config{…}) (eq. 16) or NewBaseline, and
// after every training iteration pass it an Observation: dL/dT from
// adjointx's Gradients.T1, and for the feedback policy the ODE parameters'
// gradient and values. When Observe returns true, set the model's end time
// to T() (see ExampleNewFeedback). State and Restore checkpoint the policy.
//
// With the Gauss–Newton terminal approximation the derivatives are
//
//	Q_T = c·T + Φ_xᵀF̄,   Q_TT = c + (Φ_xᵀF̄)²,   Q_Tu = (Φ_xᵀF̄)·Q_uᵀ,
//
// where F̄ = F(T, x(T)) and Φ_xᵀF̄ = dL/dT and Q_u = dL/dθ come from the
// adjoint pass (adjointx.Gradients.T1 and .Params). Two policies update T
// every Every iterations from exponential moving averages of these:
//
//	Feedback (eq. 16):  T ← T − η·Q_TT⁻¹(Q_T + Q_Tu·δθ), δθ this iteration's θ change
//	Baseline (Massaroli et al. 2020):  T ← T − η·(dL/dT + c·T)
//
// Q_u and δθ belong to the ODE's own parameters (the controls u of eq. 6):
// for layers before the block the paper's δx term, which it drops, would
// apply, and layers after it enter Φ itself.
//
// T never falls below Floor and never becomes NaN: a non-finite statistic
// skips the update (and is reported through Warn), and one update moves T by
// at most T/2 + Floor.
package freehorizon

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalid reports a bad policy configuration.
var ErrInvalid = errors.New("freehorizon: invalid configuration")

// Defaults.
const (
	DefaultEvery = 50
	DefaultFloor = 0.1
	DefaultDecay = 0.9
)

// Curvature selects how the feedback policy estimates the Gauss–Newton term
// (Φ_xᵀF̄)² of Q_TT from per-iteration values of dL/dT.
type Curvature int

const (
	// SquaredMean uses (EMA of dL/dT)², the Gauss–Newton term of the
	// averaged loss. It is the default: a mini-batch's dL/dT is noisy (on
	// MNIST its spread is 5–10× its mean), and the mean of squares would add
	// that variance to Q_TT and shrink every step.
	SquaredMean Curvature = iota
	// MeanSquare uses the EMA of (dL/dT)², i.e. keeps the moving average of
	// Q_TT itself, as App. A.3 does; it includes the mini-batch variance.
	MeanSquare
)

// String names the estimate as the bench's flag spells it.
func (c Curvature) String() string {
	switch c {
	case SquaredMean:
		return "squared-mean"
	case MeanSquare:
		return "mean-square"
	}
	return fmt.Sprintf("Curvature(%d)", int(c))
}

// ParseCurvature reads "squared-mean" or "mean-square".
func ParseCurvature(s string) (Curvature, error) {
	for _, c := range []Curvature{SquaredMean, MeanSquare} {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: curvature %q (want squared-mean or mean-square)", ErrInvalid, s)
}

// Config configures a policy; zero values mean defaults where noted.
type Config struct {
	// LR is η (required, > 0). The parameters adapt to the current T, so
	// right after T moves dL/dT points back to the old value and the loss
	// jumps; η should let T drift while θ follows (on the MNIST model with
	// c = 0.3 and updates every 20 iterations, η = 0.1 descended smoothly,
	// η = 0.2 oscillated against the floor; docs/benchmarks.md).
	LR float64
	// C is the penalty c of (c/2)·T² (≥ 0), in units of the loss per T².
	// Where the other statistics settle, T sits near T* = −EMA(dL/dT)/c, so
	// c sets how much loss a shorter horizon may cost. DLdT is the derivative
	// of the batch-mean loss; code that divides it by the batch size B
	// (as the paper's reference implementation does) has the same T* with
	// c/B in place of c.
	C float64
	// Every is the update period in iterations; 0 means DefaultEvery.
	Every int
	// Warmup is the number of iterations observed before updates start
	// (the first update comes Every iterations after it). Early in training
	// dL/dT is near zero because the flow is barely used yet, which makes
	// T* = −dL/dT / c look tiny; 0 means no warm-up.
	Warmup int
	// Floor is the smallest T; 0 means DefaultFloor.
	Floor float64
	// Decay is the moving averages' factor; 0 means DefaultDecay.
	Decay float64
	// Curvature selects the feedback policy's estimate of (Φ_xᵀF̄)² in Q_TT;
	// the zero value is SquaredMean.
	Curvature Curvature
	// Warn, when set, receives a message when an update is skipped.
	Warn func(msg string)
}

func (c *Config) resolve() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v (want %s)", ErrInvalid, field, v, want)
	}
	switch {
	case !(c.LR > 0) || !finite(c.LR):
		return bad("LR", c.LR, "finite > 0")
	case !(c.C >= 0) || !finite(c.C):
		return bad("C", c.C, "finite ≥ 0")
	case c.Every < 0:
		return bad("Every", c.Every, "≥ 0")
	case c.Warmup < 0:
		return bad("Warmup", c.Warmup, "≥ 0")
	case !(c.Floor >= 0) || !finite(c.Floor):
		return bad("Floor", c.Floor, "finite ≥ 0")
	case !(c.Decay >= 0 && c.Decay < 1):
		return bad("Decay", c.Decay, "0 ≤ decay < 1")
	case c.Curvature != SquaredMean && c.Curvature != MeanSquare:
		return bad("Curvature", c.Curvature, "SquaredMean or MeanSquare")
	}
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Floor == 0 {
		c.Floor = DefaultFloor
	}
	if c.Decay == 0 {
		c.Decay = DefaultDecay
	}
	return nil
}

// Observation is one iteration's statistics.
type Observation struct {
	// DLdT is Φ_xᵀF̄ = dL/dT, the derivative of the unregularised loss in T.
	DLdT float64
	// Grad is Q_u = dL/dθ (flattened in a fixed order); the feedback policy
	// needs it, the baseline ignores it.
	Grad []float64
	// Theta is θ after this iteration's update (same order as Grad); the
	// feedback policy needs it.
	Theta []float64
}

// Policy updates T from iteration statistics.
type Policy interface {
	// Name is "feedback" or "baseline".
	Name() string
	// T is the current end time.
	T() float64
	// Observe records one iteration; every Every calls it updates T and
	// reports whether it did.
	Observe(o Observation) (updated bool)
	// Skipped counts updates skipped for non-finite statistics.
	Skipped() int
	// Last describes the most recent update (zero before the first).
	Last() Update
	// State returns everything the policy has learnt (T, the observation
	// count, the moving averages), for a checkpoint.
	State() State
	// Restore continues from a State of a policy of the same kind: the
	// following updates are exactly those the saved policy would have made.
	Restore(State) error
}

// State is a policy's checkpointable state. Its JSON encoding round-trips
// every float64 exactly.
type State struct {
	// Policy names the policy that wrote the state ("feedback", "baseline").
	Policy string `json:"policy"`
	// T is the current end time.
	T float64 `json:"t"`
	// Count is the observations received.
	Count int `json:"count"`
	// Skipped is the observations refused as non-finite.
	Skipped int `json:"skipped"`
	// Last is the last update of T.
	Last Update `json:"last"`
	// EMAs are the moving averages as (value, weight) pairs: the
	// baseline's dL/dT; the feedback policy's dL/dT and (dL/dT)².
	EMAs [][2]float64 `json:"emas"`
	// QTu is the feedback policy's EMA of Q_Tu.
	QTu []float64 `json:"qtu,omitempty"`
	// ThetaRef is θ at the feedback policy's previous observation.
	ThetaRef []float64 `json:"theta_ref,omitempty"`
}

// Update describes one change of T and the statistics behind it.
type Update struct {
	// From and To are T before and after the update.
	From, To float64
	// QT is the averaged Q_T = c·T + EMA(dL/dT); QTT is Q_TT = c + EMA(dL/dT)²
	// or c + EMA((dL/dT)²) (see Curvature; the baseline leaves it 0);
	// Feedback is Q_Tu·δθ (feedback only).
	QT, QTT, Feedback float64
	// Limited reports that the step was cut to |ΔT| ≤ T/2 + Floor or
	// raised to the floor.
	Limited bool
}

// ema is an exponential moving average with bias correction.
type ema struct {
	v, w  float64
	decay float64
}

func (e *ema) add(x float64) {
	e.v = e.decay*e.v + (1-e.decay)*x
	e.w = e.decay*e.w + (1 - e.decay)
}

func (e *ema) value() float64 {
	if e.w == 0 {
		return 0
	}
	return e.v / e.w
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// clampT keeps T above the floor.
func clampT(t, floor float64) float64 { return math.Max(t, floor) }

// limitStep bounds one update to |ΔT| ≤ T/2 + floor, so a tiny curvature
// estimate cannot throw T far away.
func limitStep(t, next, floor float64) float64 {
	bound := t/2 + floor
	return math.Min(math.Max(next, t-bound), t+bound)
}

// base holds what both policies share.
type base struct {
	cfg     Config
	t       float64
	count   int
	skipped int
	last    Update
}

// due counts one observation and reports whether it is an update iteration.
func (b *base) due() bool {
	b.count++
	n := b.count - b.cfg.Warmup
	return n > 0 && n%b.cfg.Every == 0
}

func (b *base) state(name string, emas ...*ema) State {
	st := State{Policy: name, T: b.t, Count: b.count, Skipped: b.skipped, Last: b.last}
	for _, e := range emas {
		st.EMAs = append(st.EMAs, [2]float64{e.v, e.w})
	}
	return st
}

func (b *base) restore(name string, st State, emas ...*ema) error {
	if st.Policy != name {
		return fmt.Errorf("%w: state of a %q policy restored into %q", ErrInvalid, st.Policy, name)
	}
	if len(st.EMAs) != len(emas) || !(st.T > 0) || !finite(st.T) || st.Count < 0 || st.Skipped < 0 {
		return fmt.Errorf("%w: corrupt %s state (T %g, count %d, %d averages)", ErrInvalid, name, st.T, st.Count, len(st.EMAs))
	}
	for i, e := range emas {
		e.v, e.w = st.EMAs[i][0], st.EMAs[i][1]
	}
	b.t, b.count, b.skipped, b.last = st.T, st.Count, st.Skipped, st.Last
	return nil
}

func (b *base) T() float64   { return b.t }
func (b *base) Skipped() int { return b.skipped }
func (b *base) Last() Update { return b.last }

// move applies a proposed next T within the step limit and the floor, and
// records the update.
func (b *base) move(next float64, u Update) {
	u.From = b.t
	b.t = clampT(limitStep(b.t, next, b.cfg.Floor), b.cfg.Floor)
	u.To = b.t
	u.Limited = b.t != next
	b.last = u
}

// skip reports a skipped update.
func (b *base) skip(format string, args ...any) {
	b.skipped++
	if b.cfg.Warn != nil {
		b.cfg.Warn(fmt.Sprintf("freehorizon: update at T=%g skipped: ", b.t) + fmt.Sprintf(format, args...))
	}
}

// NewBaseline returns the first-order policy T ← T − η·(EMA(dL/dT) + c·T)
// starting from t0.
func NewBaseline(t0 float64, cfg Config) (Policy, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	if !(t0 > 0) || math.IsInf(t0, 0) {
		return nil, fmt.Errorf("%w: initial T %g", ErrInvalid, t0)
	}
	return &baseline{base: base{cfg: cfg, t: clampT(t0, cfg.Floor)}, grad: ema{decay: cfg.Decay}}, nil
}

type baseline struct {
	base
	grad ema
}

func (p *baseline) Name() string { return "baseline" }

func (p *baseline) State() State { return p.state(p.Name(), &p.grad) }

func (p *baseline) Restore(st State) error { return p.restore(p.Name(), st, &p.grad) }

func (p *baseline) Observe(o Observation) bool {
	if !finite(o.DLdT) {
		p.skip("dL/dT = %g", o.DLdT)
		return false
	}
	p.grad.add(o.DLdT)
	if !p.due() {
		return false
	}
	qT := p.grad.value() + p.cfg.C*p.t
	next := p.t - p.cfg.LR*qT
	if !finite(next) {
		p.skip("step gives T = %g", next)
		return false
	}
	p.move(next, Update{QT: qT})
	return true
}

// NewFeedback returns the second-order feedback policy of eq. (16) starting
// from t0.
func NewFeedback(t0 float64, cfg Config) (Policy, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	if !(t0 > 0) || math.IsInf(t0, 0) {
		return nil, fmt.Errorf("%w: initial T %g", ErrInvalid, t0)
	}
	return &feedback{base: base{cfg: cfg, t: clampT(t0, cfg.Floor)},
		scale: ema{decay: cfg.Decay}, scale2: ema{decay: cfg.Decay}}, nil
}

type feedback struct {
	base
	scale, scale2 ema       // Φ_xᵀF̄ and (Φ_xᵀF̄)²
	qTu           []float64 // EMA of Q_Tu = (Φ_xᵀF̄)·Q_u (bias-corrected by scale's weight)
	thetaRef      []float64 // θ at the previous observation
}

func (p *feedback) Name() string { return "feedback" }

func (p *feedback) State() State {
	st := p.state(p.Name(), &p.scale, &p.scale2)
	st.QTu, st.ThetaRef = append([]float64(nil), p.qTu...), append([]float64(nil), p.thetaRef...)
	return st
}

func (p *feedback) Restore(st State) error {
	if len(st.QTu) != len(st.ThetaRef) {
		return fmt.Errorf("%w: corrupt feedback state (%d Q_Tu entries, %d θ)", ErrInvalid, len(st.QTu), len(st.ThetaRef))
	}
	if err := p.restore(p.Name(), st, &p.scale, &p.scale2); err != nil {
		return err
	}
	p.qTu, p.thetaRef = append([]float64(nil), st.QTu...), append([]float64(nil), st.ThetaRef...)
	if len(p.thetaRef) == 0 {
		p.qTu, p.thetaRef = nil, nil
	}
	return nil
}

func (p *feedback) Observe(o Observation) bool {
	if !finite(o.DLdT, o.DLdT*o.DLdT) {
		p.skip("dL/dT = %g", o.DLdT)
		return false
	}
	if len(o.Grad) != len(o.Theta) {
		p.skip("gradient has %d entries, θ %d", len(o.Grad), len(o.Theta))
		return false
	}
	for _, g := range o.Grad {
		if !finite(g) {
			p.skip("non-finite gradient")
			return false
		}
	}
	if p.thetaRef == nil || len(p.thetaRef) != len(o.Theta) {
		p.thetaRef = append([]float64{}, o.Theta...)
		p.qTu = make([]float64, len(o.Grad))
	}
	p.scale.add(o.DLdT)
	p.scale2.add(o.DLdT * o.DLdT)
	d := p.cfg.Decay
	for i, g := range o.Grad {
		p.qTu[i] = d*p.qTu[i] + (1-d)*o.DLdT*g
	}
	if !p.due() {
		copy(p.thetaRef, o.Theta)
		return false
	}
	// Q_T = c·T + Φ_xᵀF̄, Q_TT = c + (Φ_xᵀF̄)², Q_Tu·δθ with δθ the change
	// the θ-optimizer made in this iteration (θ now − θ at the previous
	// observation), as the control update δu of the same stage in eq. (16).
	qT := p.cfg.C*p.t + p.scale.value()
	gn := p.scale2.value()
	if p.cfg.Curvature == SquaredMean {
		gn = p.scale.value() * p.scale.value()
	}
	qTT := p.cfg.C + gn
	feedbackTerm := 0.0
	for i := range p.qTu {
		feedbackTerm += p.qTu[i] / p.scale.w * (o.Theta[i] - p.thetaRef[i])
	}
	copy(p.thetaRef, o.Theta)
	if !(qTT > 0) || !finite(qT, qTT, feedbackTerm) {
		p.skip("Q_T = %g, Q_TT = %g, Q_Tu·δθ = %g", qT, qTT, feedbackTerm)
		return false
	}
	next := p.t - p.cfg.LR*(qT+feedbackTerm)/qTT
	if !finite(next) {
		p.skip("step gives T = %g", next)
		return false
	}
	p.move(next, Update{QT: qT, QTT: qTT, Feedback: feedbackTerm})
	return true
}
