package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// TabularSpec is the shape of a MAF/FFJORD-preprocessed tabular data set.
type TabularSpec struct {
	// Name is the data set's name.
	Name string
	// Dim features; the training, validation and test rows.
	Dim, Train, Val, Test int
}

// Tabular holds the paper's density-estimation sets by the bench's short
// names: Gas (a 10 % subset, as the paper) and Miniboone.
var Tabular = map[string]TabularSpec{
	"gas":       {Name: "gas", Dim: 8, Train: 85217, Val: 9469, Test: 10520},
	"miniboone": {Name: "miniboone", Dim: 43, Train: 29556, Val: 3284, Test: 3648},
}

// StandInDensity is a density with an exact log-likelihood for tabular
// stand-ins: a mixture of axis-aligned Gaussians u pushed through a fixed
// invertible affine map x = L·u + c, L lower-triangular with a positive
// diagonal, so log p(x) = log p_u(L⁻¹(x − c)) − Σ log L_ii. It is NOT the
// real data: a model's NLL on it is comparable with the true one it
// reports, not with the paper's Table 2.
type StandInDensity struct {
	// Dim is the dimension of the points.
	Dim     int
	weights []float64   // mixture weights
	means   [][]float64 // per component, in u space
	stds    [][]float64
	l       [][]float64 // lower-triangular, row-major rows of length Dim
	c       []float64
}

// NewStandInDensity draws a density of dim ≥ 1 dimensions with 5
// components, deterministically from seed (dim < 1 is ErrInvalid).
func NewStandInDensity(dim int, seed uint64) (*StandInDensity, error) {
	if dim < 1 || dim > 1<<16 {
		return nil, fmt.Errorf("%w: a stand-in density of %d dimensions (want 1–65536)", ErrInvalid, dim)
	}
	r := rand.New(rand.NewPCG(seed, 0xde75))
	const k = 5
	d := &StandInDensity{Dim: dim, weights: make([]float64, k), c: make([]float64, dim)}
	total := 0.0
	for i := range k {
		d.weights[i] = 0.5 + r.Float64()
		total += d.weights[i]
		mean, std := make([]float64, dim), make([]float64, dim)
		for j := range dim {
			mean[j] = 2 * r.NormFloat64()
			std[j] = 0.3 + 0.7*r.Float64()
		}
		d.means, d.stds = append(d.means, mean), append(d.stds, std)
	}
	for i := range d.weights {
		d.weights[i] /= total
	}
	d.l = make([][]float64, dim)
	for i := range dim {
		d.l[i] = make([]float64, dim)
		for j := range i {
			d.l[i][j] = 0.4 * r.NormFloat64()
		}
		d.l[i][i] = 0.5 + r.Float64()
		d.c[i] = r.NormFloat64()
	}
	return d, nil
}

// Sample draws n ≥ 0 points (row-major [n, Dim]) from the density with rng
// (nil rng or n < 0: ErrInvalid).
func (d *StandInDensity) Sample(n int, rng *rand.Rand) (*Matrix, error) {
	if n < 0 || rng == nil {
		return nil, fmt.Errorf("%w: Sample(%d) with rng %v (want n ≥ 0 and a generator)", ErrInvalid, n, rng != nil)
	}
	if err := CheckDeclared(fmt.Sprintf("Sample(%d)", n), 8*uint64(n)*uint64(d.Dim)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m := &Matrix{Rows: n, Cols: d.Dim, X: make([]float64, 0, n*d.Dim)}
	u := make([]float64, d.Dim)
	for range n {
		pick, acc := rng.Float64(), 0.0
		comp := len(d.weights) - 1
		for i, w := range d.weights {
			if acc += w; pick < acc {
				comp = i
				break
			}
		}
		for j := range u {
			u[j] = d.means[comp][j] + d.stds[comp][j]*rng.NormFloat64()
		}
		for i := range d.Dim {
			x := d.c[i]
			for j := 0; j <= i; j++ {
				x += d.l[i][j] * u[j]
			}
			m.X = append(m.X, x)
		}
	}
	return m, nil
}

// LogProb is the exact log-density of x (length Dim; any other length is
// ErrInvalid).
func (d *StandInDensity) LogProb(x []float64) (float64, error) {
	if len(x) != d.Dim {
		return 0, fmt.Errorf("%w: LogProb of a point with %d values, the density has %d dimensions", ErrInvalid, len(x), d.Dim)
	}
	// u = L⁻¹(x − c) by forward substitution.
	u := make([]float64, d.Dim)
	logDet := 0.0
	for i := range d.Dim {
		s := x[i] - d.c[i]
		for j := range i {
			s -= d.l[i][j] * u[j]
		}
		u[i] = s / d.l[i][i]
		logDet += math.Log(d.l[i][i])
	}
	// log Σ_k w_k N(u; μ_k, σ_k²) by log-sum-exp.
	best := math.Inf(-1)
	terms := make([]float64, len(d.weights))
	for k, w := range d.weights {
		t := math.Log(w)
		for j := range d.Dim {
			z := (u[j] - d.means[k][j]) / d.stds[k][j]
			t -= 0.5*z*z + math.Log(d.stds[k][j]) + 0.5*math.Log(2*math.Pi)
		}
		terms[k] = t
		best = math.Max(best, t)
	}
	sum := 0.0
	for _, t := range terms {
		sum += math.Exp(t - best)
	}
	return best + math.Log(sum) - logDet, nil
}

// TabularStandIn draws deterministic train, validation and test sets with
// spec's shapes from NewStandInDensity(spec.Dim, seed), and returns the
// density for the exact NLL. Sizes below 1 are ErrInvalid.
func TabularStandIn(spec TabularSpec, seed uint64) (train, val, test *Matrix, d *StandInDensity, err error) {
	if spec.Train < 1 || spec.Val < 1 || spec.Test < 1 {
		return nil, nil, nil, nil, fmt.Errorf("%w: stand-in %s with %d/%d/%d rows (want ≥ 1 each)", ErrInvalid, spec.Name, spec.Train, spec.Val, spec.Test)
	}
	if d, err = NewStandInDensity(spec.Dim, seed); err != nil {
		return nil, nil, nil, nil, err
	}
	draw := func(n int, stream uint64) *Matrix {
		if err != nil {
			return nil
		}
		var m *Matrix
		if m, err = d.Sample(n, rand.New(rand.NewPCG(seed, stream))); err == nil {
			m.Name = spec.Name
		}
		return m
	}
	train, val, test = draw(spec.Train, 1), draw(spec.Val, 2), draw(spec.Test, 3)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return train, val, test, d, nil
}

// Standardize rescales every column of m to zero mean and unit variance
// with m's own statistics and applies the same map to others (test and
// validation splits). It returns Σ_j log σ_j, the log-determinant of the map
// x ↦ (x − μ)/σ taken with a minus sign: a density p of the raw data becomes
// log p'(x') = log p(x) + Σ_j log σ_j in standardized coordinates. A
// constant column, a dimension mismatch or an empty m is an error.
func (m *Matrix) Standardize(others ...*Matrix) (logScale float64, err error) {
	if m.Rows < 2 {
		return 0, fmt.Errorf("%w: %s: %d rows: too few to standardize", ErrFormat, m.Name, m.Rows)
	}
	for _, o := range others {
		if o.Cols != m.Cols {
			return 0, fmt.Errorf("%w: %s has %d columns, %s has %d", ErrFormat, o.Name, o.Cols, m.Name, m.Cols)
		}
	}
	mom := columnMoments(m.X, m.Cols, 1, nil)
	for j := range mom.S {
		if !(mom.S[j] > 0) {
			return 0, fmt.Errorf("%w: %s: column %d is constant", ErrFormat, m.Name, j)
		}
		logScale += mom.LogStd(j)
	}
	for _, s := range append([]*Matrix{m}, others...) {
		if !standardizeColumns(s.X, mom) {
			return 0, fmt.Errorf("%w: %s: standardised values leave the float64 range", ErrFormat, s.Name)
		}
	}
	return logScale, nil
}
