package adjointx

import (
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
)

const benchBatch, benchDim, benchHidden = 128, 64, 64

func randBatch32(seed uint64, dims ...int) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 3))
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

func benchField() *field.Sequential {
	return field.NewSequential(&field.Linear{Name: "l0", Out: benchHidden, ConcatTime: true}, field.NewTanh(),
		&field.Linear{Name: "l1", Out: benchDim, ConcatTime: true})
}

func benchBlock(b *testing.B, f field.Field, tol float64) *Block {
	ctx := newCtx(1, 0.1)
	blk, err := NewBlock(testutil.Backend(), ctx, f, &Options{Forward: &odeint.Options{RTol: tol, ATol: tol}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(blk.Finalize)
	return blk
}

// timeExec runs fn n times and returns the mean duration.
func timeExec(n int, fn func()) time.Duration {
	start := time.Now()
	for range n {
		fn()
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkAugmentedDynamics: one evaluation of the adjoint's augmented
// dynamics (F, aᵀF_x, aᵀF_θ) relative to one evaluation of F, for the
// hand-written VJPs and for the autodiff fallback (MLP field, batch 128, dim
// 64, hidden 64, float32). Reports the ratios taken in the same run.
func BenchmarkAugmentedDynamics(b *testing.B) {
	x := randBatch32(1, benchBatch, benchDim)
	a := randBatch32(2, benchBatch, benchDim)
	tt := tensors.FromScalar(float32(0.3))
	hand := benchField()
	ratio := func(f field.Field) (time.Duration, time.Duration) {
		blk := benchBlock(b, f, 1e-3)
		if _, err := blk.Forward([]*tensors.Tensor{x}, []float64{0, 0.1}); err != nil {
			b.Fatal(err)
		}
		params, err := blk.Params([]*tensors.Tensor{x})
		if err != nil {
			b.Fatal(err)
		}
		p, err := blk.plan(1, 0, false, params)
		if err != nil {
			b.Fatal(err)
		}
		fExec := context.MustNewExec(blk.backend, blk.ctx.Reuse(), func(ctx *context.Context, t, x *Node) *Node {
			return f.Eval(ctx, t, []*Node{x})[0]
		})
		augExec := context.MustNewExec(blk.backend, blk.ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
			return p.dynamics(ctx, in[0], in[1:])
		})
		args := []any{tt, x, a}
		for _, v := range params {
			args = append(args, tensors.FromShape(v.Shape()))
		}
		fExec.MustExec(tt, x)
		augExec.MustExec(args...)
		n := 20
		return timeExec(n, func() { fExec.MustExec(tt, x) }), timeExec(n, func() { augExec.MustExec(args...) })
	}
	var fHand, augHand, fAuto, augAuto time.Duration
	for b.Loop() {
		f1, a1 := ratio(hand)
		f2, a2 := ratio(field.Autodiff(benchField().Eval))
		fHand, augHand, fAuto, augAuto = fHand+f1, augHand+a1, fAuto+f2, augAuto+a2
	}
	b.ReportMetric(float64(fHand.Microseconds())/float64(b.N), "µs/F")
	b.ReportMetric(float64(augHand)/float64(fHand), "aug/F-hand")
	b.ReportMetric(float64(augAuto)/float64(fAuto), "aug/F-autodiff")
}

// BenchmarkIteration: forward, plain backward, and backward with Kronecker
// statistics (Gauss–Newton, 100-interval grid) on the MLP field at tol 1e-3,
// t ∈ [0, 1]; reports each relative to the forward pass.
func BenchmarkIteration(b *testing.B) {
	blk := benchBlock(b, benchField(), 1e-3)
	x := []*tensors.Tensor{randBatch32(1, benchBatch, benchDim)}
	cot := [][]*tensors.Tensor{nil, {randBatch32(2, benchBatch, benchDim)}}
	ts := []float64{0, 1}
	var fwd, bwd, bwdStats time.Duration
	var nfeF, nfeB int
	run := func() {
		start := time.Now()
		tr, err := blk.Forward(x, ts)
		if err != nil {
			b.Fatal(err)
		}
		fwd += time.Since(start)
		nfeF += tr.Stats.NFE
		start = time.Now()
		g, err := blk.Backward(tr, cot, nil)
		if err != nil {
			b.Fatal(err)
		}
		bwd += time.Since(start)
		nfeB += g.Solve.NFE
		var st Stats
		start = time.Now()
		if _, err := blk.Backward(tr, cot, &BackwardOptions{Stats: &st}); err != nil {
			b.Fatal(err)
		}
		bwdStats += time.Since(start)
		st.Reset()
	}
	run() // compile
	fwd, bwd, bwdStats, nfeF, nfeB = 0, 0, 0, 0, 0
	for b.Loop() {
		run()
	}
	n := float64(b.N)
	b.ReportMetric(float64(fwd.Milliseconds())/n, "ms/forward")
	b.ReportMetric(float64(nfeF)/n, "NFE-fwd")
	b.ReportMetric(float64(nfeB)/n, "NFE-bwd")
	b.ReportMetric(float64(bwd)/float64(fwd), "backward/forward")
	b.ReportMetric(float64(bwdStats)/float64(bwd), "stats/backward")
}

// peakHeap runs fn while sampling the Go heap every 200µs and returns the
// peak HeapAlloc above the level before it. The collector runs at GOGC=5
// meanwhile, so the peak tracks live memory rather than the pacing of
// garbage collection.
func peakHeap(fn func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			default:
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	fn()
	close(done)
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > peak.Load() {
		peak.Store(ms.HeapAlloc)
	}
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// BenchmarkPeakHeapVsTolerance: peak Go heap of forward+backward at rtol
// 1e-7 against rtol 1e-3 (several times the steps): O(1) memory in the
// number of steps means a ratio near 1. The heap is sampled, so both sides
// run for the same total number of evaluations (the loose solve repeated)
// to give the sampler the same chances to catch a transient peak.
func BenchmarkPeakHeapVsTolerance(b *testing.B) {
	x := []*tensors.Tensor{randBatch32(1, benchBatch, benchDim)}
	cot := [][]*tensors.Tensor{nil, {randBatch32(2, benchBatch, benchDim)}}
	setup := func(tol float64) (func(), int) {
		blk := benchBlock(b, benchField(), tol)
		nfe := 0
		step := func() {
			tr, err := blk.Forward(x, []float64{0, 1})
			if err != nil {
				b.Fatal(err)
			}
			g, err := blk.Backward(tr, cot, nil)
			if err != nil {
				b.Fatal(err)
			}
			nfe = tr.Stats.NFE + g.Solve.NFE
		}
		step() // compile outside the measurement
		return step, nfe
	}
	looseStep, nfeLoose := setup(1e-3)
	tightStep, nfeTight := setup(1e-7)
	reps := max(1, (nfeTight+nfeLoose/2)/nfeLoose)
	var loose, tight uint64
	for b.Loop() {
		loose += peakHeap(func() {
			for range reps {
				looseStep()
			}
		})
		tight += peakHeap(tightStep)
	}
	n := float64(b.N)
	b.ReportMetric(float64(loose)/n/(1<<20), "MiB-1e-3")
	b.ReportMetric(float64(tight)/n/(1<<20), "MiB-1e-7")
	b.ReportMetric(float64(tight)/float64(loose), "heap-ratio")
	b.ReportMetric(float64(nfeTight)/float64(nfeLoose), "NFE-ratio")
}
