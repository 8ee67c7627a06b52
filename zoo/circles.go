package zoo

import (
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Circles samples the two-circles density of Chen et al. 2018's CNF example
// (scikit-learn's make_circles with noise 0.06 and factor 0.5): half the
// points on the unit circle, half on the circle of radius 0.5, plus
// Gaussian noise of standard deviation 0.06. Deterministic for a seed.
type Circles struct {
	rng *rand.Rand
}

// NewCircles returns a sampler seeded with seed.
func NewCircles(seed uint64) *Circles { return &Circles{rng: rand.New(rand.NewPCG(seed, 0xc1c1e5))} }

// Sample returns n points as a float32 [n, 2] tensor.
func (c *Circles) Sample(n int) *tensors.Tensor {
	pts := make([]float32, 2*n)
	for i := range n {
		r := 1.0
		if i%2 == 1 {
			r = 0.5
		}
		a := 2 * math.Pi * c.rng.Float64()
		pts[2*i] = float32(r*math.Cos(a) + 0.06*c.rng.NormFloat64())
		pts[2*i+1] = float32(r*math.Sin(a) + 0.06*c.rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(pts, n, 2)
}

// Batch returns a density-estimation batch of n points.
func (c *Circles) Batch(n int) *Batch { return &Batch{X: c.Sample(n), Size: n} }
