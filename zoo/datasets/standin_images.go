package datasets

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// ImageSpec is the shape of an image classification data set.
type ImageSpec struct {
	Name string // the data set's name
	// H×W pixels with C channels, the number of classes, and the training and
	// test set sizes.
	H, W, C, Classes, Train, Test int
}

// ImageSets holds the shapes of the paper's colour image data sets (Table 1),
// by the names the bench uses.
var ImageSets = map[string]ImageSpec{
	"cifar10": {Name: "CIFAR-10", H: 32, W: 32, C: 3, Classes: 10, Train: 50000, Test: 10000},
	"svhn":    {Name: "SVHN", H: 32, W: 32, C: 3, Classes: 10, Train: 73257, Test: 26032},
}

// ImageStandIn generates a deterministic stand-in with spec's shapes for
// machines without the data set's files: the first nTrain training and nTest
// test images (0, or more than the set has: all of them). Image i of a set
// depends only on the seed, the set and i, so a smaller n gives a prefix of
// a larger one.
//
// Each class has a template: a smooth coloured background (two random
// planar waves per channel) and an elliptic "object" of a class colour. An
// image is its class's object at a random position, size and orientation
// over a mixture of its class's background and another class's (weight up to
// one half), under a random brightness and per-channel gain, plus pixel
// noise — no single pixel separates the classes, and a small convolutional
// model learns them to well above chance but not perfectly. It is NOT the
// data set: results on it are not the paper's Table 2.
func ImageStandIn(spec ImageSpec, seed uint64, nTrain, nTest int) (train, test *Images, err error) {
	if spec.H < 1 || spec.W < 1 || spec.C < 1 || spec.Classes < 2 || spec.Train < 1 || spec.Test < 1 || nTrain < 0 || nTest < 0 {
		return nil, nil, fmt.Errorf("%w: image stand-in %q of %d×%d×%d, %d classes, %d/%d images, first %d/%d (want sizes ≥ 1, ≥ 2 classes, counts ≥ 0)",
			ErrInvalid, spec.Name, spec.H, spec.W, spec.C, spec.Classes, spec.Train, spec.Test, nTrain, nTest)
	}
	if nTrain == 0 || nTrain > spec.Train {
		nTrain = spec.Train
	}
	if nTest == 0 || nTest > spec.Test {
		nTest = spec.Test
	}
	size := uint64(spec.H) * uint64(spec.W) * uint64(spec.C)
	if err := CheckDeclared("stand-in "+spec.Name, size*uint64(nTrain+nTest)); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(spec.Name))
	setSeed := seed ^ h.Sum64()
	type wave struct{ fx, fy, phase, amp float64 }
	type template struct {
		waves  [][2]wave // per channel
		colour []float64 // the object's colour per channel, in [0, 1]
		base   []float64 // the background's level per channel
		aspect float64   // the object's axis ratio
	}
	rng := rand.New(rand.NewPCG(setSeed, 0x1a6e))
	tmpl := make([]template, spec.Classes)
	for k := range tmpl {
		t := &tmpl[k]
		t.waves, t.colour, t.base = make([][2]wave, spec.C), make([]float64, spec.C), make([]float64, spec.C)
		for c := range spec.C {
			for j := range 2 {
				t.waves[c][j] = wave{fx: 3 * rng.NormFloat64(), fy: 3 * rng.NormFloat64(), phase: 2 * math.Pi * rng.Float64(), amp: 0.15 * rng.Float64()}
			}
			t.colour[c] = rng.Float64()
			t.base[c] = 0.25 + 0.5*rng.Float64()
		}
		t.aspect = 0.5 + rng.Float64()
	}
	background := func(t *template, c int, x, y float64) float64 {
		v := t.base[c]
		for _, w := range t.waves[c] {
			v += w.amp * math.Sin(w.fx*x+w.fy*y+w.phase)
		}
		return v
	}
	gen := func(n int, stream uint64) *Images {
		im := &Images{N: n, H: spec.H, W: spec.W, C: spec.C, Classes: spec.Classes,
			Bytes: make([]uint8, uint64(n)*size), Labels: make([]int, n)}
		for i := range n {
			r := rand.New(rand.NewPCG(setSeed+uint64(i), stream))
			k := r.IntN(spec.Classes)
			other := (k + 1 + r.IntN(spec.Classes-1)) % spec.Classes
			im.Labels[i] = k
			t, o := &tmpl[k], &tmpl[other]
			mix := 0.5 * r.Float64()
			cx, cy := 0.5+0.15*r.NormFloat64(), 0.5+0.15*r.NormFloat64()
			radius := 0.18 + 0.1*r.Float64()
			angle := math.Pi * r.Float64()
			cosA, sinA := math.Cos(angle), math.Sin(angle)
			bright := 0.15 * r.NormFloat64()
			gain := make([]float64, spec.C)
			for c := range gain {
				gain[c] = 1 + 0.15*r.NormFloat64()
			}
			px := im.Bytes[uint64(i)*size : uint64(i+1)*size]
			for yy := range spec.H {
				y := (float64(yy) + 0.5) / float64(spec.H)
				for xx := range spec.W {
					x := (float64(xx) + 0.5) / float64(spec.W)
					u, v := (x-cx)*cosA+(y-cy)*sinA, (-(x-cx)*sinA+(y-cy)*cosA)*t.aspect
					d := (u*u + v*v) / (radius * radius)
					inside := 1 / (1 + math.Exp(8*(d-1))) // a soft edge
					for c := range spec.C {
						bg := (1-mix)*background(t, c, x, y) + mix*background(o, c, x, y)
						val := gain[c]*((1-inside)*bg+inside*t.colour[c]) + bright + 0.08*r.NormFloat64()
						px[(yy*spec.W+xx)*spec.C+c] = uint8(math.Round(255 * min(1, max(0, val))))
					}
				}
			}
		}
		return im
	}
	return gen(nTrain, 1), gen(nTest, 2), nil
}
