package adjointx

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
)

var (
	randn = testutil.RandN
	vals  = testutil.Float64s
)

func fromVals(v []float64, like *tensors.Tensor) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float64{}, v...), like.Shape().Dimensions...)
}

// relErr is ‖got − want‖ / ‖want‖.
func relErr(got, want []float64) float64 {
	var num, den float64
	for i := range want {
		num += (got[i] - want[i]) * (got[i] - want[i])
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

func newCtx(seed int64, std float64) *context.Context {
	ctx := context.New()
	_ = ctx.SetRNGStateFromSeed(seed)
	return ctx.WithInitializer(initializers.RandomNormalFn(ctx, std))
}

func tolOpts(tol float64) *odeint.Options {
	return &odeint.Options{Method: odeint.Dopri5, RTol: tol, ATol: tol}
}

func newBlock(t *testing.T, ctx *context.Context, f field.Field, opts *Options) *Block {
	t.Helper()
	b, err := NewBlock(testutil.Backend(), ctx, f, opts)
	require.NoError(t, err)
	t.Cleanup(b.Finalize)
	return b
}

// mlpField is a small tanh MLP; timeDep makes both layers read t.
func mlpField(dim, hidden int, timeDep bool) *field.Sequential {
	return field.NewSequential(
		&field.Linear{Name: "l0", Out: hidden, ConcatTime: timeDep}, field.NewTanh(),
		&field.Linear{Name: "l1", Out: dim, ConcatTime: timeDep})
}
