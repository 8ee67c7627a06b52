package zoo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// BenchmarkClassifierStep: one training step (forward, adjoint backward,
// feature-extractor backward; no statistics) of the width-16 classifier on
// a batch of 128 fixture images.
func BenchmarkClassifierStep(b *testing.B) {
	train, _, err := LoadMNIST("../testdata/mnist-small")
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewClassifier(testutil.Backend(), context.New(), ClassifierConfig{Width: 16})
	if err != nil {
		b.Fatal(err)
	}
	batch := firstBatch(b, train, 128)
	if _, err := m.Step(batch, false); err != nil {
		b.Fatal(err)
	}
	nfe := 0
	for b.Loop() {
		res, err := m.Step(batch, false)
		if err != nil {
			b.Fatal(err)
		}
		nfe += res.NFEForward + res.NFEBackward
	}
	b.ReportMetric(float64(nfe)/float64(b.N), "NFE")
}

// BenchmarkODERNNStep is one training step of the ODE-RNN on a CharT-shaped
// stand-in cut to 20 steps (batch 512, H 32, D 7).
func BenchmarkODERNNStep(b *testing.B) {
	spec := datasets.ArchiveSpec{Name: "CharacterTrajectories", Channels: 3, Classes: 20, Length: 20, Train: 512, Test: 1}
	train, _, err := datasets.StandIn(spec, 1)
	require.NoError(b, err)
	if _, _, err := train.Standardize(); err != nil {
		b.Fatal(err)
	}
	m, err := NewODERNN(testutil.Backend(), context.New(), ODERNNConfig{Inputs: SeriesInputs(3), Hidden: 32, Classes: 20})
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 512)
	for i := range idx {
		idx[i] = i
	}
	batch, err := SeriesBatch(train, idx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Step(batch, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	nfe := 0
	var solveWall, solveExec time.Duration
	for range b.N {
		res, err := m.Step(batch, false)
		if err != nil {
			b.Fatal(err)
		}
		nfe += res.NFEForward + res.NFEBackward
		solveWall += res.SolveWall
		solveExec += res.SolveExec
	}
	b.ReportMetric(float64(nfe)/float64(b.N), "nfe/op")
	// The host-side share of the ODE solves: step-size control and
	// bookkeeping between compiled executions, over all K segments.
	b.ReportMetric(100*float64(solveWall-solveExec)/float64(solveWall), "%host")
}

// benchFFJORD times one training step of an FFJORD preset on a batch of its
// stand-in density (float32), statistics on every other step.
func benchFFJORD(b *testing.B, cfg FFJORDConfig, spec datasets.TabularSpec, batch int) {
	dens, err := datasets.NewStandInDensity(spec.Dim, 1)
	require.NoError(b, err)
	x, err := dens.Sample(batch, rand.New(rand.NewPCG(1, 2)))
	require.NoError(b, err)
	vals := make([]float32, len(x.X))
	for i, v := range x.X {
		vals[i] = float32(v)
	}
	bt := &Batch{X: tensors.FromFlatDataAndDimensions(vals, x.Rows, x.Cols), Size: x.Rows}
	m, err := NewFFJORD(testutil.Backend(), context.New(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Step(bt, false); err != nil {
		b.Fatal(err)
	}
	nfe, i := 0, 0
	for b.Loop() {
		res, err := m.Step(bt, i%2 == 1)
		if err != nil {
			b.Fatal(err)
		}
		nfe += res.NFEForward + res.NFEBackward
		i++
	}
	b.ReportMetric(float64(nfe)/float64(b.N), "NFE")
}

// BenchmarkFFJORDGasStep: App. A.4's Gas flow (5 blocks, 8-160-160-160-8) on
// 1000 samples, dopri5 at the paper's 1e-6.
func BenchmarkFFJORDGasStep(b *testing.B) {
	benchFFJORD(b, GasFFJORD(), datasets.Tabular["gas"], 1000)
}

// BenchmarkFFJORDMinibooneStep: App. A.4's Miniboone flow (43-860-860-43) on
// 128 samples.
func BenchmarkFFJORDMinibooneStep(b *testing.B) {
	benchFFJORD(b, MinibooneFFJORD(), datasets.Tabular["miniboone"], 128)
}
