package zoo

import (
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Batcher cuts a data set into mini-batches, reshuffled every epoch with a
// seeded generator (deterministic for a given seed).
type Batcher struct {
	n, size int
	rng     *rand.Rand
	perm    []int
	pos     int
	epoch   int
	make    func(idx []int) *Batch
}

// NewImageBatcher returns a batcher over images with the given batch size.
func NewImageBatcher(im *Images, size int, seed uint64) *Batcher {
	return &Batcher{n: im.N, size: min(size, im.N), rng: rand.New(rand.NewPCG(seed, 0x5eed)),
		make: func(idx []int) *Batch { return ImageBatch(im, idx) }}
}

// Next returns the next mini-batch (full batches only; a new epoch starts
// when fewer than size items remain).
func (b *Batcher) Next() *Batch {
	if b.perm == nil || b.pos+b.size > b.n {
		b.perm = b.rng.Perm(b.n)
		b.pos = 0
		b.epoch++
	}
	idx := b.perm[b.pos : b.pos+b.size]
	b.pos += b.size
	return b.make(idx)
}

// Epoch is the number of epochs started.
func (b *Batcher) Epoch() int { return b.epoch }

// ImageBatch gathers the images idx into a batch: X float32 [B, H, W, C],
// Labels int32 [B].
func ImageBatch(im *Images, idx []int) *Batch {
	size := im.H * im.W * im.C
	x := make([]float32, len(idx)*size)
	labels := make([]int32, len(idx))
	for i, j := range idx {
		copy(x[i*size:(i+1)*size], im.Pixels[j*size:(j+1)*size])
		labels[i] = int32(im.Labels[j])
	}
	return &Batch{
		X:      tensors.FromFlatDataAndDimensions(x, len(idx), im.H, im.W, im.C),
		Labels: tensors.FromFlatDataAndDimensions(labels, len(idx)),
		Size:   len(idx),
	}
}

// EvalBatches cuts a whole set into consecutive batches of at most size.
func EvalBatches(im *Images, size int) []*Batch {
	var out []*Batch
	for start := 0; start < im.N; start += size {
		end := min(start+size, im.N)
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		out = append(out, ImageBatch(im, idx))
	}
	return out
}
