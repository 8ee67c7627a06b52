package odeint

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// nextStepSize is the standard integral controller (Hairer, Nørsett & Wanner,
// Solving ODEs I, II.4, eq. 4.13; torchdiffeq's defaults): the step that would
// have met the tolerance, times a safety factor, growing at most ifactor-fold
// and shrinking at most to dfactor. After an accepted step (ratio ≤ 1) the step
// never shrinks. exponent is 1/(q+1), q the embedded order.
func nextStepSize(h, ratio, exponent float64) float64 {
	if ratio == 0 {
		return h * ifactor
	}
	lower := dfactor
	if ratio < 1 {
		lower = 1
	}
	factor := math.Min(ifactor, math.Max(safety*math.Pow(ratio, -exponent), lower))
	return h * factor
}

// minStepSize is the smallest step that still moves t in the state's
// floating-point type: a few ulps of the largest time magnitude in play.
func minStepSize(dt dtypes.DType, t, tEnd float64) float64 {
	eps := 0x1p-52
	if dt == dtypes.Float32 {
		eps = 0x1p-23
	}
	return 4 * eps * math.Max(math.Abs(t), math.Abs(tEnd))
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
