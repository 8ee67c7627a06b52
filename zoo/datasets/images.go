package datasets

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
