package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Circles samples the two-circles density of Chen et al. 2018's CNF example
// (scikit-learn's make_circles with noise 0.06 and factor 0.5): half the
// points on the unit circle, half on the circle of radius 0.5, plus
// Gaussian noise of standard deviation 0.06. Deterministic for a seed.
// Its generator's state is saved by MarshalBinary and restored by
// UnmarshalBinary, so a resumed run draws the same points.
type Circles struct {
	src *rand.PCG
	rng *rand.Rand
}

// NewCircles returns a sampler seeded with seed.
func NewCircles(seed uint64) *Circles {
	src := rand.NewPCG(seed, 0xc1c1e5)
	return &Circles{src: src, rng: rand.New(src)}
}

// MarshalBinary saves the generator's state (encoding.BinaryMarshaler).
func (c *Circles) MarshalBinary() ([]byte, error) { return c.src.MarshalBinary() }

// UnmarshalBinary restores a state saved by MarshalBinary.
func (c *Circles) UnmarshalBinary(data []byte) error {
	if err := c.src.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("%w: circles state: %v", ErrInvalid, err)
	}
	return nil
}

// Sample returns n ≥ 1 points as a float32 [n, 2] tensor.
func (c *Circles) Sample(n int) (*tensors.Tensor, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d circle samples (want ≥ 1)", ErrInvalid, n)
	}
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
	return tensors.FromFlatDataAndDimensions(pts, n, 2), nil
}

// Batch returns a density-estimation batch of n ≥ 1 points.
func (c *Circles) Batch(n int) (*Batch, error) {
	x, err := c.Sample(n)
	if err != nil {
		return nil, err
	}
	return &Batch{X: x, Size: n}, nil
}
