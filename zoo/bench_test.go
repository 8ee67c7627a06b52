package zoo

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/testutil"
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
