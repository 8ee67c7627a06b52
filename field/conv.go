package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/matmul"
)

// Conv2D is a 2-D convolution on channels-last inputs [B, H, W, C], computed
// as patch extraction followed by a matrix product: the form K-FAC for
// convolutions needs (Grosse & Martens 2016), and the pure-Go backend has no
// gradient through its native convolution. With stride 1 the patches are the
// K² shifted windows of the zero-padded input, concatenated, and the VJP is
// the same construction on the output cotangent with the flipped kernel;
// other strides gather the patches and scatter their cotangents.
//
// With ConcatTime, t enters as one more input channel (Chen et al. 2018's
// ConcatConv2d). Variables "weights" [K·K·C(+1), Out] (kernel rows ordered
// (di, dj, c)) and "biases" [Out] live in ctx.In(Name). Zero padding of
// Padding pixels on each side; output size (H + 2·Padding − Kernel)/Stride + 1.
type Conv2D struct {
	// Name is the layer's scope under the field's context.
	Name string
	// Out filters of Kernel×Kernel, applied every Stride pixels.
	Out, Kernel, Stride int
	// Padding is the zero padding on each side.
	Padding int
	// ConcatTime adds t as an extra input channel; NoBias drops the bias.
	ConcatTime, NoBias bool
	// AutodiffSafe gathers the patches at every stride, for a forward pass
	// that GoMLX's reverse-mode autodiff differentiates (on the pure-Go
	// backend it cannot differentiate Slice, which the stride-1 path uses).
	// The layer's own Backward does not need it.
	AutodiffSafe bool
}

var _ Layer = (*Conv2D)(nil)

type convSaved struct {
	patches       *Node     // [B·Ho·Wo, K·K·C(+1)]: with a column of ones when biased
	w             *Node     // [K·K·C, Out], without the bias row
	idx           [][]int32 // per output pixel and kernel offset: the input pixel, or H·W for padding
	wVar, bVar    *context.Variable
	h, wd, c, cIn int // input height, width, channels (with time), channels (without)
	ho, wo        int
}

// batchIndices lays idx out for n images of H·W+1 pixels each (image-major),
// as gather/scatter indices [n·P, 1] into the flattened [n·(H·W+1), C] pixels.
func batchIndices(g *Graph, idx [][]int32, n, pixels int) *Node {
	out := make([][]int32, 0, n*len(idx))
	for b := range n {
		off := int32(b * pixels)
		for _, p := range idx {
			out = append(out, []int32{off + p[0]})
		}
	}
	return Const(g, out)
}

// geometry returns the output size and the gather indices: for each output
// pixel and kernel offset, the flattened input pixel, or H·W (a zero pixel)
// where the kernel falls on the padding.
func (l *Conv2D) geometry(h, w int) (ho, wo int, idx [][]int32) {
	stride := max(l.Stride, 1)
	ho = (h+2*l.Padding-l.Kernel)/stride + 1
	wo = (w+2*l.Padding-l.Kernel)/stride + 1
	idx = make([][]int32, 0, ho*wo*l.Kernel*l.Kernel)
	for oi := range ho {
		for oj := range wo {
			for di := range l.Kernel {
				for dj := range l.Kernel {
					r, c := oi*stride-l.Padding+di, oj*stride-l.Padding+dj
					p := int32(h * w)
					if r >= 0 && r < h && c >= 0 && c < w {
						p = int32(r*w + c)
					}
					idx = append(idx, []int32{p})
				}
			}
		}
	}
	return
}

// Forward implements Layer.
func (l *Conv2D) Forward(ctx *context.Context, t, x *Node) (*Node, any) {
	if x.Rank() != 4 {
		panic(fmt.Errorf("field: Conv2D %q takes [batch, height, width, channels], got %s", l.Name, x.Shape()))
	}
	g := x.Graph()
	d := x.Shape().Dimensions
	b, h, w, cIn := d[0], d[1], d[2], d[3]
	if l.ConcatTime {
		x = Concatenate([]*Node{x, BroadcastToDims(Reshape(t, 1, 1, 1, 1), b, h, w, 1)}, 3)
	}
	c := x.Shape().Dimensions[3]
	ho, wo, idxVals := l.geometry(h, w)
	if ho < 1 || wo < 1 {
		panic(fmt.Errorf("field: Conv2D %q: kernel %d does not fit input %dx%d", l.Name, l.Kernel, h, w))
	}
	k2 := l.Kernel * l.Kernel
	var patches *Node
	if max(l.Stride, 1) == 1 && !l.AutodiffSafe {
		patches = shiftedPatches(x, l.Kernel, l.Padding, !l.NoBias)
	} else {
		// [B, H·W, C] + a zero pixel per image → [B·(H·W+1), C] → gather → [B·Ho·Wo·K·K, C]:
		// rows already in patch order, no transposes.
		flat := Reshape(Concatenate([]*Node{Reshape(x, b, h*w, c), Zeros(g, shapeLike(x, b, 1, c))}, 1), b*(h*w+1), c)
		gathered := Gather(flat, batchIndices(g, idxVals, b, h*w+1))
		patches = Reshape(gathered, b*ho*wo, k2*c)
		if !l.NoBias {
			patches = withOnes(patches)
		}
	}

	scope := ctx.In(l.Name)
	wVar := scope.VariableWithShape("weights", shapeLike(x, k2*c, l.Out))
	wt := wVar.ValueGraph(g)
	s := &convSaved{patches: patches, w: wt, idx: idxVals, wVar: wVar, h: h, wd: w, c: c, cIn: cIn, ho: ho, wo: wo}
	if !l.NoBias {
		// The bias is one more weight row, against the patches' column of
		// ones (cheaper than a broadcast add on the pure-Go backend).
		s.bVar = scope.VariableWithShape("biases", shapeLike(x, l.Out))
		wt = withBiasRow(wt, s.bVar.ValueGraph(g))
	}
	return Reshape(matmul.AB(patches, wt), b, ho, wo, l.Out), s
}

// Backward implements Layer: patch cotangents gy·Wᵀ scattered back onto the
// input pixels; ∂W = patchesᵀ·gy_k, ∂b = Σ gy_k per copy k asked for.
func (l *Conv2D) Backward(_ *Node, saved any, gy *Node, bp *Backprop) *Node {
	s := saved.(*convSaved)
	kb := gy.Shape().Dimensions[0]
	k2 := l.Kernel * l.Kernel
	rows := Reshape(gy, kb*s.ho*s.wo, l.Out)
	bp.addAffineGrads(s.patches, rows, bp.Batch*s.ho*s.wo, s.wVar, s.bVar)
	if bp.wantStats() {
		bp.addStats(s.wVar, s.bVar, s.patches, rows, s.ho*s.wo)
	}
	if max(l.Stride, 1) == 1 && l.Kernel-1-l.Padding >= 0 {
		// A stride-1 convolution's input cotangent is the convolution of the
		// output cotangent, padded by K−1−P, with the kernel flipped in both
		// spatial axes and its channel axes swapped: one matrix product on
		// shifted patches, no scatter. Only the first cIn input channels
		// (not time) are needed.
		gyPatches := shiftedPatches(Reshape(rows, kb, s.ho, s.wo, l.Out), l.Kernel, l.Kernel-1-l.Padding, false)
		return Reshape(matmul.AB(gyPatches, flippedKernel(s.w, k2, s.c, s.cIn, l.Out)), kb, s.h, s.wd, s.cIn)
	}
	gp := matMulT(rows, s.w) // [K·B·Ho·Wo, K·K·C]
	updates := Reshape(gp, kb*s.ho*s.wo*k2, s.c)
	g := gy.Graph()
	pix := s.h*s.wd + 1
	pixels := ScatterSum(Zeros(g, shapeLike(gy, kb*pix, s.c)), batchIndices(g, s.idx, kb, pix), updates, false, false)
	gx := Reshape(Slice(Reshape(pixels, kb, pix, s.c), AxisRange(), AxisRange(0, s.h*s.wd)), kb, s.h, s.wd, s.c)
	if l.ConcatTime {
		gx = Slice(gx, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, s.cIn))
	}
	return gx
}

// padSpatial surrounds [B, H, W, C] with p zero pixels on each side.
func padSpatial(x *Node, p int) *Node {
	if p == 0 {
		return x
	}
	d := x.Shape().Dimensions
	g := x.Graph()
	rows := Zeros(g, shapeLike(x, d[0], p, d[2], d[3]))
	x = Concatenate([]*Node{rows, x, rows}, 1)
	cols := Zeros(g, shapeLike(x, d[0], d[1]+2*p, p, d[3]))
	return Concatenate([]*Node{cols, x, cols}, 2)
}

// shiftedPatches extracts the stride-1 patches of x [B, H, W, C] with
// padding p as [B·Ho·Wo, K·K·C] (columns ordered (di, dj, c)): the K² shifted
// windows of the padded input, concatenated along the channels, and with
// ones, a last column of ones ([B·Ho·Wo, K·K·C+1]).
func shiftedPatches(x *Node, k, p int, ones bool) *Node {
	d := x.Shape().Dimensions
	b, c := d[0], d[3]
	ho, wo := d[1]+2*p-k+1, d[2]+2*p-k+1
	xp := padSpatial(x, p)
	parts := make([]*Node, 0, k*k)
	for di := range k {
		for dj := range k {
			parts = append(parts, Slice(xp, AxisRange(), AxisRange(di, di+ho), AxisRange(dj, dj+wo), AxisRange()))
		}
	}
	cols := k * k * c
	if ones {
		parts = append(parts, Ones(x.Graph(), shapeLike(x, b, ho, wo, 1)))
		cols++
	}
	return Reshape(Concatenate(parts, 3), b*ho*wo, cols)
}

// flippedKernel turns weights [K·K·C, Out] (rows (di, dj, c)) into the
// kernel of the transposed convolution, [K·K·Out, cIn]: offsets reversed,
// input and output channels swapped, input channels ≥ cIn dropped.
func flippedKernel(w *Node, k2, c, cIn, out int) *Node {
	w3 := Reshape(w, k2, c, out)
	if cIn < c {
		w3 = Slice(w3, AxisRange(), AxisRange(0, cIn), AxisRange())
	}
	parts := make([]*Node, k2)
	for p := range k2 {
		parts[k2-1-p] = Slice(w3, AxisRange(p, p+1), AxisRange(), AxisRange())
	}
	return Reshape(TransposeAllAxes(Concatenate(parts, 0), 0, 2, 1), k2*out, cIn)
}
