package zoo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/train"
)

// ErrInvalid reports a bad argument to a model or data constructor.
var ErrInvalid = errors.New("zoo: invalid argument")

// Batcher cuts a data set into mini-batches, reshuffled every epoch with a
// seeded generator (deterministic for a given seed). Its position (the
// generator, the epoch and the place in it) is saved by MarshalBinary and
// restored by UnmarshalBinary, so a resumed run draws the same batches.
type Batcher struct {
	n, size int
	src     *rand.PCG
	rng     *rand.Rand
	perm    []int
	permSrc []byte // the generator's state before it drew perm
	pos     int
	epoch   int
	make    func(idx []int) *Batch
}

// NewImageBatcher returns a batcher over images with the given batch size
// (at least 1; capped at the number of images).
func NewImageBatcher(im *Images, size int, seed uint64) (*Batcher, error) {
	if err := im.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return newBatcher(im.N, size, seed, func(idx []int) *Batch {
		b, _ := ImageBatch(im, idx) // indices of a permutation of [0, N): always valid
		return b
	})
}

// newBatcher batches n items with make.
func newBatcher(n, size int, seed uint64, make func(idx []int) *Batch) (*Batcher, error) {
	if size < 1 {
		return nil, fmt.Errorf("%w: batch size %d (want ≥ 1)", ErrInvalid, size)
	}
	src := rand.NewPCG(seed, 0x5eed)
	return &Batcher{n: n, size: min(size, n), src: src, rng: rand.New(src), make: make}, nil
}

// batcherState is a Batcher's position.
type batcherState struct {
	N, Size int
	PermSrc []byte // nil before the first batch
	Pos     int
	Epoch   int
	Src     []byte
}

// MarshalBinary saves the batcher's position (implements
// encoding.BinaryMarshaler).
func (b *Batcher) MarshalBinary() ([]byte, error) {
	src, err := b.src.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(batcherState{N: b.n, Size: b.size, PermSrc: b.permSrc, Pos: b.pos, Epoch: b.epoch, Src: src})
}

// UnmarshalBinary restores a position saved by MarshalBinary from a batcher
// over a data set of the same size and the same batch size.
func (b *Batcher) UnmarshalBinary(data []byte) error {
	var st batcherState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%w: batcher state: %v", ErrInvalid, err)
	}
	if st.N != b.n || st.Size != b.size || st.Pos < 0 || st.Pos > st.N || st.Epoch < 0 {
		return fmt.Errorf("%w: batcher state for %d items in batches of %d (at %d), this batcher has %d in batches of %d",
			ErrInvalid, st.N, st.Size, st.Pos, b.n, b.size)
	}
	perm := []int(nil)
	if st.PermSrc != nil {
		// The permutation is redrawn from the generator's state before it.
		if err := b.src.UnmarshalBinary(st.PermSrc); err != nil {
			return fmt.Errorf("%w: batcher state: %v", ErrInvalid, err)
		}
		perm = b.rng.Perm(b.n)
	}
	if err := b.src.UnmarshalBinary(st.Src); err != nil {
		return fmt.Errorf("%w: batcher state: %v", ErrInvalid, err)
	}
	b.perm, b.permSrc, b.pos, b.epoch = perm, st.PermSrc, st.Pos, st.Epoch
	return nil
}

// Next returns the next mini-batch (full batches only; a new epoch starts
// when fewer than size items remain).
func (b *Batcher) Next() *Batch {
	if b.perm == nil || b.pos+b.size > b.n {
		b.permSrc, _ = b.src.MarshalBinary() // a PCG's state always marshals
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
// Labels int32 [B]. An index outside the set is ErrInvalid.
func ImageBatch(im *Images, idx []int) (*Batch, error) {
	if im == nil || len(idx) == 0 {
		return nil, fmt.Errorf("%w: an image batch needs images and at least one index", ErrInvalid)
	}
	if err := im.ValidateShape(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	size := im.Size()
	x := make([]float32, len(idx)*size)
	labels := make([]int32, len(idx))
	table := im.Table()
	for i, j := range idx {
		if j < 0 || j >= im.N {
			return nil, fmt.Errorf("%w: image index %d outside [0, %d)", ErrInvalid, j, im.N)
		}
		if l := im.Labels[j]; l < 0 || l >= im.Classes {
			return nil, fmt.Errorf("%w: image %d has label %d, want 0–%d", ErrInvalid, j, l, im.Classes-1)
		}
		im.Image(x[i*size:(i+1)*size], j, table)
		labels[i] = int32(im.Labels[j])
	}
	return &Batch{
		X:      tensors.FromFlatDataAndDimensions(x, len(idx), im.H, im.W, im.C),
		Labels: tensors.FromFlatDataAndDimensions(labels, len(idx)),
		Size:   len(idx),
	}, nil
}

// EvalBatches cuts a whole set into consecutive batches of at most size ≥ 1.
func EvalBatches(im *Images, size int) ([]*Batch, error) {
	if im == nil || size < 1 {
		return nil, fmt.Errorf("%w: evaluation batches of size %d", ErrInvalid, size)
	}
	return batchesInOrder(im.N, size, func(idx []int) (*Batch, error) { return ImageBatch(im, idx) })
}

// batchesInOrder gathers items 0 … n−1 into consecutive batches of at most
// size items.
func batchesInOrder(n, size int, gather func(idx []int) (*Batch, error)) ([]*Batch, error) {
	var out []*Batch
	for start := 0; start < n; start += size {
		idx := make([]int, min(size, n-start))
		for i := range idx {
			idx[i] = start + i
		}
		b, err := gather(idx)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Dataset adapts b to GoMLX's train.Dataset for classification: each Yield
// is b.Next()'s inputs and its labels as int32 [B, 1], the shape GoMLX's
// sparse cross-entropy losses take. Reset does nothing: the batcher's
// epochs never end.
func (b *Batcher) Dataset(name string) train.Dataset { return &gomlxDataset{name: name, b: b} }

type gomlxDataset struct {
	name string
	b    *Batcher
}

func (d *gomlxDataset) Name() string { return d.name }
func (d *gomlxDataset) Reset()       {}
func (d *gomlxDataset) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	batch := d.b.Next()
	labels := tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[int32](batch.Labels), batch.Size, 1)
	return nil, []*tensors.Tensor{batch.X}, []*tensors.Tensor{labels}, nil
}
