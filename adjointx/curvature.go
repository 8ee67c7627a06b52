package adjointx

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// SoftmaxCrossEntropyFactors factors the exact Gauss–Newton curvature of the
// batch-mean softmax cross-entropy with respect to the logits [B, C]: it
// returns C tensors y_c shaped like the logits with
//
//	Σ_c y_c[b] y_c[b]ᵀ = ∂²L/∂z_b² = (diag(p_b) − p_b p_bᵀ)/B
//
// for every sample b, from y_c[b] = √(p_bc)·(e_c − p_b)/√B, p_b = softmax(z_b)
// (the identity Σ_c p_c (e_c − p)(e_c − p)ᵀ = diag(p) − ppᵀ). The labels do
// not enter: for softmax cross-entropy the Hessian in the logits does not
// depend on them. As Vectors curvature they give the exact Φ_xx of Prop. 2
// per sample (the rank is C, or C·B over the whole batch, which K-FAC's
// per-sample statistics never mix). When a head maps x(t1) to the logits,
// map each y_c through the head's vector–Jacobian product.
func SoftmaxCrossEntropyFactors(logits *tensors.Tensor) ([]*tensors.Tensor, error) {
	if logits == nil || logits.Rank() != 2 {
		return nil, invalidf("logits must be [batch, classes]")
	}
	d := logits.Shape().Dimensions
	batch, classes := d[0], d[1]
	z, err := float64Values(logits)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, classes)
	for c := range out {
		out[c] = make([]float64, batch*classes)
	}
	inv := 1 / math.Sqrt(float64(batch))
	p := make([]float64, classes)
	for b := range batch {
		row := z[b*classes : (b+1)*classes]
		zmax := math.Inf(-1)
		for _, v := range row {
			zmax = math.Max(zmax, v)
		}
		total := 0.0
		for i, v := range row {
			p[i] = math.Exp(v - zmax)
			total += p[i]
		}
		for i := range p {
			p[i] /= total
		}
		for c := range classes {
			s := math.Sqrt(p[c]) * inv
			for i := range classes {
				e := -p[i]
				if i == c {
					e++
				}
				out[c][b*classes+i] = s * e
			}
		}
	}
	return toTensors(out, logits)
}

// GaussianFactors factors the curvature of the batch-mean Gaussian negative
// log-likelihood L = (1/B) Σ_b Σ_d (x_bd − μ_bd)²/(2σ_d²) with respect to the
// means x [B, D]: D tensors y_d shaped like x with y_d[b] = e_d/(σ_d·√B), so
// Σ_d y_d[b] y_d[b]ᵀ = diag(1/σ²)/B exactly. sigma has one entry per
// feature (or a single entry for all).
func GaussianFactors(x *tensors.Tensor, sigma []float64) ([]*tensors.Tensor, error) {
	if x == nil || x.Rank() != 2 {
		return nil, invalidf("x must be [batch, features]")
	}
	d := x.Shape().Dimensions
	batch, feats := d[0], d[1]
	if len(sigma) != 1 && len(sigma) != feats {
		return nil, invalidf("%d standard deviations for %d features", len(sigma), feats)
	}
	out := make([][]float64, feats)
	inv := 1 / math.Sqrt(float64(batch))
	for f := range feats {
		s := sigma[0]
		if len(sigma) > 1 {
			s = sigma[f]
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return nil, invalidf("standard deviation %g must be positive and finite", s)
		}
		out[f] = make([]float64, batch*feats)
		for b := range batch {
			out[f][b*feats+f] = inv / s
		}
	}
	return toTensors(out, x)
}

func float64Values(x *tensors.Tensor) ([]float64, error) {
	switch x.DType() {
	case dtypes.Float64:
		return tensors.CopyFlatData[float64](x)
	case dtypes.Float32:
		v, err := tensors.CopyFlatData[float32](x)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = float64(e)
		}
		return out, nil
	}
	return nil, invalidf("dtype %s unsupported (want float32 or float64)", x.DType())
}

// toTensors converts host vectors to tensors shaped and typed like like.
func toTensors(vs [][]float64, like *tensors.Tensor) ([]*tensors.Tensor, error) {
	dims := like.Shape().Dimensions
	out := make([]*tensors.Tensor, len(vs))
	for i, v := range vs {
		if like.DType() == dtypes.Float32 {
			f := make([]float32, len(v))
			for j, e := range v {
				f[j] = float32(e)
			}
			out[i] = tensors.FromFlatDataAndDimensions(f, dims...)
		} else {
			out[i] = tensors.FromFlatDataAndDimensions(v, dims...)
		}
	}
	return out, nil
}
