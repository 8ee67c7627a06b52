package datasets

import "math"

// Images is a labelled image set, pixels normalised and laid out
// channels-last: image i is Pixels[i·H·W·C : (i+1)·H·W·C].
type Images struct {
	N, H, W, C int
	Pixels     []float32
	Labels     []int
	Classes    int
}

// Subset returns the first n images (all if n ≤ 0 or n ≥ N), sharing storage.
func (im *Images) Subset(n int) *Images {
	if im == nil || n <= 0 || n >= im.N {
		return im
	}
	size := im.H * im.W * im.C
	out := *im
	out.N, out.Pixels, out.Labels = n, im.Pixels[:n*size], im.Labels[:n]
	return &out
}

// columnMoments returns the mean and the standard deviation of each of the c
// interleaved columns of x (value i belongs to column i mod c: channels of
// channels-last pixels, columns of a row-major matrix), the squared
// deviations divided by count − ddof (0: population, 1: sample).
func columnMoments[T float32 | float64](x []T, c, ddof int) (mean, std []float64) {
	mean, std = make([]float64, c), make([]float64, c)
	count := len(x) / c
	if count <= ddof {
		return mean, std // too few values: zeros
	}
	for i, v := range x {
		mean[i%c] += float64(v)
	}
	for k := range mean {
		mean[k] /= float64(count)
	}
	for i, v := range x {
		d := float64(v) - mean[i%c]
		std[i%c] += d * d
	}
	for k := range std {
		std[k] = math.Sqrt(std[k] / float64(count-ddof))
	}
	return mean, std
}

// standardizeColumns maps every value of x to (v − mean)/std of its column
// (see columnMoments).
func standardizeColumns[T float32 | float64](x []T, mean, std []float64) {
	c := len(mean)
	for i, v := range x {
		x[i] = T((float64(v) - mean[i%c]) / std[i%c])
	}
}
